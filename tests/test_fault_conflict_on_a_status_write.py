"""Check 11 (docs/reliability.md): the API server answers 409 Conflict to status writes. A
validating admission webhook of the test's own (HTTPS on loopback, trusted through the stack's CA)
refuses the first three writes of each Model's ``/status`` in the test's namespace with code 409,
as the API server does when an object changed under a writer. The status writer reads the object
again and retries: a user finds every Model ready with ``Complete`` from its Job, no report lost,
no ``ReconcileFailed``. kwok simulates the Jobs' Pods."""

from __future__ import annotations

import base64
import collections
import http.server
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from substratus_local import stack as stack_mod
from substratus_local import testing_burst as burst
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually

COUNT = 5
REFUSALS = 3


class ConflictingWebhook:
    """Refuses the first ``REFUSALS`` status writes of each object with 409, then allows them.

    A plain threading HTTPS server (no event loop): each connection is closed by its own thread
    when the request is answered, so nothing is left open for the garbage collector to find."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.refused: collections.Counter[str] = collections.Counter()
        self.allowed: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        pki = stack.pki_dir
        tls.load_cert_chain(pki / "kubelet.crt", pki / "kubelet.key")  # serving cert for 127.0.0.1, stack CA
        self._server = _TLSServer((stack_mod.HOST, 0), _handler(self), tls)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)

    def review(self, review: dict[str, Any]) -> dict[str, Any]:
        name = str(review["request"]["name"])
        answer: dict[str, Any] = {"uid": review["request"]["uid"], "allowed": True}
        with self._lock:
            if self.refused[name] < REFUSALS:
                self.refused[name] += 1
                answer = {
                    "uid": review["request"]["uid"],
                    "allowed": False,
                    "status": {
                        "code": 409,
                        "reason": "Conflict",
                        "message": f'Operation cannot be fulfilled on models.substratus.ai "{name}":'
                        " the object has been modified",
                    },
                }
            else:
                self.allowed[name] += 1
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": answer}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def configuration(self, namespace: str) -> dict[str, Any]:
        ca = base64.b64encode((self.stack.pki_dir / "ca.crt").read_bytes()).decode()
        return {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": f"{namespace}-status-conflicts"},
            "webhooks": [
                {
                    "name": "status-conflicts.substratus.test",
                    "clientConfig": {"url": f"https://{stack_mod.HOST}:{self.port}/validate", "caBundle": ca},
                    "rules": [
                        {
                            "apiGroups": ["substratus.ai"],
                            "apiVersions": ["v1"],
                            "operations": ["UPDATE"],
                            "resources": ["models/status"],
                        }
                    ],
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "timeoutSeconds": 5,
                }
            ],
        }


class _TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[http.server.BaseHTTPRequestHandler], tls: ssl.SSLContext
    ) -> None:
        super().__init__(address, handler)
        self.tls = tls

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        sock.settimeout(10)  # a handshake or a request that never comes ends its thread
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address


def _handler(hook: ConflictingWebhook) -> type[http.server.BaseHTTPRequestHandler]:
    class Review(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection, closed after the answer

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = json.dumps(hook.review(json.loads(body))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the API server calls often; the test asserts on the counts instead

    return Review


@pytest.fixture
def conflicts(stack: Stack, namespace: str) -> Iterator[ConflictingWebhook]:
    hook = ConflictingWebhook(stack)
    hook.start()
    config = hook.configuration(namespace)
    stack.kubectl("apply", "-f", "-", input=yaml.safe_dump(config))
    try:
        yield hook
    finally:
        stack.kubectl("delete", "validatingwebhookconfiguration", config["metadata"]["name"], check=False)
        hook.stop()


def test_409_on_status_writes_is_retried_and_every_status_lands(
    stack: Stack, namespace: str, conflicts: ConflictingWebhook, run_service: Callable[..., ServiceProcess]
) -> None:
    run_service("watcher")
    writer = run_service("status-writer")
    run_service("trainer")
    names = [f"c-{i}" for i in range(COUNT)]
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=burst.models(names))

    def converged() -> bool:
        models = burst.items(stack, namespace, "models")
        for model in models:
            conditions = {c["type"]: c for c in (model.get("status") or {}).get("conditions") or []}
            assert conditions.get("Complete", {}).get("reason") != "ReconcileFailed", conditions
            assert model.get("status", {}).get("ready") is True, f"{model['metadata']['name']}: {conditions}"
            assert conditions["Complete"]["reason"] == "JobComplete", conditions
        assert len(models) == COUNT
        return True

    eventually(converged, 180, "every Model ready through the conflicts")
    assert sorted(conflicts.refused) == names
    assert set(conflicts.refused.values()) == {REFUSALS}, "the webhook refused each Model's first writes"
    assert all(conflicts.allowed[name] >= 1 for name in names), "then let them through"
    assert burst.metric(writer, "substratus_reconcile_retries_total") >= COUNT, "the status writer retried them"
    retried = [line for line in writer.logs().splitlines() if '"will retry"' in line]
    assert any("the object has been modified" in line for line in retried), "the 409 was retried"
