"""Messages about one resource that arrive while it is queued or reconciled make one more pass,
not one pass each; every one of them is acked after that pass."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from substratus_common.bus import connection
from substratus_common.runtime import consumer

from .keyed_harness import Harness, Key, nats_bus, nats_url, until, until_async

__all__ = ["nats_bus", "nats_url"]


async def test_ten_events_during_a_pass_become_one_more_pass(nats_bus: connection.Bus) -> None:
    release = asyncio.Event()
    passes: list[int] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        passes.append(len(deliveries))
        if len(passes) == 1:
            await release.wait()

    async with Harness(nats_bus, handler) as h:
        await h.publish("opt")
        await until(lambda: passes, "the first pass")
        for _ in range(10):
            await h.publish("opt")
        await until(lambda: h.consumer.held == 11, "the ten events held while the first pass runs")
        assert passes == [1], "no second pass over a key while one runs"

        async def unacked() -> bool:
            return (await h.state())[1] == 11

        await until_async(unacked, "eleven unacked messages on the server")
        release.set()
        await until(lambda: len(passes) == 2, "the second pass")
        assert await h.settled() == 0
    assert passes == [1, 10], "the second pass got the ten deliveries, oldest first"


async def test_the_deliveries_of_a_pass_come_oldest_first(nats_bus: connection.Bus) -> None:
    release = asyncio.Event()
    seen: list[list[int]] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        seen.append([d.stream_sequence for d in deliveries])
        if len(seen) == 1:
            await release.wait()

    async with Harness(nats_bus, handler) as h:
        await h.publish("opt")
        await until(lambda: seen, "the first pass")
        for _ in range(4):
            await h.publish("opt")
        await until(lambda: h.consumer.held == 5, "four more held")
        release.set()
        await until(lambda: len(seen) == 2, "the second pass")
    assert seen[1] == sorted(seen[1])
    assert len(seen[1]) == 4


async def test_passes_over_one_resource_never_run_at_once(nats_bus: connection.Bus) -> None:
    running: dict[str, int] = {}
    overlap: list[str] = []
    seen: list[int] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        running[key.name] = running.get(key.name, 0) + 1
        if running[key.name] > 1:
            overlap.append(key.name)
        await asyncio.sleep(0.05)  # a pass that takes a while, so events pile up behind it
        running[key.name] -= 1
        seen.extend(d.stream_sequence for d in deliveries)

    async with Harness(nats_bus, handler) as h:
        for i in range(12):
            await h.publish(f"r{i % 3}")
        await until(lambda: len(seen) == 12, "every event in some pass")
        assert await h.settled() == 0
    assert overlap == []
    assert len(set(seen)) == 12, "each event in exactly one pass"
