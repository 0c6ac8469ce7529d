"""Check 9 (docs/reliability.md): the same change event reaches three trainer replicas at once.
Each Model's stored change is published twice more under new message ids, so the shared durable
consumer hands three copies of one event to the replicas, whose passes take a second each (the
``slow-reconcile`` failpoint) and so overlap. A user still finds every Model ready with exactly one
Job whose uid never changed. kwok simulates the Jobs' Pods."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from substratus_common.bus import connection
from substratus_common.events import streams, subjects
from substratus_local import testing_burst as burst
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually, stream_messages

COUNT = 20
TRAINERS = 3


async def test_three_copies_of_one_event_at_three_replicas_make_one_job(
    stack: Stack, namespace: str, bus: connection.Bus, run_service: Callable[..., ServiceProcess]
) -> None:
    run_service("watcher")
    run_service("status-writer")
    env = {
        "SUBSTRATUS_REPLICAS": str(TRAINERS),
        "SUBSTRATUS_FAILPOINTS": "slow-reconcile",
        "SUBSTRATUS_RECONCILE_DELAY_S": "1",
    }
    trainers = [run_service("trainer", env=env) for _ in range(TRAINERS)]
    names = [f"s-{i:02d}" for i in range(COUNT)]
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=burst.models(names))

    filter_subject = subjects.change_filter("models", namespace)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while len(stored := await stream_messages(bus, streams.CHANGES, filter_subject, last_per_subject=True)) < COUNT:
        assert loop.time() < deadline, f"{len(stored)}/{COUNT} Model changes stored within 60 s"
        await asyncio.sleep(0.1)
    for copy in (1, 2):
        for msg in stored:
            await bus.publish_raw(msg.subject, msg.data, f"copy-{copy}-{msg.metadata.sequence.stream}")

    jobs = burst.Jobs(stack, namespace)
    models_converged = burst.converged(stack, namespace, names, jobs)

    def converged() -> bool:
        for proc in trainers:
            assert proc.ready(), f"{proc.service} not ready"
        return models_converged()

    eventually(converged, 240, "every Model ready with one Job")
    busy = [
        sum(1 for line in t.logs().splitlines() if '"Job created"' in line and f'"namespace": "{namespace}"' in line)
        for t in trainers
    ]
    assert sum(busy) == COUNT, f"Jobs created per trainer: {busy}"
