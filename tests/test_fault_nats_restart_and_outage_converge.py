"""Checks 4 and 5 (docs/reliability.md): NATS restarted gracefully in the middle of a burst, and
NATS down for three minutes. The watcher, the status writer and the trainer run as processes on
the session's API server, against a NATS of the test's own; kwok simulates the Jobs' Pods.

What a user checks: every Model ready, one Job per Model that was never re-created (its uid never
changes), no ``ReconcileFailed`` on any Model, and while NATS is away every service says so on
``/readyz`` and in ``substratus_bus_connected`` instead of idling green or exiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from substratus_local import nats_cluster
from substratus_local import stack as stack_mod
from substratus_local import testing_burst as burst
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually
from substratus_local.testing_nats import nats_node

__all__ = ["nats_node"]  # the fixture, imported for this module's tests

SERVICES = ("watcher", "status-writer", "trainer")
OUTAGE_S = 180.0


def _start(run_service: Callable[..., ServiceProcess], cluster: nats_cluster.Cluster) -> list[ServiceProcess]:
    env = {"NATS_URL": cluster.url, "SUBSTRATUS_ACK_WAIT_S": "10"}
    return [run_service(name, env=env) for name in SERVICES]


def _probe(proc: ServiceProcess) -> tuple[int, str, float | None]:
    """(``/readyz`` status, its text, ``substratus_bus_connected``) of one service."""
    base = f"http://{stack_mod.HOST}:{proc.port}"
    ready = httpx.get(f"{base}/readyz", timeout=5)
    gauge = burst.metric_in(httpx.get(f"{base}/metrics", timeout=5).text, "substratus_bus_connected", default=None)
    return ready.status_code, ready.text, gauge


def test_a_graceful_nats_restart_in_a_burst_loses_nothing(
    stack: Stack, namespace: str, nats_node: nats_cluster.Cluster, run_service: Callable[..., ServiceProcess]
) -> None:
    services = _start(run_service, nats_node)
    names = [f"r-{i:02d}" for i in range(40)]
    jobs = burst.Jobs(stack, namespace)
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=burst.models(names[:20]))
    eventually(lambda: len(jobs.look()) >= 5, 60, "the burst under way")

    nats_node.stop()  # SIGTERM: nats-server closes its clients and flushes its store
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=burst.models(names[20:]))  # while it is down
    nats_node.restart("n1")

    eventually(burst.converged(stack, namespace, names, jobs), 240, "every Model ready after the restart")
    for proc in services:
        assert proc.ready(), f"{proc.service} ready again"


def test_nats_down_three_minutes_every_service_says_so_and_all_converges_after(
    stack: Stack, namespace: str, nats_node: nats_cluster.Cluster, run_service: Callable[..., ServiceProcess]
) -> None:
    services = _start(run_service, nats_node)
    names = [f"o-{i:02d}" for i in range(30)]
    jobs = burst.Jobs(stack, namespace)
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=burst.models(names[:10]))
    eventually(burst.converged(stack, namespace, names[:10], jobs), 120, "the first Models ready")

    nats_node.kill("n1")
    down_at = time.monotonic()

    def every_service_says_nats_is_away() -> bool:
        for proc in services:
            status, text, gauge = _probe(proc)
            assert status == 503, f"{proc.service} /readyz {status}"
            assert "nats (disconnected from NATS for" in text, f"{proc.service}: {text}"
            assert gauge == 0, f"{proc.service} substratus_bus_connected {gauge}"
        return True

    eventually(every_service_says_nats_is_away, 60, "every service reporting NATS away")
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=burst.models(names[10:]))  # during the outage
    while time.monotonic() - down_at < OUTAGE_S:
        every_service_says_nats_is_away()  # all along, and none has exited (a probe would fail)
        time.sleep(5)

    nats_node.restart("n1")
    eventually(burst.converged(stack, namespace, names, jobs), 240, "every Model ready after the outage")
    for proc in services:
        status, text, gauge = _probe(proc)
        assert (status, gauge) == (200, 1), f"{proc.service}: {text}"
