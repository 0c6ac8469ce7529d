"""kwok plays the kubelet: `kubectl logs` answers and `kubectl port-forward` reaches a local server."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from substratus_local import kwok_config
from substratus_local.stack import HOST, Stack, free_port
from substratus_local.testing import eventually


def _run_pod(stack: Stack, namespace: str, name: str) -> None:
    stack.kubectl("run", name, "-n", namespace, "--image=jupyter", "--port=8888")
    eventually(
        lambda: (
            stack.kubectl("get", "pod", name, "-n", namespace, "-o", "jsonpath={.status.phase}").stdout == "Running"
        ),
        60,
        f"pod {name} running",
    )


@pytest.fixture
def local_http_server() -> Iterator[int]:
    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"hello from the notebook\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            return

    server = http.server.ThreadingHTTPServer((HOST, 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_kubectl_logs_answers_for_a_simulated_pod(stack: Stack, namespace: str) -> None:
    _run_pod(stack, namespace, "logger")
    logs = stack.kubectl("logs", "logger", "-n", namespace).stdout
    assert "simulated by kwok" in logs


def test_port_forward_reaches_the_target_of_a_kwok_port_forward(
    stack: Stack, namespace: str, local_http_server: int, tmp_path: Path
) -> None:
    _run_pod(stack, namespace, "notebook")
    stack.kubectl("apply", "-f", "-", input=kwok_config.port_forward(namespace, "notebook", 8888, local_http_server))
    local_port = free_port()
    kubectl = str(Path(stack.state.bin_dirs[0]) / "kubectl")
    with (tmp_path / "port-forward.log").open("w") as log:
        forward = subprocess.Popen(
            [kubectl, "port-forward", "-n", namespace, "pod/notebook", f"{local_port}:8888"],
            env={**os.environ, **stack.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def answered() -> str:
            try:
                return httpx.get(f"http://{HOST}:{local_port}/", timeout=2).text
            except httpx.TransportError:
                return ""

        assert eventually(answered, 30, "port-forward answering") == "hello from the notebook\n"
    finally:
        forward.terminate()
        forward.wait(timeout=10)
