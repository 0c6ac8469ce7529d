"""On the local stack a notebook Pod's port 8888 answers through kwok's port-forward (a stand-in
for Jupyter, with ``/api`` as its readiness path) and ``kubectl exec`` runs in the directory that
stands in for its ``/content``; a namespaced kwok PortForward of a Pod still wins (tests use them)."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import httpx

from substratus_local import jupyter_stand_in, kwok_config
from substratus_local.stack import HOST, Stack, free_port
from substratus_local.testing import eventually


def test_the_stand_in_answers_one_request() -> None:
    out = io.BytesIO()
    path = jupyter_stand_in.respond(io.BytesIO(b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n"), out, "/c")
    assert path == "/api"
    head, body = out.getvalue().split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Connection: close" in head
    assert json.loads(body) == {"version": "simulated"}
    out = io.BytesIO()
    jupyter_stand_in.respond(io.BytesIO(b"GET /lab?token=t HTTP/1.1\r\n\r\n"), out, "/where/content")
    assert b"/where/content" in out.getvalue()


def test_port_8888_and_exec_of_any_pod(stack: Stack, namespace: str, tmp_path: Path) -> None:
    stack.kubectl("run", "nb-notebook", "-n", namespace, "--image=jupyter", "--port=8888")
    eventually(
        lambda: (
            stack.kubectl("get", "pod", "nb-notebook", "-n", namespace, "-o", "jsonpath={.status.phase}").stdout
            == "Running"
        ),
        60,
        "pod running",
    )
    marker = stack.notebook_content_dir / f"{namespace}.txt"
    marker.write_text("written in the notebook\n")
    try:
        listed = stack.kubectl("exec", "nb-notebook", "-n", namespace, "--", "ls").stdout.split()
        assert f"{namespace}.txt" in listed
    finally:
        marker.unlink()

    local_port = free_port()
    kubectl = str(Path(stack.state.bin_dirs[0]) / "kubectl")
    with (tmp_path / "port-forward.log").open("w") as log:
        forward = subprocess.Popen(
            [kubectl, "port-forward", "-n", namespace, "pod/nb-notebook", f"{local_port}:{kwok_config.NOTEBOOK_PORT}"],
            env={**os.environ, **stack.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def api() -> object:
            try:
                return httpx.get(f"http://{HOST}:{local_port}/api", timeout=2).json()
            except httpx.TransportError:
                return None

        assert eventually(api, 30, "the stand-in answering /api") == {"version": "simulated"}
        page = httpx.get(f"http://{HOST}:{local_port}/?token=abc", timeout=5).text
        assert str(stack.notebook_content_dir) in page
    finally:
        forward.terminate()
        forward.wait(timeout=10)
