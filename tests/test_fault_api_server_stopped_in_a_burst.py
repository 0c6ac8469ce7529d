"""Check 6 (docs/reliability.md): the API server is stopped for 60 s in the middle of a burst and
started again. The trainer's passes fail on it all along (two workers, a second per pass, so most
of the burst is still queued) with a delivery limit of three, which the outage must not use up:
a user finds every Model ready, one Job per Model whose uid never changed, and no
``ReconcileFailed``. kwok simulates the Jobs' Pods (it waits for the API server too)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from substratus_local import stack as stack_mod
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually

COUNT = 30
DOWN_S = 60.0


def _models() -> str:
    items = [
        {
            "apiVersion": "substratus.ai/v1",
            "kind": "Model",
            "metadata": {"name": f"a-{i:02d}"},
            "spec": {"image": "substratusai/model-loader-huggingface", "params": {"name": f"org/a-{i}"}},
        }
        for i in range(COUNT)
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def _items(stack: Stack, namespace: str, kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(stack.kubectl("get", kind, "-n", namespace, "-o", "json").stdout)["items"]
    return found


def _outage_retries(proc: ServiceProcess) -> float:
    text = httpx.get(f"http://{stack_mod.HOST}:{proc.port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith('substratus_reconcile_retries_total{kind="outage"}'):
            return float(line.split()[1])
    return 0.0


def test_the_api_server_away_for_60s_in_a_burst_ends_in_convergence_not_reconcile_failed(
    stack: Stack, namespace: str, run_service: Callable[..., ServiceProcess]
) -> None:
    if stack.state.real_node or not stack.alive("apiserver"):
        raise AssertionError("this test stops the session stack's own API server")
    limits = {"SUBSTRATUS_MAX_DELIVERIES": "3"}
    run_service("watcher", env=limits)
    run_service("status-writer", env=limits)
    trainer = run_service(
        "trainer",
        env={
            **limits,
            "SUBSTRATUS_CONSUMER_CONCURRENCY": "2",
            "SUBSTRATUS_FAILPOINTS": "slow-reconcile",
            "SUBSTRATUS_RECONCILE_DELAY_S": "1",
        },
    )
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=_models())
    first_uid: dict[str, str] = {}

    def jobs_seen() -> int:
        for job in _items(stack, namespace, "jobs"):
            meta = job["metadata"]
            assert first_uid.setdefault(meta["name"], meta["uid"]) == meta["uid"], f"{meta['name']} re-created"
        return len(first_uid)

    eventually(lambda: jobs_seen() >= 3, 60, "the burst under way")
    stack.stop_process("apiserver")
    stopped_at = time.monotonic()
    eventually(lambda: _outage_retries(trainer) >= 1, DOWN_S, "the trainer's passes failing on the outage")
    time.sleep(max(DOWN_S - (time.monotonic() - stopped_at), 0))  # the outage lasts its 60 s
    stack.up()  # starts what is not running: the API server, on its port, with its certificates

    def converged() -> bool:
        models = _items(stack, namespace, "models")
        for model in models:
            for condition in (model.get("status") or {}).get("conditions") or []:
                assert condition.get("reason") != "ReconcileFailed", f"{model['metadata']['name']}: {condition}"
        ready = [m for m in models if (m.get("status") or {}).get("ready") is True]
        assert len(ready) == COUNT, f"{len(ready)}/{COUNT} Models ready"
        assert jobs_seen() == COUNT
        owners = sorted(j["metadata"]["labels"]["substratus.ai/name"] for j in _items(stack, namespace, "jobs"))
        assert owners == sorted(m["metadata"]["name"] for m in models), "one Job per Model"
        return True

    eventually(converged, 240, "every Model ready after the API server came back")
    assert trainer.ready()
    print(f"\n{_outage_retries(trainer):.0f} trainer passes retried on the outage, none counted")
