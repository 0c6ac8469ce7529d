"""A message routed to several keys stays unacked until a pass over each of them, started after
it arrived, has succeeded: a crash before that redelivers it (docs/adr/100)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from substratus_common import errors
from substratus_common.bus import connection
from substratus_common.runtime import consumer

from .keyed_harness import Harness, Key, nats_bus, nats_url, until, until_async

__all__ = ["nats_bus", "nats_url"]


async def test_the_message_is_acked_only_after_the_slowest_key_passed(nats_bus: connection.Bus) -> None:
    release = asyncio.Event()
    passed: list[str] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        if key.name == "slow":
            await release.wait()
        passed.append(key.name)

    def route(delivery: consumer.Delivery) -> list[Key]:
        ns = delivery.subject.namespace
        return [Key("models", ns, "fast"), Key("models", ns, "slow")]

    async with Harness(nats_bus, handler, route=route) as h:
        await h.publish("dependency")
        await until(lambda: passed == ["fast"], "the fast key's pass")

        async def unacked() -> bool:
            return (await h.state())[1] == 1

        await until_async(unacked, "the message still unacked on the server")
        release.set()
        await until(lambda: passed == ["fast", "slow"], "the slow key's pass")
        assert await h.settled() == 0


async def test_a_retried_key_keeps_the_message_until_its_retry_succeeds(nats_bus: connection.Bus) -> None:
    attempts: list[str] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        attempts.append(key.name)
        if key.name == "flaky" and attempts.count("flaky") == 1:
            raise errors.TemporaryError("the API server is busy", delay_s=0.5)

    def route(delivery: consumer.Delivery) -> list[Key]:
        ns = delivery.subject.namespace
        return [Key("models", ns, "steady"), Key("models", ns, "flaky")]

    async with Harness(nats_bus, handler, route=route) as h:
        await h.publish("dependency")
        await until(lambda: "steady" in attempts and "flaky" in attempts, "both first passes")
        assert (await h.state())[1] == 1, "held while flaky waits for its retry"
        await until(lambda: attempts.count("flaky") == 2, "flaky's retry")
        assert await h.settled() == 0
    assert attempts.count("steady") == 1
