"""GPU requests carry the node selector and toleration of each cloud setting, and the Pod lands on
a node of the requested type; a count with no type lands on any GPU node; an unknown type is a
condition on the Model."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from substratus_common.workloads import storage_mounts
from substratus_local.stack import Stack
from substratus_local.testing import eventually

from .trainer_platform import Platform, platform_fixture  # noqa: F401  (the fixture)

L4 = """
apiVersion: substratus.ai/v1
kind: Model
metadata: {name: on-l4}
spec:
  image: substratusai/model-trainer-huggingface
  resources: {gpu: {type: nvidia-l4, count: 1}}
"""

ANY_GPU = """
apiVersion: substratus.ai/v1
kind: Model
metadata: {name: any-gpu}
spec:
  image: substratusai/model-trainer-huggingface
  resources: {gpu: {count: 2}}
"""

UNKNOWN = """
apiVersion: substratus.ai/v1
kind: Model
metadata: {name: on-tpu}
spec:
  image: substratusai/model-trainer-huggingface
  resources: {gpu: {type: tpu-v5, count: 1}}
"""

SELECTORS = {
    "gcp": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
    "aws": {"k8s.amazonaws.com/accelerator": "nvidia-l4"},
    "other": {"nvidia.com/gpu.product": "NVIDIA-L4"},
}
TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


@pytest.fixture
def no_leftover_volumes(stack: Stack, namespace: str) -> Iterator[None]:
    """On ``aws`` the Mountpoint volumes are cluster-scoped: remove this namespace's."""
    yield
    stack.kubectl("delete", "pv", "-l", f"{storage_mounts.PV_NAMESPACE_LABEL}={namespace}", "--wait=false", check=False)


def _node_of(p: Platform, model: str) -> str:
    def scheduled() -> str:
        pods = p.items("pods", f"substratus.ai/name={model}")
        assert pods, f"no Pod of {model} yet"
        node: str = pods[0]["spec"].get("nodeName", "")
        assert node, f"Pod of {model} not scheduled yet"
        return node

    return eventually(scheduled, 60, f"Pod of {model} scheduled")


@pytest.mark.parametrize("cloud", ["gcp", "aws", "other"])
def test_gpu_type_selects_the_clouds_node_labels(
    cloud: str, platform: Callable[..., Platform], no_leftover_volumes: None
) -> None:
    p = platform(trainer_env={"SUBSTRATUS_CLOUD": cloud})
    p.apply(L4)
    p.apply(ANY_GPU)
    model = p.wait_ready("model", "on-l4")
    job = p.get("job", "on-l4-modeller")
    assert job is not None
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == SELECTORS[cloud]
    assert pod["tolerations"] == [TOLERATION]
    limits = pod["containers"][0]["resources"]
    assert limits == {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}
    assert _node_of(p, "on-l4") == "gpu-l4"
    assert model["status"]["ready"] is True

    p.wait_ready("model", "any-gpu")
    any_job = p.get("job", "any-gpu-modeller")
    assert any_job is not None
    assert "nodeSelector" not in any_job["spec"]["template"]["spec"]
    assert _node_of(p, "any-gpu").startswith("gpu-")


def test_an_unknown_gpu_type_is_a_condition(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(UNKNOWN)
    condition = p.wait_reason("model", "on-tpu", "Invalid")
    assert condition["status"] == "False"
    assert "tpu-v5" in condition["message"]
    assert "nvidia-l4" in condition["message"]  # the known types
    assert p.items("jobs") == []
