"""Deleting a Server deletes its ConfigMap, Deployment (and so its Pods) and Service, through their
ownerReferences; the shared ServiceAccount stays for the namespace's other Servers."""

from __future__ import annotations

from collections.abc import Callable

from substratus_local.testing import eventually

from .server_platform import MODEL, SERVER, Platform, platform_fixture  # noqa: F401  (the fixture)


def test_deleting_a_server_deletes_its_children(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(MODEL)
    p.wait_ready("model", "opt")
    p.apply(SERVER)
    p.wait_ready("server", "opt")
    p.kubectl("delete", "server", "opt")

    def gone() -> bool:
        left = [
            kind
            for kind, name in (
                ("deployment", "opt-server"),
                ("service", "opt-server"),
                ("configmap", "opt-server-params"),
            )
            if p.get(kind, name) is not None
        ]
        assert not left, f"still there: {left}"
        assert p.items("pods", "substratus.ai/kind=servers,substratus.ai/name=opt") == []
        return True

    eventually(gone, 90, "the Server's children deleted")
    assert p.get("serviceaccount", "substratus-server") is not None
    assert p.get("model", "opt") is not None
