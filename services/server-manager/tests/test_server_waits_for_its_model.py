"""A Server applied before its Model waits (``ModelNotFound``, then ``ModelNotReady`` while the
Model's Job runs) with no Deployment, then serves once the Model is ready, with no user action."""

from __future__ import annotations

from collections.abc import Callable

from .server_platform import MODEL, SERVER, Platform, platform_fixture  # noqa: F401  (the fixture)

# kwok keeps the Model's Job Pod running this long (the annotation reaches the Pod).
SLOW_MODEL = MODEL.replace(
    "metadata: {name: opt}", "metadata: {name: opt, annotations: {substratus.dev/simulate-delay: 8s}}"
)


def test_a_server_waits_for_its_model_then_serves(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(SERVER)
    missing = p.wait_reason("opt", "ModelNotFound")
    assert missing["status"] == "False"
    assert "Model opt not found" in missing["message"]
    assert p.get("deployment", "opt-server") is None

    p.apply(SLOW_MODEL)
    waiting = p.wait_reason("opt", "ModelNotReady")
    assert "starts by itself" in waiting["message"]
    assert p.get("deployment", "opt-server") is None
    assert p.get("service", "opt-server") is None

    p.wait_ready("model", "opt", timeout=60)
    p.wait_ready("server", "opt", timeout=60)
    assert p.condition("server", "opt")["reason"] == "DeploymentReady"
    assert p.get("service", "opt-server") is not None
