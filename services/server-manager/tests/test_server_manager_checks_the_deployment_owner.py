"""A Deployment named like a Server's is used only when that Server controls it: one of a deleted
Server of the same name is waited for (the garbage collector removes it), someone else's is a
condition that says to delete or rename it."""

from __future__ import annotations

from typing import Any

import pytest

from substratus_common import errors
from substratus_server_manager import server_manager

SERVER = {"kind": "Server", "metadata": {"name": "opt", "namespace": "ns", "uid": "new"}}


def _deployment(owner: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    refs = [owner] if owner else []
    return {"metadata": {"name": "opt-server", "ownerReferences": refs, **meta}}


def _owner(uid: str, kind: str = "Server", name: str = "opt") -> dict[str, Any]:
    return {"kind": kind, "name": name, "uid": uid, "controller": True}


def test_the_servers_own_deployment_passes() -> None:
    server_manager.check_owner(_deployment(_owner("new")), SERVER)


def test_a_deployment_of_a_deleted_server_is_waited_for() -> None:
    with pytest.raises(errors.TemporaryError, match="deleted Server"):
        server_manager.check_owner(_deployment(_owner("old")), SERVER)
    with pytest.raises(errors.TemporaryError, match="to be deleted"):
        server_manager.check_owner(_deployment(_owner("new"), deletionTimestamp="2024-01-01T00:00:00Z"), SERVER)


@pytest.mark.parametrize("owner", [None, _owner("x", kind="Notebook"), _owner("x", name="other")])
def test_someone_elses_deployment_is_a_condition(owner: dict[str, Any] | None) -> None:
    with pytest.raises(errors.PermanentError, match="delete or rename it"):
        server_manager.check_owner(_deployment(owner), SERVER)
