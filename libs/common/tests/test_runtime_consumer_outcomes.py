"""The consumer runner on a real NATS: what each handler outcome does to the message.

success → acked once; TemporaryError → delivered again; PermanentError → reported and not
redelivered; a handler that keeps failing → SUBSTRATUS_DEAD and reported as ReconcileFailed;
an undecodable message or an unknown type → SUBSTRATUS_DEAD at once.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import msgspec
import pytest

from substratus_common import config, errors
from substratus_common.bus import connection
from substratus_common.events import envelope, payloads, streams, subjects
from substratus_common.runtime import consumer
from substratus_local.stack import Stack


@pytest.fixture
async def bus(stack: Stack) -> AsyncIterator[connection.Bus]:
    settings = config.Settings(service="test", nats_url=stack.nats_url)
    bus = await connection.connect(settings)
    yield bus
    await bus.close()


class Harness:
    """A consumer on its own namespace's change subjects, running in the background."""

    def __init__(self, bus: connection.Bus, handler: consumer.Handler, **options: object) -> None:
        self.ns = "c-" + secrets.token_hex(4)
        self.bus = bus
        self.gave_up: list[tuple[str, str]] = []
        self.stop = asyncio.Event()

        async def on_give_up(delivery: consumer.Delivery, reason: str, message: str) -> None:
            self.gave_up.append((reason, message))

        opts = consumer.ConsumerOptions(
            stream=streams.CHANGES,
            durable="test-" + self.ns,
            filter_subjects=[subjects.change_filter("models", self.ns)],
            concurrency=4,
            ack_wait_s=2.0,
            max_deliveries=3,
            backoff_s=(0.05,),
            accepts=envelope.is_change_type,
        )
        for key, value in options.items():
            setattr(opts, key, value)
        self.consumer = consumer.Consumer(bus, "test", opts, handler, on_give_up=on_give_up)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Harness:
        self.task = asyncio.create_task(self.consumer.run(self.stop, grace_s=5))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 15)

    async def publish(self, name: str, event_type: str = "ai.substratus.model.changed.v1") -> None:
        event = envelope.make(
            id=secrets.token_hex(8), source="test", type=event_type, subject=f"models/{self.ns}/{name}", data={}
        )
        await self.bus.publish(subjects.change("models", self.ns, name), event)

    async def settled(self, limit_s: float = 20) -> int:
        """Wait until nothing is pending or unacked on the consumer; the number of redeliveries."""
        deadline = asyncio.get_running_loop().time() + limit_s
        while True:
            info = await self.bus.js.consumer_info(streams.CHANGES, self.consumer.options.durable)
            if not info.num_pending and not info.num_ack_pending:
                return int(info.num_redelivered or 0)
            assert asyncio.get_running_loop().time() < deadline, f"consumer not settled: {info}"
            await asyncio.sleep(0.05)

    async def dead_letters(self) -> list[payloads.DeadLetter]:
        letters = []
        filter_subject = f"substratus.dead.test.models.{self.ns}.>"
        async for msg in self.bus.last_per_subject(streams.DEAD, filter_subject):
            letters.append(payloads.decode_data(envelope.decode(msg.data), payloads.DeadLetter))
        return letters


async def until(predicate: object, what: str, limit_s: float = 20) -> None:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + limit_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{what} did not happen within {limit_s:.0f}s")
        await asyncio.sleep(0.02)


async def test_a_successful_handler_sees_each_message_once(bus: connection.Bus) -> None:
    seen: list[str] = []

    async def handler(d: consumer.Delivery) -> None:
        seen.append(d.subject.name)

    async with Harness(bus, handler) as h:
        for i in range(5):
            await h.publish(f"m{i}")
        await until(lambda: len(seen) == 5, "five handled")
        assert await h.settled() == 0  # all acked: none will come back
    assert sorted(seen) == [f"m{i}" for i in range(5)]


async def test_a_temporary_error_is_retried_until_it_passes(bus: connection.Bus) -> None:
    attempts: list[int] = []

    async def handler(d: consumer.Delivery) -> None:
        attempts.append(d.deliveries)
        if d.deliveries < 2:
            raise errors.TemporaryError("not yet", delay_s=0.05)

    async with Harness(bus, handler) as h:
        await h.publish("flaky")
        await until(lambda: attempts == [1, 2], "second attempt")
    assert h.gave_up == []


async def test_a_permanent_error_is_reported_and_not_redelivered(bus: connection.Bus) -> None:
    attempts: list[int] = []

    async def handler(d: consumer.Delivery) -> None:
        attempts.append(d.deliveries)
        raise errors.PermanentError("spec.params.x: must be a number", reason="Invalid")

    async with Harness(bus, handler) as h:
        await h.publish("bad")
        await until(lambda: h.gave_up, "the failure report")
        assert await h.settled() == 0  # terminated: it will not come back
    assert attempts == [1]
    assert h.gave_up == [("Invalid", "spec.params.x: must be a number")]


async def test_a_handler_that_keeps_failing_ends_in_dead_with_reconcile_failed(bus: connection.Bus) -> None:
    async def handler(d: consumer.Delivery) -> None:
        raise RuntimeError("boom")

    async with Harness(bus, handler) as h:
        await h.publish("doomed")
        await until(lambda: h.gave_up, "giving up")
        letters = await h.dead_letters()
    assert [(r, m.startswith("gave up after 3 attempts")) for r, m in h.gave_up] == [("ReconcileFailed", True)]
    assert len(letters) == 1
    assert letters[0].reason == "max-deliveries"
    assert letters[0].deliveries == 3
    assert letters[0].original_subject == subjects.change("models", h.ns, "doomed")


async def test_poison_messages_go_to_dead_instead_of_looping(bus: connection.Bus) -> None:
    handled: list[str] = []

    async def handler(d: consumer.Delivery) -> None:
        handled.append(d.subject.name)

    async with Harness(bus, handler) as h:
        await bus.publish_raw(subjects.change("models", h.ns, "garbage"), b"\x00 not json")
        await h.publish("strange", event_type="com.example.unknown.v1")
        await bus.publish_raw(
            subjects.change("models", h.ns, "nospec"), msgspec.json.encode({"id": "x", "specversion": "0.3"})
        )
        letters: list[payloads.DeadLetter] = []

        async def collect() -> bool:
            letters[:] = await h.dead_letters()
            return len(letters) == 3

        deadline = asyncio.get_running_loop().time() + 20
        while not await collect():
            assert asyncio.get_running_loop().time() < deadline, f"dead letters: {letters}"
            await asyncio.sleep(0.05)
    assert handled == []
    assert sorted(letter.reason for letter in letters) == ["undecodable", "undecodable", "unknown-type"]
    assert all(letter.deliveries == 1 for letter in letters)


async def test_messages_about_one_resource_never_run_at_once(bus: connection.Bus) -> None:
    running: dict[str, int] = {}
    overlap: list[str] = []
    done: list[str] = []

    async def handler(d: consumer.Delivery) -> None:
        name = d.subject.name
        running[name] = running.get(name, 0) + 1
        if running[name] > 1:
            overlap.append(name)
        await asyncio.sleep(0.05)
        running[name] -= 1
        done.append(name)

    async with Harness(bus, handler) as h:
        for i in range(12):
            await h.publish(f"r{i % 3}")
        await until(lambda: len(done) == 12, "all handled")
    assert overlap == []
