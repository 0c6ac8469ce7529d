"""Each replica fetches only what it can hold, and replicas sharing one durable consumer add
capacity: max_ack_pending is the per-replica limit times the replicas (docs/adr/102)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from substratus_common.bus import connection
from substratus_common.runtime import consumer

from .keyed_harness import Harness, Key, nats_bus, nats_url, until, until_async

__all__ = ["nats_bus", "nats_url"]


async def test_a_replica_holds_no_more_than_its_limit(nats_bus: connection.Bus) -> None:
    release = asyncio.Event()
    running: list[str] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        running.append(key.name)
        await release.wait()

    async with Harness(nats_bus, handler, max_pending=3, concurrency=8) as h:
        for i in range(10):
            await h.publish(f"m{i}")

        async def full() -> bool:
            return await h.state() == (7, 3, 0)

        await until_async(full, "three held, seven left on the server")
        assert h.consumer.held == 3
        assert len(running) == 3, "a free worker does not fetch past the held limit"
        release.set()
        await until(lambda: len(running) == 10, "the other seven")
        assert await h.settled() == 0


async def test_a_replica_fetches_no_more_than_its_idle_workers_can_start(nats_bus: connection.Bus) -> None:
    release = asyncio.Event()
    running: list[str] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        running.append(key.name)
        await release.wait()

    async with Harness(nats_bus, handler, max_pending=100, concurrency=2) as h:
        for i in range(10):
            await h.publish(f"m{i}")

        async def two_taken() -> bool:
            return await h.state() == (8, 2, 0)

        await until_async(two_taken, "two taken, eight left on the server for other replicas")
        assert h.consumer.held == 2
        release.set()
        await until(lambda: len(running) == 10, "the other eight")
        assert await h.settled() == 0


async def test_two_replicas_run_twice_what_one_does(nats_bus: connection.Bus) -> None:
    release = asyncio.Event()
    running: list[str] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        running.append(key.name)
        await release.wait()

    one = Harness(nats_bus, handler, max_pending=2, replicas=2)
    two = Harness(nats_bus, handler, durable=one.options.durable, ns=one.ns, max_pending=2, replicas=2)
    assert one.options.max_ack_pending == 4
    async with one, two:
        for i in range(8):
            await one.publish(f"m{i}")
        await until(lambda: len(running) == 4, "four passes at once over the two replicas")
        state = await nats_bus.consumer_state("SUBSTRATUS_CHANGES", one.options.durable)
        assert state is not None
        assert (state.max_ack_pending, state.num_ack_pending) == (4, 4)
        assert (one.consumer.held, two.consumer.held) == (2, 2)
        release.set()
        await until(lambda: len(running) == 8, "all eight")
        assert await one.settled() == 0
