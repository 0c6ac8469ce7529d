"""Check 1 (docs/reliability.md): 1,000 Models applied at once with all seven services running;
the watcher is killed (``kill -9``) while the burst is under way and started again. A user finds
every Model ready with exactly one Job whose uid never changed, no ``ReconcileFailed``, and every
service ready. kwok simulates the Jobs' Pods."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from substratus_local import stack as stack_mod
from substratus_local.stack import SERVICES, Stack
from substratus_local.testing import ServiceProcess, eventually

COUNT = 1000
KILL_AFTER = 300


def _published(proc: ServiceProcess) -> float:
    """Changes the watcher stored since it started (its own counter)."""
    text = httpx.get(f"http://{stack_mod.HOST}:{proc.port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith('substratus_events_published_total{stream="SUBSTRATUS_CHANGES"}'):
            return float(line.split()[1])
    return 0.0


def _models() -> str:
    items = [
        {
            "apiVersion": "substratus.ai/v1",
            "kind": "Model",
            "metadata": {"name": f"b-{i:04d}"},
            "spec": {"image": "substratusai/model-loader-huggingface", "params": {"name": f"org/b-{i}"}},
        }
        for i in range(COUNT)
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def _items(stack: Stack, namespace: str, kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(stack.kubectl("get", kind, "-n", namespace, "-o", "json").stdout)["items"]
    return found


@pytest.mark.timeout(900)
def test_the_watcher_killed_in_a_1000_model_burst_loses_nothing(
    stack: Stack, namespace: str, run_service: Callable[..., ServiceProcess]
) -> None:
    started = {name: run_service(name) for name in SERVICES}
    watcher = started["watcher"]
    began = time.monotonic()
    applying = threading.Thread(
        target=stack.kubectl, args=("apply", "--server-side", "-n", namespace, "-f", "-"), kwargs={"input": _models()}
    )
    applying.start()
    # Killed while the burst is still being applied and stored: after its first 300 changes.
    eventually(lambda: _published(watcher) >= KILL_AFTER, 120, f"{KILL_AFTER} changes stored")
    watcher.kill()
    watcher.start()
    applying.join(timeout=300)
    assert not applying.is_alive(), "kubectl apply of the burst did not finish"
    first_uid: dict[str, str] = {}

    def jobs_seen() -> int:
        for job in _items(stack, namespace, "jobs"):
            meta = job["metadata"]
            assert first_uid.setdefault(meta["name"], meta["uid"]) == meta["uid"], f"{meta['name']} re-created"
        return len(first_uid)

    def converged() -> bool:
        models = _items(stack, namespace, "models")
        failed = [
            m["metadata"]["name"]
            for m in models
            if any(c.get("reason") == "ReconcileFailed" for c in (m.get("status") or {}).get("conditions") or [])
        ]
        assert not failed, f"ReconcileFailed on {failed[:5]}"
        ready = sum(1 for m in models if (m.get("status") or {}).get("ready") is True)
        assert ready == COUNT, f"{ready}/{COUNT} Models ready"
        assert jobs_seen() == COUNT
        return True

    eventually(converged, 600, f"{COUNT} Models ready after the watcher's restart")
    owners = sorted(j["metadata"]["labels"]["substratus.ai/name"] for j in _items(stack, namespace, "jobs"))
    assert owners == sorted(f"b-{i:04d}" for i in range(COUNT)), "one Job per Model"
    for proc in started.values():
        assert proc.ready(), f"{proc.service} not ready"
    print(f"\n{COUNT} Models ready {time.monotonic() - began:.0f}s after the apply began")
