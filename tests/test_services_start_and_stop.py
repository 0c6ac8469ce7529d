"""Every service runs with `python -m substratus_<name>`, answers /healthz, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from substratus_local.stack import HOST, SERVICES, Stack, free_port
from substratus_local.testing import eventually


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize("service", SERVICES)
def test_service_serves_healthz_and_stops_on_sigterm(service: str, stack: Stack, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **stack.env, "SUBSTRATUS_HEALTH_PORT": str(port), "SUBSTRATUS_HEALTH_HOST": HOST}
    module = "substratus_" + service.replace("-", "_")
    log_file = tmp_path / f"{service}.log"
    with log_file.open("w") as log_out:
        proc = subprocess.Popen([sys.executable, "-m", module], env=env, stderr=log_out)
    try:
        eventually(lambda: _healthy(f"http://{HOST}:{port}/healthz"), 30, f"{service} /healthz")
        metrics = httpx.get(f"http://{HOST}:{port}/metrics", timeout=5)
        assert metrics.status_code == 200
        assert "substratus_handlers_in_flight" in metrics.text
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        assert code == 0, f"{service} exited {code} on SIGTERM:\n{log_file.read_text()[-4000:]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    log = log_file.read_text()
    assert '"msg": "stop requested"' in log
