"""The parts of a workload's pod spec that come from its storage plan and its placement, shared by
the trainer's Jobs, the server-manager's Deployments and the notebook-manager's Pods."""

from __future__ import annotations

from typing import Any

from substratus_common.workloads import scheduling, storage_mounts

Object = dict[str, Any]


def add_storage_and_placement(
    pod_spec: Object, storage: storage_mounts.PodStorage, placed: scheduling.Placement
) -> None:
    """Set the storage helpers, their termination grace, node selector and tolerations on
    ``pod_spec``; a field with nothing to say is left out, so the pod template stays minimal."""
    if storage.init_containers:
        pod_spec["initContainers"] = storage.init_containers
    if storage.termination_grace_s is not None:
        pod_spec["terminationGracePeriodSeconds"] = storage.termination_grace_s
    if placed.node_selector:
        pod_spec["nodeSelector"] = placed.node_selector
    if placed.tolerations:
        pod_spec["tolerations"] = placed.tolerations
