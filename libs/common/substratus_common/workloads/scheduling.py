"""Compute requests and GPU placement of a workload container from ``spec.resources``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from substratus_common.api.types import Resources
from substratus_common.config import Cloud
from substratus_common.workloads import gpus


@dataclass(frozen=True)
class Placement:
    """What goes into the container's ``resources`` and the Pod's node selector and tolerations."""

    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, str]] = field(default_factory=list)


def placement(
    *,
    cpu: int | None,
    memory_gib: int | None,
    disk_gib: int | None,
    gpu_type: str | None,
    gpu_count: int | None,
    cloud: Cloud,
    table: gpus.GPUTable,
) -> Placement:
    """cpu, memory and disk become requests; GPUs become requests = limits plus the node selector
    and toleration of the cloud. A count with no type schedules on any GPU node. An unknown type
    raises :class:`gpus.UnknownGPUType` (the caller reports it as a condition)."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    if cpu:
        requests["cpu"] = str(cpu)
    if memory_gib:
        requests["memory"] = f"{memory_gib}Gi"
    if disk_gib:
        requests["ephemeral-storage"] = f"{disk_gib}Gi"
    node_selector: dict[str, str] = {}
    tolerations: list[dict[str, str]] = []
    if gpu_type and not gpu_count:
        gpu_count = 1  # naming a type asks for one of them
    if gpu_count:
        requests[gpus.GPU_RESOURCE] = str(gpu_count)
        limits[gpus.GPU_RESOURCE] = str(gpu_count)
        tolerations.append(dict(gpus.GPU_TOLERATION))
        if gpu_type:
            node_selector = table.node_selector(gpu_type, cloud)
    resources: dict[str, dict[str, Any]] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return Placement(resources, node_selector, tolerations)


def placement_for(resources: Resources | None, *, cloud: Cloud, table: gpus.GPUTable) -> Placement:
    """:func:`placement` of a spec's ``resources`` (unset: no requests, no GPU)."""
    gpu = resources.gpu if resources is not None else None
    return placement(
        cpu=resources.cpu if resources else None,
        memory_gib=resources.memory if resources else None,
        disk_gib=resources.disk if resources else None,
        gpu_type=gpu.type if gpu else None,
        gpu_count=gpu.count if gpu else None,
        cloud=cloud,
        table=table,
    )
