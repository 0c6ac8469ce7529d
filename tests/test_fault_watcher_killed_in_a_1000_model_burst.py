"""Check 1 (docs/reliability.md): 1,000 Models applied at once with all seven services running;
the watcher is killed (``kill -9``) while the burst is under way and started again. A user finds
every Model ready with exactly one Job whose uid never changed, no ``ReconcileFailed``, and every
service ready. kwok simulates the Jobs' Pods."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from substratus_local import testing_burst as burst
from substratus_local.stack import SERVICES, Stack
from substratus_local.testing import ServiceProcess, eventually

COUNT = 1000
KILL_AFTER = 300
STORED = 'substratus_events_published_total{stream="SUBSTRATUS_CHANGES"}'
"""Changes the watcher stored since it started (its own counter)."""


@pytest.mark.timeout(900)
def test_the_watcher_killed_in_a_1000_model_burst_loses_nothing(
    stack: Stack, namespace: str, run_service: Callable[..., ServiceProcess]
) -> None:
    started = {name: run_service(name) for name in SERVICES}
    watcher = started["watcher"]
    names = [f"b-{i:04d}" for i in range(COUNT)]
    began = time.monotonic()
    applying = burst.Applying(stack, namespace, burst.models(names))
    # Killed while the burst is still being applied and stored: after its first 300 changes.
    eventually(lambda: burst.metric(watcher, STORED) >= KILL_AFTER, 120, f"{KILL_AFTER} changes stored")
    watcher.kill()
    watcher.start()
    applying.finish()
    jobs = burst.Jobs(stack, namespace)
    eventually(burst.converged(stack, namespace, names, jobs), 600, f"{COUNT} Models ready after the watcher's restart")
    for proc in started.values():
        assert proc.ready(), f"{proc.service} not ready"
    print(f"\n{COUNT} Models ready {time.monotonic() - began:.0f}s after the apply began")
