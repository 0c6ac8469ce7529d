"""Check 6 (docs/reliability.md): the API server is stopped for 60 s in the middle of a burst and
started again. The trainer's passes fail on it all along (two workers, a second per pass, so most
of the burst is still queued) with a delivery limit of three, which the outage must not use up:
a user finds every Model ready, one Job per Model whose uid never changed, and no
``ReconcileFailed``. kwok simulates the Jobs' Pods (it waits for the API server too)."""

from __future__ import annotations

import time
from collections.abc import Callable

from substratus_local import testing_burst as burst
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually

COUNT = 30
DOWN_S = 60.0
OUTAGE_RETRIES = 'substratus_reconcile_retries_total{kind="outage"}'


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
    names = [f"a-{i:02d}" for i in range(COUNT)]
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=burst.models(names))
    jobs = burst.Jobs(stack, namespace)

    eventually(lambda: jobs.seen() >= 3, 60, "the burst under way")
    stack.stop_process("apiserver")
    stopped_at = time.monotonic()
    eventually(lambda: burst.metric(trainer, OUTAGE_RETRIES) >= 1, DOWN_S, "the trainer's passes failing on the outage")
    time.sleep(max(DOWN_S - (time.monotonic() - stopped_at), 0))  # the outage lasts its 60 s
    stack.up()  # starts what is not running: the API server, on its port, with its certificates

    eventually(burst.converged(stack, namespace, names, jobs), 240, "every Model ready after the API server came back")
    assert trainer.ready()
    print(f"\n{burst.metric(trainer, OUTAGE_RETRIES):.0f} trainer passes retried on the outage, none counted")
