"""The consumer runner: fetch only what can run, one handler per resource, typed errors → acks.

- Slots are reserved before ``fetch`` and the consumer's ``max_ack_pending`` equals them, so no
  message waits in memory while its ack timer runs.
- Messages about the same resource (``plural/ns/name``) run one after another; others in parallel.
- A running handler heartbeats with ``in_progress()`` so long work is not redelivered.
- Outcome: success → ack; PermanentError → ``on_give_up`` then term; anything else → nak with
  growing delay, and after ``max_deliveries`` → SUBSTRATUS_DEAD, ``on_give_up`` (ReconcileFailed),
  term. An undecodable message or an unknown event type goes straight to SUBSTRATUS_DEAD.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import msgspec
import nats.errors
from nats.aio.msg import Msg

from substratus_common import errors, failpoints
from substratus_common.bus import connection
from substratus_common.bus.errors import BusError
from substratus_common.events import envelope, payloads, subjects
from substratus_common.metrics import RuntimeMetrics

log = logging.getLogger(__name__)

FETCH_WAIT_S = 2.0


@dataclass(frozen=True)
class Delivery:
    """One message as a handler sees it."""

    subject: subjects.Subject
    event: envelope.CloudEvent
    deliveries: int
    stream_sequence: int


Handler = Callable[[Delivery], Awaitable[None]]
GiveUp = Callable[[Delivery, str, str], Awaitable[None]]
"""Called with (delivery, reason, message) when a message is terminated: report it on the resource."""


@dataclass
class ConsumerOptions:
    stream: str
    durable: str
    filter_subjects: Sequence[str]
    concurrency: int = 32
    ack_wait_s: float = 30.0
    max_deliveries: int = 8
    backoff_s: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
    accepts: Callable[[str], bool] = lambda event_type: True
    """Event types the handler understands; others are dead-lettered as ``unknown-type``."""


@dataclass
class _KeyLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Consumer:
    def __init__(
        self,
        bus: connection.Bus,
        service: str,
        options: ConsumerOptions,
        handler: Handler,
        *,
        on_give_up: GiveUp | None = None,
        metrics: RuntimeMetrics | None = None,
    ) -> None:
        self.bus, self.service, self.options, self.handler = bus, service, options, handler
        self.on_give_up = on_give_up
        self.metrics = metrics
        self._locks: dict[tuple[str, str, str], _KeyLock] = {}
        self._inflight: set[asyncio.Task[None]] = set()
        self.ready = False

    async def run(self, stop: asyncio.Event, grace_s: float = 20.0) -> None:
        """Fetch and handle until ``stop``; then finish in-flight work for at most ``grace_s``."""
        opts = self.options
        sub = await self.bus.pull(
            opts.stream,
            opts.durable,
            opts.filter_subjects,
            max_ack_pending=opts.concurrency,
            ack_wait_s=opts.ack_wait_s,
        )
        self.ready = True
        slot_freed = asyncio.Event()
        failures = 0
        try:
            while not stop.is_set():
                free = opts.concurrency - len(self._inflight)
                if free <= 0:
                    slot_freed.clear()
                    await _wait_any(stop, slot_freed)
                    continue
                try:
                    msgs = await sub.fetch(free, timeout=FETCH_WAIT_S)
                    failures = 0
                except TimeoutError:
                    continue
                except nats.errors.Error as error:
                    # Connection trouble: nats-py reconnects by itself; wait a bounded, growing delay.
                    failures += 1
                    delay = opts.backoff_s[min(failures - 1, len(opts.backoff_s) - 1)]
                    log.warning("fetch failed; retrying", extra={"error": str(error), "delay_s": delay})
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                    continue
                for msg in msgs:
                    task = asyncio.create_task(self._process(msg), name=f"handle:{msg.subject}")
                    self._inflight.add(task)

                    def _done(t: asyncio.Task[None]) -> None:
                        self._inflight.discard(t)
                        slot_freed.set()

                    task.add_done_callback(_done)
        finally:
            self.ready = False
            await self._finish(grace_s)
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()

    async def _finish(self, grace_s: float) -> None:
        if not self._inflight:
            return
        _, stuck = await asyncio.wait(set(self._inflight), timeout=grace_s)
        for task in stuck:
            log.warning(
                "handler did not finish within the grace period; handing its message back",
                extra={"task": task.get_name()},
            )
            task.cancel()
        if stuck:
            await asyncio.wait(stuck, timeout=5)

    async def _process(self, msg: Msg) -> None:
        meta = msg.metadata
        deliveries, sequence = int(meta.num_delivered), int(meta.sequence.stream)
        try:
            subject = subjects.parse(msg.subject)
            event = envelope.decode(msg.data)
        except (ValueError, msgspec.DecodeError, msgspec.ValidationError) as error:
            await self._dead(msg, None, "undecodable", str(error))
            return
        delivery = Delivery(subject, event, deliveries, sequence)
        if not self.options.accepts(event.type):
            await self._dead(
                msg, delivery, "unknown-type", f"this service does not handle events of type {event.type!r}"
            )
            return
        started = asyncio.get_running_loop().time()
        outcome = "ack"
        try:
            async with self._key_lock(subject.key):
                heartbeat = asyncio.create_task(self._heartbeat(msg), name=f"heartbeat:{msg.subject}")
                try:
                    await self.handler(delivery)
                finally:
                    heartbeat.cancel()
            failpoints.hit("before-ack")
            await self._settle(msg.ack)
        except asyncio.CancelledError:
            outcome = "nak"
            await self._settle(msg.nak)  # shutting down: someone else takes it now
            raise
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            outcome = "dead"
            await self._dead(msg, delivery, "undecodable", f"data does not match {event.type}: {error}")
        except errors.PermanentError as error:
            outcome = "term"
            log.info("permanent failure", extra=_fields(delivery, reason=error.reason, error=error.message))
            await self._give_up(delivery, error.reason, error.message)
            await self._settle(msg.term)
        except Exception as error:
            if deliveries >= self.options.max_deliveries:
                outcome = "dead"
                message = f"gave up after {deliveries} attempts: {error}"
                log.error("giving up on a message", extra=_fields(delivery, error=str(error)))
                await self._dead(msg, delivery, "max-deliveries", message)
                await self._give_up(delivery, "ReconcileFailed", message)
            else:
                outcome = "nak"
                delay = self._delay(error, deliveries)
                expected = isinstance(error, errors.TemporaryError) or errors.is_retryable(error)
                log.log(
                    logging.INFO if expected else logging.WARNING,
                    "will retry",
                    extra=_fields(delivery, error=str(error), delay_s=delay),
                    exc_info=None if expected else error,
                )
                await self._settle(lambda: msg.nak(delay=delay))
        finally:
            if self.metrics is not None:
                self.metrics.handled.labels(outcome).inc()
                self.metrics.handler_seconds.observe(asyncio.get_running_loop().time() - started)

    def _delay(self, error: Exception, deliveries: int) -> float:
        if isinstance(error, errors.TemporaryError) and error.delay_s is not None:
            return error.delay_s
        backoff = self.options.backoff_s
        return backoff[min(max(deliveries - 1, 0), len(backoff) - 1)]

    async def _heartbeat(self, msg: Msg) -> None:
        interval = max(self.options.ack_wait_s / 3, 0.1)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(nats.errors.Error):
                await msg.in_progress()

    @contextlib.asynccontextmanager
    async def _key_lock(self, key: tuple[str, str, str]) -> AsyncIterator[None]:
        entry = self._locks.setdefault(key, _KeyLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                self._locks.pop(key, None)

    async def _give_up(self, delivery: Delivery, reason: str, message: str) -> None:
        if self.on_give_up is None:
            return
        try:
            await self.on_give_up(delivery, reason, message)
        except Exception as error:
            log.warning("could not report the failure on the resource", extra=_fields(delivery, error=str(error)))

    async def _dead(self, msg: Msg, delivery: Delivery | None, reason: str, error: str) -> None:
        """Store the message in SUBSTRATUS_DEAD and terminate it; on bus trouble leave it for redelivery."""
        meta = msg.metadata
        letter = payloads.DeadLetter(
            service=self.service,
            reason=reason,
            error=error,
            stream=meta.stream,
            original_subject=msg.subject,
            stream_sequence=int(meta.sequence.stream),
            deliveries=int(meta.num_delivered),
            original=msg.data.decode("utf-8", errors="replace"),
        )
        plural, namespace, name = delivery.subject.key if delivery else _best_effort_key(msg.subject)
        subject = subjects.dead(self.service, plural, namespace, name)
        event = envelope.make(
            id=f"{meta.stream}/{meta.sequence.stream}/{self.service}",
            source=self.bus.source,
            type=envelope.DEAD_TYPE,
            subject=f"{plural}/{namespace}/{name}",
            data=letter,
        )
        try:
            await self.bus.publish(subject, event)
        except BusError as bus_error:
            log.warning(
                "could not dead-letter; leaving for redelivery", extra={"subject": msg.subject, "error": str(bus_error)}
            )
            await self._settle(lambda: msg.nak(delay=self.options.backoff_s[-1]))
            return
        log.warning("dead-lettered", extra={"subject": msg.subject, "reason": reason, "error": error})
        if self.metrics is not None:
            self.metrics.dead_lettered.labels(reason).inc()
        await self._settle(msg.term)

    async def _settle(self, action: Callable[[], Awaitable[None]]) -> None:
        """Ack/nak/term; if the bus is gone the message simply comes back after ack_wait."""
        try:
            await action()
        except nats.errors.Error as error:
            log.warning("could not settle a message; it will be redelivered", extra={"error": str(error)})


def _best_effort_key(subject: str) -> tuple[str, str, str]:
    """A dead-letter subject for a message whose own subject could not be parsed."""
    parts = subject.split(".")
    safe = [p if p and p not in ("*", ">") else "unknown" for p in parts[2:5]]
    while len(safe) < 3:
        safe.append("unknown")
    return safe[0], safe[1].replace("_", "."), safe[2].replace("_", ".")


def _fields(delivery: Delivery, **extra: object) -> dict[str, object]:
    plural, namespace, name = delivery.subject.key
    return {
        "resource": plural,
        "namespace": namespace,
        "object": name,
        "event_id": delivery.event.id,
        "deliveries": delivery.deliveries,
        **extra,
    }


async def _wait_any(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
