"""A Notebook on a GPU node that disappears: the pod garbage collector deletes the orphaned Pod,
the notebook-manager creates it again, ``PodNotReady`` names why it cannot be scheduled while no
such node exists, and once a replacement node joins the Notebook is ready again on the same PVC."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from substratus_local import kwok_config
from substratus_local.testing import eventually

from .notebook_platform import Platform, platform_fixture  # noqa: F401  (the fixture)


def _node(name: str, product: str) -> str:
    spec = kwok_config.NodeSpec(
        name,
        labels={"nvidia.com/gpu.product": product, "nvidia.com/gpu.present": "true"},
        taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
        capacity={"cpu": "8", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": "1"},
    )
    return yaml.safe_dump(kwok_config.node_manifest(spec))


def test_the_pod_comes_back_after_its_node_is_lost(platform: Callable[..., Platform], tmp_path: Path) -> None:
    # A GPU type only one (temporary) node has, so the Notebook lands there and nowhere else.
    gpu_type, product = "nvidia-lost-test", f"LOST-{tmp_path.name[-8:]}"
    table = tmp_path / "gpu-types.yaml"
    table.write_text(yaml.safe_dump({gpu_type: {"other": {"nvidia.com/gpu.product": product}}}))
    p = platform(manager_env={"SUBSTRATUS_GPU_TYPES_FILE": str(table)})
    node = f"lost-{p.namespace}"
    p.stack.kubectl("apply", "-f", "-", input=_node(node, product))
    try:
        p.apply(
            "apiVersion: substratus.ai/v1\nkind: Notebook\nmetadata: {name: gpu}\n"
            f"spec: {{image: quay.io/jupyter/base-notebook, resources: {{gpu: {{type: {gpu_type}, count: 1}}}}}}\n"
        )
        p.wait_serving("gpu", "PodReady", timeout=90)
        first = p.must("pod", "gpu-notebook")
        assert first["spec"]["nodeName"] == node
        claim = p.must("pvc", "gpu-notebook-content")["metadata"]["uid"]

        p.stack.kubectl("delete", "node", node)

        def waiting_for_a_node() -> bool:
            pod = p.get("pod", "gpu-notebook") or {}
            assert pod, "no Pod"
            assert pod["metadata"]["uid"] != first["metadata"]["uid"], "still the Pod of the lost node"
            message = p.serving("gpu").get("message", "")
            assert "is not scheduled" in message, message
            return True

        eventually(waiting_for_a_node, 150, "a new Pod waiting for a node")

        p.stack.kubectl("apply", "-f", "-", input=_node(node, product))
        p.wait_serving("gpu", "PodReady", timeout=90)
        assert p.must("pod", "gpu-notebook")["spec"]["nodeName"] == node
        assert p.must("pvc", "gpu-notebook-content")["metadata"]["uid"] == claim
    finally:
        p.stack.kubectl("delete", "node", node, "--ignore-not-found")
