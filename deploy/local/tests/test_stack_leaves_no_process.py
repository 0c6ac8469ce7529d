"""Starting and stopping a stack through the launcher leaves no process and no open port behind."""

from __future__ import annotations

import socket
from pathlib import Path

from substratus_local import stack as stack_mod


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((stack_mod.HOST, port)) == 0


def test_down_stops_everything_up_started(tmp_path: Path) -> None:
    with stack_mod.running(tmp_path / "stack") as s:
        assert all(s.running().values())
        pids = [s.pid(name) for name in s.components()]
        ports = [s.port(name) for name in ("apiserver", "etcd", "nats", "s3", "registry")]
        assert all(_listening(p) for p in ports)
        # A second `up` finds everything running and changes nothing.
        again = stack_mod.Stack(tmp_path / "stack")
        again.up()
        assert [again.pid(name) for name in again.components()] == pids
    assert s.leftover_pids() == []
    assert not any(s.running().values())
    assert not any(_listening(p) for p in ports)
