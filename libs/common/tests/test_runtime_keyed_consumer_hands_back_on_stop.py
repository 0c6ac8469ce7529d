"""Nothing is lost when a consumer goes away: a message held longer than ack_wait is not
redelivered meanwhile (heartbeats), and one still held at stop comes back to the next consumer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from substratus_common.bus import connection
from substratus_common.runtime import consumer

from .keyed_harness import Harness, Key, nats_bus, nats_url, until, until_async

__all__ = ["nats_bus", "nats_url"]


async def test_a_held_message_is_not_redelivered_while_its_pass_runs_past_ack_wait(nats_bus: connection.Bus) -> None:
    passes: list[int] = []
    release = asyncio.Event()

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        passes.append(len(deliveries))
        await release.wait()

    async with Harness(nats_bus, handler, ack_wait_s=0.6) as h:
        await h.publish("long")
        await until(lambda: passes, "the pass")
        started = asyncio.get_running_loop().time()

        async def three_ack_waits() -> bool:
            assert (await h.state())[2] == 0, "redelivered although the pass heartbeats"
            return asyncio.get_running_loop().time() - started > 1.8

        await until_async(three_ack_waits, "three ack waits")
        release.set()
        assert await h.settled() == 0
    assert passes == [1]


async def test_messages_held_at_stop_come_back_to_the_next_consumer(nats_bus: connection.Bus) -> None:
    first: list[str] = []

    async def stuck(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        first.append(key.name)
        if key.name == "backing-off":
            raise RuntimeError("the API server answered 503")  # held while it waits out 30 s
        await asyncio.Event().wait()  # never finishes: cancelled after the grace period

    h = Harness(nats_bus, stuck, grace_s=0.2, backoff_s=(30.0,))
    async with h:
        await h.publish("running")
        await h.publish("backing-off")
        await until(lambda: h.consumer.held == 2 and len(first) == 2, "both held, one running, one backing off")
    assert sorted(first) == ["backing-off", "running"]

    second: list[tuple[str, int]] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        second.extend((key.name, d.deliveries) for d in deliveries)

    async with Harness(nats_bus, handler, durable=h.options.durable, ns=h.ns) as again:
        await until(lambda: len(second) == 2, "both messages delivered again")
        await again.settled()
    assert sorted(second) == [("backing-off", 2), ("running", 2)]


async def test_messages_queued_behind_a_pass_longer_than_ack_wait_are_not_redelivered(
    nats_bus: connection.Bus,
) -> None:
    """Check 13 (docs/reliability.md): while one pass runs for three ack waits, the messages that
    arrive for its key wait held behind it, heartbeating; none is redelivered, and they make one
    more pass afterwards."""
    passes: list[int] = []
    release = asyncio.Event()

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        passes.append(len(deliveries))
        if len(passes) == 1:
            await release.wait()

    async with Harness(nats_bus, handler, ack_wait_s=0.6, concurrency=2) as h:
        await h.publish("long")
        await until(lambda: passes, "the long pass")
        for _ in range(3):
            await h.publish("long")
        await until(lambda: h.consumer.held == 4, "three more messages held behind the pass")
        started = asyncio.get_running_loop().time()

        async def three_ack_waits() -> bool:
            assert (await h.state())[2] == 0, "a queued message was redelivered"
            return asyncio.get_running_loop().time() - started > 1.8

        await until_async(three_ack_waits, "three ack waits")
        release.set()
        assert await h.settled() == 0
    assert passes == [1, 3], "one more pass with the three queued messages"
