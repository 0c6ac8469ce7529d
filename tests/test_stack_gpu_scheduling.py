"""GPU Pods land on a node of the requested type; an impossible request stays Pending."""

from __future__ import annotations

import json
from typing import Any

from substratus_local.stack import Stack
from substratus_local.testing import eventually


def _gpu_pod(name: str, count: int) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "containers": [
                    {
                        "name": "main",
                        "image": "cuda",
                        "resources": {"requests": {"nvidia.com/gpu": count}, "limits": {"nvidia.com/gpu": count}},
                    }
                ],
            },
        }
    )


def _pod(stack: Stack, namespace: str, name: str) -> Any:
    return json.loads(stack.kubectl("get", "pod", name, "-n", namespace, "-o", "json").stdout)


def test_two_l4_gpus_schedule_on_the_l4_node(stack: Stack, namespace: str) -> None:
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=_gpu_pod("fits", 2))
    pod = eventually(lambda: _pod(stack, namespace, "fits")["spec"].get("nodeName"), 60, "pod scheduled")
    assert pod == "gpu-l4"
    eventually(lambda: _pod(stack, namespace, "fits")["status"].get("phase") == "Running", 60, "pod running")


def test_ninety_nine_gpus_stay_pending(stack: Stack, namespace: str) -> None:
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=_gpu_pod("too-big", 99))

    def unschedulable() -> bool:
        status = _pod(stack, namespace, "too-big")["status"]
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        scheduled = conditions.get("PodScheduled", {})
        return bool(scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable")

    eventually(unschedulable, 60, "pod reported Unschedulable")
    pod = _pod(stack, namespace, "too-big")
    assert pod["status"]["phase"] == "Pending"
    assert "nodeName" not in pod["spec"]
