"""A port is free when the stack chooses it but nothing holds it until the component binds it:
when another process takes it first, the component starts again on new ports instead of failing."""

from __future__ import annotations

import socket
from pathlib import Path

from substratus_local import stack as stack_mod


def test_nats_starts_on_another_port_when_its_port_was_taken(tmp_path: Path) -> None:
    s = stack_mod.Stack(tmp_path / "stack")
    s._allocate()  # the ports `up` will use, chosen now so one can be taken before `up` binds it
    s._save_state()
    chosen = s.port("nats")
    with socket.socket() as squatter:
        squatter.bind((stack_mod.HOST, chosen))
        squatter.listen()
        try:
            s.up()
            assert s.port("nats") != chosen
            assert s.alive("nats")
            reloaded = stack_mod.Stack(tmp_path / "stack")
            assert reloaded.port("nats") == s.port("nats"), "the new port is saved for `make status`/`down`"
            assert str(s.port("nats")) in s.env["NATS_URL"]
        finally:
            s.down()
    assert s.leftover_pids() == []
