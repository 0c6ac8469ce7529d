"""``kubectl scale deployment <name>-server --replicas=3`` is kept: through reconciles, a spec edit
that rolls the Pods, and a restart of the server-manager; the Server reports the ready replicas."""

from __future__ import annotations

from collections.abc import Callable

from substratus_local.testing import eventually

from .server_platform import MODEL, SERVER, Platform, platform_fixture  # noqa: F401  (the fixture)


def _replicas(p: Platform) -> int:
    deployment = p.get("deployment", "opt-server") or {}
    return int(deployment["spec"]["replicas"])


def test_kubectl_scale_is_kept(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(MODEL)
    p.wait_ready("model", "opt")
    p.apply(SERVER)
    p.wait_ready("server", "opt")

    p.kubectl("scale", "deployment", "opt-server", "--replicas=3")
    eventually(lambda: "3 of 3 replicas ready" in p.condition("server", "opt").get("message", ""), 60, "3 ready")
    assert "f:replicas" not in p.field_owners("deployment", "opt-server")["substratus-server-manager"]

    # Reconciles of the unchanged Server.
    before = p.acked
    for i in range(3):
        p.kubectl("annotate", "server", "opt", f"example.com/touch={i}", "--overwrite")
    eventually(lambda: p.acked >= before + 3, 60, "three change events handled")
    assert _replicas(p) == 3

    # A spec edit re-applies the Deployment (a new template) and still leaves the replicas alone.
    p.apply(SERVER.replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
    eventually(lambda: p.applies == 2, 60, "the edit applied")
    assert _replicas(p) == 3

    # A restarted server-manager (it re-reads everything from the stream) does not fight it either.
    p.server_manager.stop()
    p.server_manager.start()
    p.kubectl("annotate", "server", "opt", "example.com/touch=after-restart", "--overwrite")
    eventually(lambda: p.acked >= 1, 60, "the restarted server-manager handled an event")
    eventually(lambda: "3 of 3 replicas ready" in p.condition("server", "opt").get("message", ""), 60, "3 ready")
    assert _replicas(p) == 3
    assert len(p.items("pods", "substratus.ai/name=opt")) >= 3


def test_scaled_to_zero_is_not_serving_and_says_how_to_serve_again(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(MODEL)
    p.wait_ready("model", "opt")
    p.apply(SERVER)
    p.wait_ready("server", "opt")
    p.kubectl("scale", "deployment", "opt-server", "--replicas=0")
    stopped = p.wait_reason("opt", "DeploymentNotReady")
    assert stopped["status"] == "False"
    assert "scaled to 0 replicas" in stopped["message"]
    assert "--replicas=1" in stopped["message"]
    assert (p.get("server", "opt") or {})["status"]["ready"] is False
    p.kubectl("scale", "deployment", "opt-server", "--replicas=1")
    p.wait_ready("server", "opt")
    assert _replicas(p) == 1
