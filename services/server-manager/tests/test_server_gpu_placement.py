"""A Server asking for ``nvidia-l4`` x 1 lands on the L4 node; one asking for a GPU type no node has
(``nvidia-a10g``: known, but the local cluster has none) reports ``DeploymentNotReady`` with the
scheduler's verdict and what to check; an unknown type is ``Invalid`` and creates nothing."""

from __future__ import annotations

from collections.abc import Callable

from substratus_local.testing import eventually

from .server_platform import MODEL, SERVER, Platform, platform_fixture  # noqa: F401  (the fixture)


def _server(name: str, gpu_type: str) -> str:
    return (
        SERVER.replace("metadata: {name: opt}", f"metadata: {{name: {name}}}")
        + f"  resources: {{gpu: {{type: {gpu_type}, count: 1}}}}\n"
    )


def test_gpu_servers_land_on_their_node_or_say_why_not(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(MODEL)
    p.wait_ready("model", "opt")
    p.apply(_server("on-l4", "nvidia-l4"))
    p.apply(_server("on-a10g", "nvidia-a10g"))
    p.apply(_server("on-tpu", "tpu-v5"))

    p.wait_ready("server", "on-l4")
    (pod,) = p.items("pods", "substratus.ai/name=on-l4")
    assert pod["spec"]["nodeName"] == "gpu-l4"
    main = pod["spec"]["containers"][0]
    assert main["resources"]["limits"] == {"nvidia.com/gpu": "1"}

    stuck = p.wait_reason("on-a10g", "DeploymentNotReady")

    def explained() -> dict[str, object]:
        condition = p.condition("server", "on-a10g")
        assert "not scheduled" in str(condition.get("message")), condition
        return condition

    stuck = eventually(explained, 60, "on-a10g says why it is not scheduled")
    message = str(stuck["message"])
    assert stuck["status"] == "False"
    assert "Deployment on-a10g-server has no ready replica" in message
    assert "node(s) didn't match Pod's node affinity/selector" in message  # the scheduler's words
    assert "spec.resources" in message  # what to change
    assert (p.get("server", "on-a10g") or {})["status"]["ready"] is False

    invalid = p.wait_reason("on-tpu", "Invalid")
    assert "tpu-v5" in invalid["message"]
    assert "nvidia-l4" in invalid["message"]  # the known types
    assert p.get("deployment", "on-tpu-server") is None
