"""The consumer runner: messages mark resources (keys) dirty, a work queue runs one pass per key.

- Fetch only what can run: at most the idle workers, at most ``max_pending`` held per replica;
  the durable consumer's ``max_ack_pending`` is that times the replicas (docs/adr/102).
- Messages about one key while it is queued or reconciled collapse into one more pass; one pass at
  a time per key, many keys in parallel (``runtime.workqueue``).
- A message is acked once a pass over every key it routed to, started after it arrived, has
  succeeded; until then it is held unacked with ``in_progress()`` heartbeats (docs/adr/100). Acks
  go out together, at most :data:`LINGER_S` later, in one write.
- Failures follow the one table in ``runtime.acks`` (docs/adr/101). An undecodable message or an
  unknown event type goes straight to SUBSTRATUS_DEAD.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import msgspec

from substratus_common import config, errors, failpoints
from substratus_common.bus import connection, messages
from substratus_common.bus.errors import BusError
from substratus_common.events import envelope, payloads, subjects
from substratus_common.metrics import RuntimeMetrics
from substratus_common.runtime import acks, workqueue

log = logging.getLogger(__name__)

FETCH_WAIT_S = 2.0
LINGER_S = 0.02
"""How long acks, and the next fetch after one that drained the consumer, wait for company: each
ack and each fetch is one write to NATS, and in a burst a service spends more time on those
writes than on anything else; acks sent together, and fetches that find more, are one write."""


@dataclass(frozen=True)
class Delivery:
    """One message as a handler sees it."""

    subject: subjects.Subject
    event: envelope.CloudEvent
    deliveries: int
    stream_sequence: int


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
    max_pending: int = 256
    """KeyedConsumer: messages one replica holds unacked at most (queued or in a pass); it fetches
    only while it holds fewer."""
    replicas: int = 1
    """Replicas sharing the durable consumer; ``max_ack_pending`` is ``max_pending * replicas``."""
    max_outage_retries: int = 120
    """Retries of one key that an outage (NATS or the API server away) may take without counting
    towards ``max_deliveries``; past them an outage counts too, so every retry stays bounded."""

    @property
    def max_ack_pending(self) -> int:
        """The durable consumer's limit: room for every replica's ``max_pending`` (docs/adr/102)."""
        return self.max_pending * max(self.replicas, 1)


def options(
    settings: config.Settings,
    *,
    stream: str,
    durable: str,
    filter_subjects: Sequence[str],
    accepts: Callable[[str], bool] = lambda event_type: True,
) -> ConsumerOptions:
    """The one place consumer options come from settings."""
    return ConsumerOptions(
        stream=stream,
        durable=durable,
        filter_subjects=list(filter_subjects),
        concurrency=settings.consumer_concurrency,
        ack_wait_s=settings.ack_wait_s,
        max_deliveries=settings.max_deliveries,
        backoff_s=tuple(settings.retry_backoff_s),
        accepts=accepts,
        max_pending=settings.consumer_max_pending,
        replicas=settings.replicas,
        max_outage_retries=settings.max_outage_retries,
    )


async def dead_letter(
    bus: connection.Bus,
    service: str,
    msg: messages.Message,
    delivery: Delivery | None,
    *,
    reason: str,
    error: str,
    metrics: RuntimeMetrics | None,
    deliveries: int | None = None,
) -> bool:
    """Store a copy of the message in SUBSTRATUS_DEAD; False when the bus did not take it."""
    meta = msg.metadata
    letter = payloads.DeadLetter(
        service=service,
        reason=reason,
        error=error,
        stream=meta.stream,
        original_subject=msg.subject,
        stream_sequence=meta.stream_sequence,
        deliveries=meta.num_delivered if deliveries is None else deliveries,
        original=msg.data.decode("utf-8", errors="replace"),
    )
    plural, namespace, name = delivery.subject.key if delivery else _best_effort_key(msg.subject)
    subject = subjects.dead(service, plural, namespace, name)
    event = envelope.make(
        id=f"{meta.stream}/{meta.stream_sequence}/{service}",
        source=bus.source,
        type=envelope.DEAD_TYPE,
        subject=f"{plural}/{namespace}/{name}",
        data=letter,
    )
    try:
        await bus.publish(subject, event)
    except BusError as bus_error:
        log.warning(
            "could not dead-letter; leaving for redelivery", extra={"subject": msg.subject, "error": str(bus_error)}
        )
        return False
    log.warning("dead-lettered", extra={"subject": msg.subject, "reason": reason, "error": error})
    if metrics is not None:
        metrics.dead_lettered.labels(reason).inc()
    return True


async def _settle(action: Callable[[], Awaitable[None]]) -> None:
    """Ack/nak/term; if the bus is gone the message simply comes back after ack_wait."""
    try:
        await action()
    except BusError as error:
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


Route = Callable[[Delivery], Iterable[subjects.ResourceKey]]
"""The keys one message makes dirty (default: its subject's key); none → acked at once. May raise
:class:`errors.PermanentError` to refuse the message (logged, terminated, no key is touched)."""
KeyHandler = Callable[[subjects.ResourceKey, Sequence[Delivery]], Awaitable[None]]
"""One pass over one key, given the deliveries routed to it since its last pass (oldest first; may
be empty when the key was enqueued from outside); raises to fail (see :mod:`runtime.acks`)."""
KeyGiveUp = Callable[[subjects.ResourceKey, str, str], Awaitable[None]]
"""(key, reason, message): report the failure on that resource."""


def subject_key(delivery: Delivery) -> Iterable[subjects.ResourceKey]:
    return (delivery.subject.key,)


@dataclass(eq=False)
class _Held:
    """A message this replica holds unacked until every key it routed to has passed after it."""

    msg: messages.Message
    delivery: Delivery
    keys: set[subjects.ResourceKey]
    beat_at: float
    gave_up: bool = False


class KeyedConsumer:
    """Fetch what it can hold, route each message to keys, one pass per dirty key (docs/adr/100).

    - A message is acked only once a pass over every key it routed to, started after it arrived,
      has succeeded; until then it is held unacked, with ``in_progress()`` heartbeats, so a crash
      (``kill -9``) redelivers it and a held message is not redelivered meanwhile.
    - Many messages for one key while it is queued or running make one more pass, not many.
    - Failures follow :mod:`runtime.acks` (docs/adr/101), with per-key backoff in the work queue.
    - It fetches only as many messages as it has idle workers, and holds at most
      ``options.max_pending``; the durable consumer's max_ack_pending is that times
      ``options.replicas``, so replicas add capacity (docs/adr/102).
    """

    def __init__(
        self,
        bus: connection.Bus,
        service: str,
        options: ConsumerOptions,
        handler: KeyHandler,
        *,
        route: Route | None = None,
        on_give_up: KeyGiveUp | None = None,
        metrics: RuntimeMetrics | None = None,
    ) -> None:
        self.bus, self.service, self.options, self.handler = bus, service, options, handler
        self.route: Route = route or subject_key
        self.on_give_up = on_give_up
        self.metrics = metrics
        self.queue: workqueue.WorkQueue[subjects.ResourceKey] = workqueue.WorkQueue(
            workqueue.schedule(options.backoff_s)
        )
        self.ready = False
        self._held: dict[int, _Held] = {}
        self._waiting: dict[subjects.ResourceKey, list[_Held]] = {}
        self._outage_retries: dict[subjects.ResourceKey, int] = {}
        """Retries per key caused by an outage: they do not count as attempts (ADR 101)."""
        self._room = asyncio.Event()
        self._acks: list[messages.Message] = []
        """Messages done with, acked together by the ``acks`` task (:data:`LINGER_S`)."""
        self._acks_due = asyncio.Event()

    @property
    def held(self) -> int:
        """Messages held unacked now."""
        return len(self._held)

    def enqueue(self, key: subjects.ResourceKey) -> None:
        """Mark a key dirty from outside a message (a poller, a timer): nothing to ack. Unlike a
        message, this runs a pass now even while the key backs off."""
        self.queue.add(subjects.ResourceKey(*key))
        self._gauges()

    async def run(self, stop: asyncio.Event, grace_s: float) -> None:
        """Fetch and reconcile until ``stop``; then finish passes for at most ``grace_s`` and hand
        every message still held back to the stream (nak) for another replica."""
        opts = self.options
        sub = await self._bind()
        workers = [asyncio.create_task(self._work(), name=f"worker-{i}") for i in range(opts.concurrency)]
        heartbeat = asyncio.create_task(self._heartbeats(), name="heartbeats")
        acker = asyncio.create_task(self._acker(), name="acks")
        self.ready = True
        try:
            sub = await self._fetch(sub, stop)
        finally:
            self.ready = False
            stuck = await self.queue.shut_down(grace_s)
            if stuck:
                log.warning(
                    "passes did not finish within the grace period; handing their messages back",
                    extra={"keys": sorted(str(k) for k in stuck)[:20]},
                )
            for worker in workers:
                worker.cancel()
            await asyncio.wait(workers, timeout=5)
            heartbeat.cancel()
            acker.cancel()
            await asyncio.wait([heartbeat, acker], timeout=5)
            await self._flush_acks()  # what passed is acked before the rest is handed back
            held = list(self._held.values())
            self._held.clear()
            self._waiting.clear()
            await asyncio.gather(*(_settle(h.msg.nak) for h in held))
            await sub.unsubscribe()
            self._gauges()

    # ---- fetching and routing -----------------------------------------------------------------

    async def _bind(self) -> messages.PullSubscription:
        """Create the durable consumer (or update it to these options) and bind to it: at start, and
        again after fetching failed, since NATS may have lost it with its state."""
        opts = self.options
        return await self.bus.pull(
            opts.stream,
            opts.durable,
            opts.filter_subjects,
            max_ack_pending=opts.max_ack_pending,
            ack_wait_s=opts.ack_wait_s,
        )

    async def _fetch(self, sub: messages.PullSubscription, stop: asyncio.Event) -> messages.PullSubscription:
        """Fetch until ``stop``; the subscription in use at the end (it is re-bound after failures)."""
        opts = self.options
        failures = 0
        while not stop.is_set():
            # Fetch only what we can run: no more than idle workers (keys already queued count as
            # taken), so replicas share a burst instead of one replica taking it all, and never
            # more than we can hold (messages waiting on a busy or backing-off key count too).
            idle = opts.concurrency - self.queue.busy - len(self.queue)
            room = min(opts.max_pending - len(self._held), idle)
            if room <= 0:
                self._room.clear()
                await _wait_any(stop, self._room)
                continue
            try:
                msgs = await sub.fetch(room, FETCH_WAIT_S)
                failures = 0
                self.ready = True
            except TimeoutError:
                self.ready = True
                continue
            except BusError as error:
                # Connection trouble (nats-py reconnects by itself) or a consumer NATS no longer
                # has (lost with its state, or deleted): wait a bounded, growing delay, then create
                # it again and bind to it, so a service never idles on a consumer that is gone.
                self.ready = False
                failures += 1
                delay = opts.backoff_s[min(failures - 1, len(opts.backoff_s) - 1)]
                log.warning("fetch failed; binding the consumer again", extra={"error": str(error), "delay_s": delay})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    break
                try:
                    fresh = await self._bind()
                except BusError as bind_error:
                    log.warning("could not bind the consumer yet", extra={"error": str(bind_error)})
                    continue
                await sub.unsubscribe()
                sub = fresh
                continue
            for msg in msgs:
                await self._receive(msg)
            self._gauges()
            if len(msgs) < room:
                # It handed over all it had: let a few more arrive before asking again (a linger,
                # not a wait for a condition: see LINGER_S).
                await asyncio.sleep(LINGER_S)
        return sub

    async def _receive(self, msg: messages.Message) -> None:
        meta = msg.metadata
        again = self._held.get(meta.stream_sequence)
        if again is not None:
            again.msg = msg  # redelivered while held (a heartbeat was lost): settle the newest copy
            return
        try:
            subject = subjects.parse(msg.subject)
            event = envelope.decode(msg.data)
        except (ValueError, msgspec.DecodeError, msgspec.ValidationError) as error:
            await self._dead_now(msg, None, "undecodable", str(error))
            return
        delivery = Delivery(subject, event, meta.num_delivered, meta.stream_sequence)
        if not self.options.accepts(event.type):
            await self._dead_now(
                msg, delivery, "unknown-type", f"this service does not handle events of type {event.type!r}"
            )
            return
        try:
            keys = list(dict.fromkeys(subjects.ResourceKey(*k) for k in self.route(delivery)))
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            await self._dead_now(msg, delivery, "undecodable", f"data does not match {event.type}: {error}")
            return
        except errors.PermanentError as error:
            log.info("permanent failure", extra=_fields(delivery, reason=error.reason, error=error.message))
            self._count("term")
            await _settle(msg.term)
            return
        if not keys:
            self._count("ack")
            self._ack(msg)
            return
        held = _Held(msg, delivery, set(keys), asyncio.get_running_loop().time())
        self._held[meta.stream_sequence] = held
        for key in keys:
            self._waiting.setdefault(key, []).append(held)
            # A key backing off after a failure keeps its delay: a burst of events about it must not
            # turn into a burst of failing passes (and a quick ReconcileFailed). The timer's pass
            # takes these messages too.
            if not self.queue.is_delayed(key):
                self.queue.add(key)

    async def _dead_now(self, msg: messages.Message, delivery: Delivery | None, reason: str, error: str) -> None:
        self._count("dead")
        if await dead_letter(self.bus, self.service, msg, delivery, reason=reason, error=error, metrics=self.metrics):
            await _settle(msg.term)
        else:
            await _settle(lambda: msg.nak(self.options.backoff_s[-1]))

    # ---- passes -------------------------------------------------------------------------------

    async def _work(self) -> None:
        while (key := await self.queue.get()) is not None:
            try:
                await self._pass(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug in the bookkeeping below must not end the worker (the handler's own errors
                # are handled in _pass); the key's messages stay held and come back on restart.
                log.exception("a pass failed outside its handler", extra={"key": str(key)})
            finally:
                self.queue.done(key)
                self._room.set()  # a worker is free: the fetcher may take more
                self._gauges()

    async def _pass(self, key: subjects.ResourceKey) -> None:
        batch = self._waiting.pop(key, [])
        deliveries = [h.delivery for h in batch]
        # Deliveries before this one (a crash or a stop mid-pass) count as attempts too.
        earlier = max((d.deliveries for d in deliveries), default=1) - 1
        free = self._outage_retries.get(key, 0)
        attempt = self.queue.num_requeues(key) - free + earlier + 1
        loop = asyncio.get_running_loop()
        started = loop.time()
        if self.metrics is not None:
            self.metrics.in_flight.inc()
        error: Exception | None = None
        try:
            await self.handler(key, deliveries)
        except asyncio.CancelledError:
            self._waiting[key] = batch + self._waiting.get(key, [])
            raise
        except Exception as raised:
            error = raised
        finally:
            if self.metrics is not None:
                self.metrics.in_flight.dec()
                self.metrics.handler_seconds.observe(loop.time() - started)
        if error is None:
            failpoints.hit("before-ack", key.namespace)
        outage_free = free < self.options.max_outage_retries
        verdict = acks.verdict(error, attempt, self.options.max_deliveries, outage_free=outage_free)
        if verdict.action is acks.Action.RETRY and not verdict.counted:
            self._outage_retries[key] = free + 1
        await self._settle_pass(key, batch, verdict, error, attempt)

    async def _settle_pass(
        self,
        key: subjects.ResourceKey,
        batch: list[_Held],
        verdict: acks.Verdict,
        error: Exception | None,
        attempt: int,
    ) -> None:
        fields = {"resource": key.plural, "namespace": key.namespace, "object": key.name, "attempt": attempt}
        if verdict.action is acks.Action.ACK:
            self._forget(key)
            await self._resolve(key, batch, gave_up=False)
            return
        if verdict.action is acks.Action.RETRY:
            assert error is not None
            self._retry(key, batch, error, verdict.delay_s, fields, at_least_s=verdict.at_least_s)
            return
        if verdict.action is acks.Action.GIVE_UP:
            log.info("permanent failure", extra={**fields, "reason": verdict.reason, "error": verdict.message})
        else:
            log.error("giving up on a resource", extra={**fields, "reason": verdict.reason, "error": verdict.message})
            stored = [
                await dead_letter(
                    self.bus,
                    self.service,
                    held.msg,
                    held.delivery,
                    reason=verdict.dead_reason,
                    error=verdict.message,
                    metrics=self.metrics,
                    deliveries=attempt,
                )
                for held in batch
            ]
            if not all(stored):
                assert error is not None
                self._retry(key, batch, error, None, fields)  # keep them until SUBSTRATUS_DEAD has a copy
                return
        if not await self._give_up(key, verdict.reason, verdict.message):
            # The failure could not be reported (the bus is away?): keep the messages and try the
            # key again later, with the key's growing backoff.
            assert error is not None
            self._retry(key, batch, error, None, fields)
            return
        self._forget(key)
        await self._resolve(key, batch, gave_up=True)

    def _forget(self, key: subjects.ResourceKey) -> None:
        self.queue.forget(key)
        self._outage_retries.pop(key, None)

    def _retry(
        self,
        key: subjects.ResourceKey,
        batch: list[_Held],
        error: Exception,
        delay_s: float | None,
        fields: dict[str, object],
        *,
        at_least_s: float = 0.0,
    ) -> None:
        self._waiting[key] = batch + self._waiting.get(key, [])
        delay = self.queue.add_rate_limited(key, delay_s, at_least_s=at_least_s)
        expected = isinstance(error, errors.TemporaryError) or errors.is_retryable(error)
        log.log(
            logging.INFO if expected else logging.WARNING,
            "will retry",
            extra={**fields, "error": str(error), "delay_s": delay},
            exc_info=None if expected else error,
        )
        if self.metrics is not None:
            if errors.is_outage(error):
                kind = "outage"
            elif isinstance(error, errors.TemporaryError):
                kind = "temporary"
            else:
                kind = "backoff"
            self.metrics.retries.labels(kind).inc()

    async def _resolve(self, key: subjects.ResourceKey, batch: list[_Held], *, gave_up: bool) -> None:
        """The key is done with these messages; settle each one no other key still waits on."""
        for held in batch:
            held.keys.discard(key)
            held.gave_up = held.gave_up or gave_up
            if held.keys or self._held.get(held.delivery.stream_sequence) is not held:
                continue
            del self._held[held.delivery.stream_sequence]
            self._count("term" if held.gave_up else "ack")
            if held.gave_up:
                await _settle(held.msg.term)
            else:
                self._ack(held.msg)
        self._room.set()

    # ---- acks ---------------------------------------------------------------------------------

    def _ack(self, msg: messages.Message) -> None:
        """Ack soon, with the others done meanwhile (a crash before it redelivers: passes are
        idempotent, and a redelivered message makes one more pass, never a lost one)."""
        self._acks.append(msg)
        self._acks_due.set()

    async def _acker(self) -> None:
        while True:
            await self._acks_due.wait()
            await asyncio.sleep(LINGER_S)  # a linger, not a wait for a condition: see LINGER_S
            await self._flush_acks()

    async def _flush_acks(self) -> None:
        self._acks_due.clear()
        batch, self._acks = self._acks, []
        for msg in batch:
            # nats-py queues each ack without yielding, so the whole batch goes out in one write.
            await _settle(msg.ack)

    async def _give_up(self, key: subjects.ResourceKey, reason: str, message: str) -> bool:
        if self.metrics is not None:
            self.metrics.give_ups.labels(reason).inc()
        if self.on_give_up is None:
            return True
        try:
            await self.on_give_up(key, reason, message)
        except Exception as error:
            log.warning(
                "could not report the failure on the resource",
                extra={"resource": key.plural, "namespace": key.namespace, "object": key.name, "error": str(error)},
            )
            return False
        return True

    # ---- heartbeats and metrics ---------------------------------------------------------------

    async def _heartbeats(self) -> None:
        """Every held message says ``in_progress`` well within ``ack_wait``, queued or running."""
        interval = max(self.options.ack_wait_s / 3, 0.1)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval / 2)
            now = loop.time()
            due = [h for h in self._held.values() if now - h.beat_at >= interval]
            for held in due:
                held.beat_at = now
            results = await asyncio.gather(*(h.msg.in_progress() for h in due), return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                log.warning("heartbeats failed", extra={"failed": len(failed), "error": str(failed[0])})

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.handled.labels(outcome).inc()
        self._room.set()

    def _gauges(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.set(len(self.queue))
            self.metrics.held.set(len(self._held))
