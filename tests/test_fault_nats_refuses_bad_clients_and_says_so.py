"""Check 25: NATS as the chart configures it refuses a wrong password, plain text where TLS is
required, and a publish on another service's subject; each refusal is logged, and no log line
shows a password, even one put inside NATS_URL."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from substratus_common import config
from substratus_common.bus import connection
from substratus_common.bus.errors import BusError
from substratus_local import pki
from substratus_local.stack import HOST
from substratus_local.testing import ServiceProcess, eventually
from substratus_local.testing_nats import chart_nats

WRONG = "not-the-password-4f1c"


def _settings(url: str, user: str, password: str, *, provision_streams: bool = True) -> config.Settings:
    return config.Settings(
        service=user,
        nats_url=url,
        nats_user=user,
        nats_password=SecretStr(password),
        provision_streams=provision_streams,
    )


def _exited(proc: ServiceProcess, limit_s: float = 90) -> int:
    assert proc.proc is not None
    try:
        return proc.proc.wait(timeout=limit_s)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{proc.service} kept running with a wrong NATS password")


def test_a_wrong_password_is_refused_logged_and_never_shown(
    tmp_path: Path, run_service: Callable[..., ServiceProcess]
) -> None:
    with chart_nats(tmp_path / "nats") as server:
        env = {**server.env("trainer", WRONG), "SUBSTRATUS_PROVISION_STREAMS": "false"}
        apart = run_service("trainer", env=env, wait_ready=False)
        assert _exited(apart) != 0
        # The legacy form, the password inside the URL: refused the same, and scrubbed from the logs.
        inside = {"NATS_URL": f"nats://trainer:{WRONG}@{HOST}:{server.port}", "SUBSTRATUS_PROVISION_STREAMS": "false"}
        in_url = run_service("trainer", env=inside, wait_ready=False)
        assert _exited(in_url) != 0
        logs = in_url.logs()
        assert WRONG not in logs
        lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
        said = " ".join(
            str(line.get("msg", "")) + str(line.get("error", "")) + str(line.get("exc", "")) for line in lines
        )
        assert re.search("authorization violation", said, re.IGNORECASE), said[-2000:]
        assert f"nats://***@{HOST}:{server.port}" in said
        eventually(
            lambda: 'authentication error - User "trainer"' in server.server_log(),
            10,
            "the refusal in the server's log",
        )


async def test_plain_text_is_refused_where_tls_is_required(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tls_dir = tmp_path / "pki"
    pki.ensure(tls_dir)
    with chart_nats(tmp_path / "nats", tls_dir) as server:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        try:
            info = json.loads((await asyncio.wait_for(reader.readline(), 10)).decode().removeprefix("INFO "))
            assert info["tls_required"] is True
            creds = json.dumps({"user": "trainer", "pass": server.passwords["trainer"], "verbose": False})
            writer.write(f"CONNECT {creds}\r\nPING\r\n".encode())
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(4096), 10)  # b"" once the server hangs up
            assert b"PONG" not in answer  # hung up or TLS bytes: never a session in plain text
        finally:
            writer.close()
        # (nats-server logs a client's failed TLS handshake only at debug level: the refusal the
        # operator sees is the client's, below.)
        # Our client never falls back to plain text: without the CA it refuses the certificate.
        settings = _settings(server.url, "trainer", server.passwords["trainer"], provision_streams=False)
        with caplog.at_level(logging.WARNING, logger="substratus_common.bus.connection"), pytest.raises(BusError):
            await connection.connect(settings, connect_deadline_s=5)
        said = [str(getattr(record, "error", "")) for record in caplog.records]
        assert any("CERTIFICATE_VERIFY_FAILED" in error for error in said), said


async def test_publishing_another_services_subject_is_refused_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with chart_nats(tmp_path / "nats") as server:
        watcher = await connection.connect(_settings(server.url, "watcher", server.passwords["watcher"]))
        await watcher.close()
        trainer = _settings(server.url, "trainer", server.passwords["trainer"], provision_streams=False)
        bus = await connection.connect(trainer)
        try:
            await bus.publish_raw("substratus.status.models.x.y.trainer", b"{}", msg_id="own")  # its own: fine
            with caplog.at_level(logging.WARNING, logger="substratus_common.bus.connection"), pytest.raises(BusError):
                await bus.publish_raw("substratus.status.models.x.y.status-writer", b"{}", msg_id="foreign")
            assert any("permissions violation" in str(getattr(r, "error", "")).lower() for r in caplog.records)
            assert await bus.last_sequence("SUBSTRATUS_STATUS") == 1  # the refused one was not stored
        finally:
            await bus.close()
        pattern = r'user:trainer" - Publish Violation - Subject "substratus\.status\.models\.x\.y\.status-writer"'
        eventually(lambda: re.search(pattern, server.server_log()) is not None, 10, "the violation in the server log")
