"""The keyed consumer on a real NATS: what each row of the ack table does to the messages and to
the resource (docs/adr/101).

success → acked once; PermanentError or retryable=False → reported on the key at the first attempt,
terminated; TemporaryError(delay) → another pass after the delay; anything else → backoff, then
SUBSTRATUS_DEAD and ReconcileFailed; undecodable or unknown type → SUBSTRATUS_DEAD at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec

from substratus_common import errors
from substratus_common.bus import connection
from substratus_common.events import subjects
from substratus_common.kube import errors as kube_errors
from substratus_common.runtime import consumer
from substratus_common.storage import errors as storage_errors

from .keyed_harness import Harness, Key, nats_bus, nats_url, until, until_async

__all__ = ["nats_bus", "nats_url"]


async def test_a_successful_pass_acks_every_message_once(nats_bus: connection.Bus) -> None:
    passes: list[Key] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        assert all(d.subject.key == key for d in deliveries)
        passes.append(key)

    async with Harness(nats_bus, handler) as h:
        for i in range(5):
            await h.publish(f"m{i}")
        await until(lambda: len(passes) == 5, "five passes")
        assert await h.settled() == 0  # all acked: none will come back
    assert sorted(k.name for k in passes) == [f"m{i}" for i in range(5)]
    assert h.gave_up == []


async def test_a_permanent_error_is_reported_on_the_key_and_not_retried(nats_bus: connection.Bus) -> None:
    attempts: list[Key] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        attempts.append(key)
        raise errors.PermanentError("spec.params.x: must be a number", reason="Invalid")

    async with Harness(nats_bus, handler) as h:
        await h.publish("bad")
        await until(lambda: h.gave_up, "the failure report")
        assert await h.settled() == 0  # terminated: it will not come back
    assert attempts == [h.key("bad")]
    assert h.gave_up == [(h.key("bad"), "Invalid", "spec.params.x: must be a number")]


async def test_an_error_marked_not_retryable_is_given_up_at_the_first_attempt(nats_bus: connection.Bus) -> None:
    refusals: dict[str, Exception] = {
        "rbac": kube_errors.Forbidden("jobs.batch is forbidden", status=403),
        "bucket": storage_errors.StorageRefused("put x: 403 AccessDenied", status=403),
        "schema": kube_errors.Invalid("Job.batch is invalid: spec.template: Required value", status=422),
    }
    attempts: list[str] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        attempts.append(key.name)
        raise refusals[key.name]

    async with Harness(nats_bus, handler) as h:
        for name in refusals:
            await h.publish(name)
        await until(lambda: len(h.gave_up) == 3, "three failure reports")
        assert await h.settled() == 0
    assert sorted(attempts) == sorted(refusals), "one attempt each, not max_deliveries"
    assert sorted((k.name, reason) for k, reason, _ in h.gave_up) == [
        ("bucket", "Forbidden"),
        ("rbac", "Forbidden"),
        ("schema", "Invalid"),
    ]
    give_ups = h.metrics.registry.get_sample_value
    assert give_ups("substratus_give_ups_total", {"reason": "Forbidden"}) == 2
    assert give_ups("substratus_give_ups_total", {"reason": "Invalid"}) == 1


async def test_a_temporary_error_makes_another_pass_after_its_delay(nats_bus: connection.Bus) -> None:
    passes: list[float] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        passes.append(asyncio.get_running_loop().time())
        if len(passes) < 2:
            raise errors.TemporaryError("not yet", delay_s=0.3)

    async with Harness(nats_bus, handler) as h:
        await h.publish("flaky")
        await until(lambda: len(passes) == 2, "the second pass")
        assert await h.settled() == 0, "retried from the queue, not by redelivery"
    assert passes[1] - passes[0] >= 0.3
    assert h.gave_up == []


async def test_a_pass_that_keeps_failing_ends_in_dead_with_reconcile_failed(nats_bus: connection.Bus) -> None:
    attempts: list[int] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        attempts.append(len(deliveries))
        raise RuntimeError("boom")

    async with Harness(nats_bus, handler) as h:
        await h.publish("doomed")
        await until(lambda: h.gave_up, "giving up")
        assert await h.settled() == 0
        letters = await h.dead_letters()
    assert attempts == [1, 1, 1], "max_deliveries passes, each with the held message"
    assert [(k, r, m.startswith("gave up after 3 attempts: boom")) for k, r, m in h.gave_up] == [
        (h.key("doomed"), "ReconcileFailed", True)
    ]
    assert len(letters) == 1
    assert letters[0].reason == "max-deliveries"
    assert letters[0].deliveries == 3
    assert letters[0].original_subject == subjects.change("models", h.ns, "doomed")


async def test_poison_messages_go_to_dead_without_a_pass(nats_bus: connection.Bus) -> None:
    passes: list[Key] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        passes.append(key)

    async with Harness(nats_bus, handler) as h:
        await nats_bus.publish_raw(subjects.change("models", h.ns, "garbage"), b"\x00 not json")
        await h.publish("strange", event_type="com.example.unknown.v1")
        await nats_bus.publish_raw(
            subjects.change("models", h.ns, "nospec"), msgspec.json.encode({"id": "x", "specversion": "0.3"})
        )
        found: list[str] = []

        async def three() -> bool:
            found[:] = [letter.reason for letter in await h.dead_letters()]
            return len(found) == 3

        await until_async(three, "three dead letters")
        assert await h.settled() == 0
    assert passes == []
    assert sorted(found) == ["undecodable", "undecodable", "unknown-type"]


async def test_a_message_routed_to_no_key_is_acked_without_a_pass(nats_bus: connection.Bus) -> None:
    passes: list[Key] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        passes.append(key)

    def route(delivery: consumer.Delivery) -> list[Key]:
        return [] if delivery.subject.name.startswith("skip") else [delivery.subject.key]

    async with Harness(nats_bus, handler, route=route) as h:
        await h.publish("skip-me")
        await h.publish("take-me")
        await until(lambda: passes, "the pass over take-me")
        assert await h.settled() == 0
    assert passes == [h.key("take-me")]


async def test_a_failure_is_reported_on_the_key_that_failed_not_on_the_messages_subject(
    nats_bus: connection.Bus,
) -> None:
    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        if key.name == "dependent":
            raise errors.PermanentError("the base Model's spec is unusable", reason="Invalid")

    def route(delivery: consumer.Delivery) -> list[Key]:
        # A dependency's change makes its dependent dirty too (the managers' wake-ups).
        return [delivery.subject.key, Key("models", delivery.subject.namespace, "dependent")]

    async with Harness(nats_bus, handler, route=route) as h:
        await h.publish("base")
        await until(lambda: h.gave_up, "the failure report")
        assert await h.settled() == 0
    assert [(k, reason) for k, reason, _ in h.gave_up] == [(h.key("dependent"), "Invalid")]


async def test_events_about_a_key_that_backs_off_wait_for_its_delay(nats_bus: connection.Bus) -> None:
    passes: list[int] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        passes.append(len(deliveries))
        if len(passes) == 1:
            raise RuntimeError("the API server answered 503")

    async with Harness(nats_bus, handler, backoff_s=(2.0,)) as h:
        await h.publish("busy")
        await until(lambda: passes, "the failing pass")
        for _ in range(5):
            await h.publish("busy")
        await until(lambda: h.consumer.held == 6, "five more held")
        await until(lambda: len(passes) == 2, "the pass after the delay")
        assert await h.settled() == 0
    # Had the burst bypassed the backoff, a pass would have run at its first event, with fewer.
    assert passes == [1, 6], "one retry, after the delay, with the failed message and the five new ones"
    assert h.gave_up == []
    sample = h.metrics.registry.get_sample_value
    assert sample("substratus_reconcile_retries_total", {"kind": "backoff"}) == 1
    assert sample("substratus_messages_held") == 0
    assert sample("substratus_workqueue_depth") == 0


async def test_an_outage_is_retried_past_the_delivery_limit_and_converges(nats_bus: connection.Bus) -> None:
    """Six passes fail on an API server that cannot be reached (twice the delivery limit): no
    ReconcileFailed, and the seventh pass acks (checks 5 and 6, docs/reliability.md)."""
    attempts: list[int] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        attempts.append(len(deliveries))
        if len(attempts) <= 6:
            raise kube_errors.APIUnavailable("GET /apis/batch/v1/namespaces/x/jobs/y: ClientConnectorError()")

    async with Harness(nats_bus, handler) as h:
        await h.publish("away")
        await until(lambda: len(attempts) == 7, "the pass after the outage")
        assert await h.settled() == 0, "acked once the API server answered"
        assert h.metrics.retries.labels("outage")._value.get() == 6
    assert h.gave_up == []


async def test_an_outage_counts_once_its_allowance_is_used_up(nats_bus: connection.Bus) -> None:
    attempts: list[int] = []

    async def handler(key: Key, deliveries: Sequence[consumer.Delivery]) -> None:
        attempts.append(len(deliveries))
        raise kube_errors.APIUnavailable("503 Service Unavailable", status=503)

    async with Harness(nats_bus, handler, max_outage_retries=2) as h:
        await h.publish("gone-for-good")
        await until(lambda: h.gave_up, "giving up")
    assert len(attempts) == 2 + 3, "two free retries, then the delivery limit of three"
    assert [(k, r) for k, r, _ in h.gave_up] == [(h.key("gone-for-good"), "ReconcileFailed")]
