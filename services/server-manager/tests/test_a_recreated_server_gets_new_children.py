"""A Server deleted and applied again at once (same name, same spec) serves again from children that
belong to the new Server, once the garbage collector has removed the old ones."""

from __future__ import annotations

from collections.abc import Callable

from substratus_local.testing import eventually

from .server_platform import MODEL, SERVER, Platform, platform_fixture  # noqa: F401  (the fixture)


def test_a_recreated_server_gets_new_children(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(MODEL)
    p.wait_ready("model", "opt")
    p.apply(SERVER)
    old = p.wait_ready("server", "opt")
    p.kubectl("delete", "server", "opt", "--wait=false")
    p.apply(SERVER)

    def owned_by_the_new_server() -> bool:
        server = p.get("server", "opt") or {}
        uid = server.get("metadata", {}).get("uid")
        assert uid, "not re-created yet"
        assert uid != old["metadata"]["uid"], "not re-created yet"
        deployment = p.get("deployment", "opt-server") or {}
        owners = [r["uid"] for r in deployment.get("metadata", {}).get("ownerReferences", [])]
        assert owners == [uid], f"Deployment owners {owners}, Server {uid}"
        assert (server.get("status") or {}).get("ready") is True, server.get("status")
        return True

    eventually(owned_by_the_new_server, 90, "the new Server serves from its own Deployment")
    server = p.get("server", "opt")
    service = p.get("service", "opt-server")
    assert server is not None
    assert service is not None
    assert [r["uid"] for r in service["metadata"]["ownerReferences"]] == [server["metadata"]["uid"]]
