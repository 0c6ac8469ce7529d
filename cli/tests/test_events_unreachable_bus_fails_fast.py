"""With no NATS at ``NATS_URL``, ``substratus events`` says so and exits 1 instead of retrying forever."""

import os
import socket
import subprocess
import sys

# The command's own limit is 10 s; the test shortens it so the check stays quick.
PROGRAM = """
from substratus_cli import events, substratus
events.CONNECT_TIMEOUT_S = 1.0
substratus.main(["events", "--since", "10m"])
"""


def test_an_unreachable_bus_is_reported_with_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        url = f"nats://127.0.0.1:{port}"
        result = subprocess.run(
            [sys.executable, "-c", PROGRAM],
            env={**os.environ, "NATS_URL": url},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"substratus events: cannot reach NATS at {url}" in result.stderr
    assert "(set NATS_URL)" in result.stderr
    assert "Traceback" not in result.stderr
