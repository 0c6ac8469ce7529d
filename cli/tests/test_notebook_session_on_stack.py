"""On the stack: ``kubectl notebook -f notebook.yaml DIR`` applies the Notebook, follows it until
ready, forwards a local port through kwok's simulated port-forward to a local HTTP server standing
in for Jupyter, prints the URL with the token from the Secret, copies the files the notebook wrote
under /content (kwok's simulated exec runs in a local directory standing in for it) into DIR,
reconnects after the Pod is replaced, and on Ctrl-C suspends the Notebook (Pod gone, PVC kept).
It uses the kubeconfig's current namespace: no ``-n``."""

from __future__ import annotations

import base64
import http.server
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from substratus_local import kwok_config
from substratus_local.stack import HOST, Stack, free_port
from substratus_local.testing import ServiceProcess, eventually

NOTEBOOK = """
apiVersion: substratus.ai/v1
kind: Notebook
metadata: {name: lab}
spec:
  image: quay.io/jupyter/base-notebook
"""


@pytest.fixture
def jupyter_stand_in() -> Iterator[int]:
    """A local HTTP server that answers like a notebook would, with the token it was asked for."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"notebook here; you asked for {self.path}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _exec_in(namespace: str, pod: str, work_dir: Path) -> str:
    """A kwok Exec: ``kubectl exec`` into the Pod runs locally in ``work_dir`` (its /content)."""
    doc = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Exec",
        "metadata": {"name": pod, "namespace": namespace},
        "spec": {"execs": [{"local": {"workDir": str(work_dir)}}]},
    }
    return yaml.safe_dump(doc)


class Output:
    """The CLI's stdout and stderr lines, read in the background."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.streams = [proc.stdout, proc.stderr]
        self.readers = []
        for stream in self.streams:
            assert stream is not None
            reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
            reader.start()
            self.readers.append(reader)

    def close(self) -> None:
        """After the process ended: the readers reach the end of its output; close the pipes."""
        for reader in self.readers:
            reader.join(timeout=10)
        for stream in self.streams:
            if stream is not None:
                stream.close()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        def check() -> re.Match[str]:
            while not self.lines.empty():
                self.seen.append(self.lines.get())
            for line in self.seen:
                found = re.search(pattern, line)
                if found:
                    return found
            raise AssertionError("".join(self.seen[-20:]))

        return eventually(check, timeout, f"output matching {pattern!r}")


def test_a_notebook_session_forwards_syncs_and_suspends_on_exit(
    stack: Stack,
    namespace: str,
    run_service: Callable[..., ServiceProcess],
    jupyter_stand_in: int,
    tmp_path: Path,
) -> None:
    for service in ("watcher", "status-writer", "notebook-manager"):
        run_service(service)
    content = tmp_path / "content"
    (content / "sub").mkdir(parents=True)
    (content / "analysis.ipynb").write_text('{"cells": []}\n')
    (content / "sub" / "helper.py").write_text("x = 1\n")
    for skipped in ("model", "data", "artifacts", ".ipynb_checkpoints"):
        (content / skipped).mkdir()
        (content / skipped / "big.bin").write_bytes(b"\0" * 10)
    (content / "params.json").write_text("{}\n")
    stack.kubectl("apply", "-f", "-", input=kwok_config.port_forward(namespace, "lab-notebook", 8888, jupyter_stand_in))
    stack.kubectl("apply", "-f", "-", input=_exec_in(namespace, "lab-notebook", content))

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(stack.kubeconfig.read_text())
    stack.kubectl("config", "set-context", "--current", f"--namespace={namespace}", f"--kubeconfig={kubeconfig}")
    manifest = tmp_path / "notebook.yaml"
    manifest.write_text(NOTEBOOK)
    local = tmp_path / "local"
    port = free_port()
    kubectl = str(Path(stack.state.bin_dirs[0]) / "kubectl")
    command = [sys.executable, "-m", "substratus_cli.notebook", "-f", str(manifest), str(local)]
    command += ["--no-browser", "--port", str(port), "--sync-interval", "0.5", "--kubectl", kubectl]
    env = {**os.environ, **stack.env, "KUBECONFIG": str(kubeconfig)}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = Output(proc)
    try:
        url = out.wait_for(r"is ready: (http://\S+)", 90).group(1)
        secret = json.loads(stack.kubectl("get", "secret", "lab-notebook-token", "-n", namespace, "-o", "json").stdout)
        token = base64.b64decode(secret["data"]["token"]).decode()
        assert url == f"http://{HOST}:{port}/?token={token}"
        assert httpx.get(url, timeout=5).text == f"notebook here; you asked for /?token={token}\n"

        # Files the notebook wrote are copied; mounted inputs, artifacts and checkpoints are not.
        eventually((local / "sub" / "helper.py").exists, 30, "helper.py synced")
        assert (local / "analysis.ipynb").read_text() == '{"cells": []}\n'
        assert sorted(p.name for p in local.iterdir()) == ["analysis.ipynb", "sub"]
        (content / "sub" / "helper.py").write_text("x = 2\n")
        eventually(lambda: (local / "sub" / "helper.py").read_text() == "x = 2\n", 30, "an edit synced")

        # The Pod is replaced (e.g. its node was lost): the forward comes back by itself.
        stack.kubectl("delete", "pod", "lab-notebook", "-n", namespace, "--force", "--grace-period=0")
        out.wait_for(r"port-forward: reconnecting", 60)

        def answers() -> bool:
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        eventually(answers, 60, "the forward answering again")
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
        out.close()
    out.wait_for(r"suspended notebook/lab", 5)
    assert code == 0, "".join(out.seen)

    got = stack.kubectl("get", "notebook", "lab", "-n", namespace, "-o", "json", "--show-managed-fields")
    notebook = json.loads(got.stdout)
    assert notebook["spec"]["suspend"] is True
    managers = {m["manager"] for m in notebook["metadata"]["managedFields"] if "f:suspend" in json.dumps(m)}
    assert managers == {"kubectl-notebook"}
    assert notebook["spec"]["image"] == "quay.io/jupyter/base-notebook"  # the rest of the spec kept

    def suspended() -> bool:
        obj = json.loads(stack.kubectl("get", "notebook", "lab", "-n", namespace, "-o", "json").stdout)
        reasons = [c["reason"] for c in obj["status"]["conditions"] if c["type"] == "Serving"]
        return reasons == ["Suspended"] and obj["status"]["ready"] is False

    eventually(suspended, 60, "Serving=False/Suspended")
    eventually(
        lambda: stack.kubectl("get", "pod", "lab-notebook", "-n", namespace, check=False).returncode != 0,
        30,
        "the Pod deleted",
    )
    assert stack.kubectl("get", "pvc", "lab-notebook-content", "-n", namespace, check=False).returncode == 0
