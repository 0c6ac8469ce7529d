"""Check 11 (docs/reliability.md): the API server answers 409 Conflict to status writes. A
validating admission webhook of the test's own (HTTPS on loopback, trusted through the stack's CA)
refuses the first three writes of each Model's ``/status`` in the test's namespace with code 409,
as the API server does when an object changed under a writer. The status writer reads the object
again and retries: a user finds every Model ready with ``Complete`` from its Job, no report lost,
no ``ReconcileFailed``. kwok simulates the Jobs' Pods."""

from __future__ import annotations

import asyncio
import base64
import collections
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from aiohttp import web

from substratus_local import stack as stack_mod
from substratus_local import testing_burst as burst
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually

COUNT = 5
REFUSALS = 3


class ConflictingWebhook:
    """Refuses the first ``REFUSALS`` status writes of each object with 409, then allows them."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.port = stack_mod.free_port()
        self.refused: collections.Counter[str] = collections.Counter()
        self.allowed: collections.Counter[str] = collections.Counter()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="webhook", daemon=True)
        self._runner: web.AppRunner | None = None
        self._transports: set[asyncio.BaseTransport] = set()

    async def _review(self, request: web.Request) -> web.Response:
        if request.transport is not None:
            self._transports.add(request.transport)
        review = await request.json()
        name = str(review["request"]["name"])
        answer: dict[str, Any] = {"uid": review["request"]["uid"], "allowed": True}
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
        return web.json_response({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": answer})

    async def _start(self) -> None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        pki = self.stack.pki_dir
        tls.load_cert_chain(pki / "kubelet.crt", pki / "kubelet.key")  # serving cert for 127.0.0.1, stack CA
        app = web.Application()
        app.router.add_post("/validate", self._review)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, stack_mod.HOST, self.port, ssl_context=tls).start()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        # A TLS connection's close waits for the API server's close_notify, which may come after
        # this loop stops: abort every connection the webhook was asked on, then let them close.
        for transport in self._transports:
            if isinstance(transport, asyncio.WriteTransport):
                transport.abort()
        for _ in range(3):
            await asyncio.sleep(0)  # let the aborted connections finish closing before the loop stops

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=20)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

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
