"""Kubernetes Events (``events.k8s.io/v1``) for every condition transition the status writer applies.

The status writer sees every transition: it compares the conditions before and after its apply
(:func:`transitions`, pure). :class:`Recorder` writes them the way client-go's recorder does:

- an Event names the resource (``regarding``), the condition type (``action``), the condition's
  reason and message (``reason``, ``note``), and is a ``Warning`` for a failure;
- a repeat of the same (resource, action, reason, type) increments the first Event's
  ``series.count`` and ``lastObservedTime`` instead of making a new object; the first note stays
  (the API keeps it immutable). Series live in memory, as client-go's do: after a restart a
  repeat starts a new Event. Names are ``<name>.<first time, hex nanoseconds>`` (client-go's):
  ``kubectl describe`` lists new-style Events in name order, which is then the order they began;
- Events are rate-limited per resource (a token bucket, like client-go's spam filter) and queued
  per namespace, each queue bounded and the whole bounded too; past any bound an Event is
  dropped. The worker takes the namespaces in turn, so a burst in one (a thousand Models at
  once, or a namespace being deleted, whose Events the API refuses) never delays another's by
  more than one write, nor fills the queue another's Events need. ``Normal`` Events also share a
  budget per namespace (the API server's EventRateLimit admission has the same kind of limit): a
  burst of a thousand resources in one namespace does not write three thousand Events that only
  repeat what their conditions say, while a failure (``Warning``) is never held back by other
  resources. There is no budget for the recorder as a whole (a kubelet's ``--event-qps``): one
  component records the Events of every resource, and a burst of other resources, or a backlog
  of their reports, would then silence the failure of the one a user is looking at.

Recording never fails or blocks a status write: :meth:`Recorder.observe` only queues, a worker
task writes, and every error is logged and counted (``substratus_kube_events{outcome}``).
docs/adr/121 has the why.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter

from substratus_common.kube import client, errors
from substratus_common.kube.resources import EVENT
from substratus_common.metrics import RuntimeMetrics
from substratus_status_writer import patches

log = logging.getLogger(__name__)

Object = dict[str, Any]
EventType = Literal["Normal", "Warning"]

CONTROLLER = "substratus-status-writer"
"""``reportingController``: what ``kubectl describe`` shows under From."""

NOTE_MAX_BYTES = 1024  # the API server refuses a longer note
DROPS_TOLD_EVERY_S = 10.0
READY_REASON = "Ready"
NOT_READY_REASON = "NotReady"


@dataclass(frozen=True)
class Transition:
    """One condition that moved in an apply (:func:`_changed`): one Event."""

    regarding: Object
    action: str
    reason: str
    note: str
    type: EventType
    at: dt.datetime

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What makes two Events the same series (client-go's key: the note is not part of it)."""
        return (str(self.regarding.get("uid")), self.action, self.reason, self.type)

    @property
    def name(self) -> str:
        """The Event's name when it begins a series: names sort in the order Events began."""
        nanos = int(self.at.timestamp()) * 1_000_000_000 + self.at.microsecond * 1000
        return f"{self.regarding['name']}.{nanos:x}"


def _conditions(obj: Object | None) -> dict[str, Object]:
    return {str(c.get("type")): c for c in ((obj or {}).get("status") or {}).get("conditions") or []}


def _note(text: str) -> str:
    raw = " ".join(text.split()).encode()
    if len(raw) <= NOTE_MAX_BYTES:
        return raw.decode()
    return raw[: NOTE_MAX_BYTES - 3].decode(errors="ignore") + "…"


def _generation(condition: Object) -> int:
    try:
        return int(condition.get("observedGeneration") or 0)
    except (TypeError, ValueError):
        return 0


def _changed(prev: Object, now: Object, failing: bool) -> bool:
    """Whether a condition moved: its status or reason did, or a failure is one of a newer generation.

    The writer applies only the newest report per service (docs/adr/103): a new spec that fails
    again can go from the old failure to the new one without the "building" in between, and that
    repeat must still be told (it counts in the failure's series).
    """
    if (prev.get("status"), prev.get("reason")) != (now.get("status"), now.get("reason")):
        return True
    return failing and _generation(now) > _generation(prev)


def transitions(before: Object | None, after: Object, now: dt.datetime) -> list[Transition]:
    """The Events of an apply: each condition that moved (:func:`_changed`), in work order, and
    Ready last (only when ready flips, so a failure is not told twice)."""
    meta = after.get("metadata", {})
    regarding = {
        "apiVersion": after.get("apiVersion"),
        "kind": after.get("kind"),
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
    }
    old, new = _conditions(before), _conditions(after)
    found: list[Transition] = []
    order = {t: i for i, t in enumerate(("Uploaded", "Built", "Complete", "Serving"))}
    for type_ in sorted((t for t in new if t != patches.READY), key=lambda t: (order.get(t, len(order)), t)):
        c, prev = new[type_], old.get(type_)
        reason = str(c.get("reason"))
        failing = c.get("status") == "False" and reason in patches.FAILURE_REASONS
        if prev is not None and not _changed(prev, c, failing):
            continue
        message = str(c.get("message") or "")
        note = f"{type_}: {message}" if message else f"{type_} is {c.get('status')}"
        found.append(Transition(regarding, type_, reason, _note(note), "Warning" if failing else "Normal", now))
    ready, was = new.get(patches.READY), old.get(patches.READY)
    if ready is not None and (was or {}).get("status", "False") != ready.get("status"):
        if ready.get("status") == "True":
            note = f"{after.get('kind')} is ready"
            found.append(Transition(regarding, patches.READY, READY_REASON, note, "Normal", now))
        elif was is not None:
            reason = str(ready.get("reason"))
            note = _note(f"no longer ready: {reason}: {ready.get('message') or ''}".rstrip(": "))
            kind: EventType = "Warning" if reason in patches.FAILURE_REASONS else "Normal"
            found.append(Transition(regarding, patches.READY, NOT_READY_REASON, note, kind, now))
    # Distinct times keep `kubectl describe` (sorted by time) in the order they happened.
    return [
        Transition(t.regarding, t.action, t.reason, t.note, t.type, now + dt.timedelta(microseconds=i))
        for i, t in enumerate(found)
    ]


def micro_time(value: dt.datetime) -> str:
    """A ``metav1.MicroTime``: RFC 3339 in UTC with microseconds."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Bucket:
    """A token bucket: ``burst`` writes at once, then one per ``refill_s``."""

    def __init__(self, burst: int, refill_s: float, now: float) -> None:
        self.tokens, self.burst, self.refill_s, self.stamp = float(burst), burst, refill_s, now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) / self.refill_s)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _bucket(buckets: OrderedDict[str, _Bucket], key: str, limits: tuple[int, float], now: float, kept: int) -> _Bucket:
    """``key``'s bucket (made with ``limits`` when new); only the ``kept`` last used are kept."""
    bucket = buckets.get(key)
    if bucket is None:
        bucket = buckets[key] = _Bucket(limits[0], limits[1], now)
    buckets.move_to_end(key)
    while len(buckets) > kept:
        buckets.popitem(last=False)
    return bucket


@dataclass(frozen=True)
class Limits:
    """The bounds of the recorder (client-go's spam filter allows a burst of 25 per object)."""

    queue: int = 1000
    """Events waiting to be written, all namespaces together; past it new ones are dropped."""
    namespace_queue: int = 200
    """Events of one namespace waiting to be written; past it that namespace's new ones are dropped."""
    burst: int = 25
    """Writes per resource at once."""
    refill_s: float = 10.0
    """Then one more write per resource every this many seconds."""
    namespace_burst: int = 100
    """``Normal`` Events per namespace at once (Warnings are not counted against it)."""
    namespace_refill_s: float = 0.2
    """Then one more ``Normal`` Event per namespace every this many seconds (5 per second)."""
    remembered: int = 4096
    """Series and buckets kept in memory (least recently used go first)."""
    write_timeout_s: float = 10.0
    """One Event's writes (create, or read and patch) give up after this."""


class Recorder:
    """Writes the Events of :func:`transitions` in a worker task; ``observe`` never blocks or raises."""

    def __init__(
        self,
        kube: client.Kube,
        metrics: RuntimeMetrics | None = None,
        limits: Limits | None = None,
        instance: str | None = None,
    ) -> None:
        self.kube = kube
        self.limits = limits or Limits()
        self.instance = (instance or f"{CONTROLLER}-{socket.gethostname()}-{os.getpid()}")[:128]
        registry = metrics.registry if metrics is not None else CollectorRegistry()
        self.outcomes = Counter(
            "substratus_kube_events",
            "Kubernetes Events of condition transitions, by outcome (created, counted, dropped, failed).",
            ["outcome"],
            registry=registry,
        )
        self._queues: OrderedDict[str, deque[Transition]] = OrderedDict()
        """Per namespace, its Events waiting, oldest first; the worker takes the first namespace's
        oldest, then moves that namespace last (round robin)."""
        self._waiting = 0
        self._work = asyncio.Event()  # something is queued
        self._idle = asyncio.Event()  # nothing is queued or being written
        self._idle.set()
        self._series: OrderedDict[tuple[str, str, str, str], tuple[str, int]] = OrderedDict()
        """Series key → (Event name, count so far)."""
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._budgets: OrderedDict[str, _Bucket] = OrderedDict()
        """Per namespace, the budget of its Normal Events."""
        self._worker: asyncio.Task[None] | None = None
        self._dropped_since_told = 0
        self._told_at = -DROPS_TOLD_EVERY_S

    def observe(self, before: Object | None, after: Object) -> None:
        """Queue the Events of one apply (``before`` as read, ``after`` as the API answered)."""
        try:
            found = transitions(before, after, dt.datetime.now(dt.UTC))
            for transition in found:
                self._enqueue(transition)
            if found and self._worker is None:
                self._worker = asyncio.get_running_loop().create_task(self._run(), name="record-events")
        except Exception:  # recording must never fail a status write
            log.exception("could not record events")
            self.outcomes.labels("failed").inc()

    def _enqueue(self, transition: Transition) -> None:
        over = self._allowed(transition)
        if over is not None:
            self._count("dropped", transition, over)
            return
        namespace = str(transition.regarding.get("namespace"))
        queue = self._queues.get(namespace)
        if queue is not None and len(queue) >= self.limits.namespace_queue:
            self._count("dropped", transition, "the namespace's event queue is full")
            return
        if self._waiting >= self.limits.queue:
            self._count("dropped", transition, "the event queue is full")
            return
        if queue is None:
            queue = self._queues[namespace] = deque()
        queue.append(transition)
        self._waiting += 1
        self._idle.clear()
        self._work.set()

    def _next(self) -> Transition:
        """The oldest Event of the namespace whose turn it is (there is one: ``_waiting`` > 0)."""
        namespace, queue = next(iter(self._queues.items()))
        transition = queue.popleft()
        if queue:
            self._queues.move_to_end(namespace)
        else:
            del self._queues[namespace]
        self._waiting -= 1
        return transition

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Wait (bounded) until every queued Event is written or given up on."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """Write what is queued (bounded), then stop the worker."""
        await self.flush(timeout_s)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def _run(self) -> None:
        while True:
            if not self._waiting:
                self._work.clear()
                self._idle.set()
                await self._work.wait()
                continue
            transition = self._next()
            try:
                async with asyncio.timeout(self.limits.write_timeout_s):
                    await self._write(transition)
            except (errors.APIError, TimeoutError) as error:
                self._count("failed", transition, repr(error))
            except Exception as error:  # a bug here must not stop recording the next ones
                log.exception("recording an event failed")
                self._count("failed", transition, repr(error))

    def _allowed(self, transition: Transition) -> str | None:
        """None when the Event may be queued; else which rate limit it is over (checked before it
        takes a place in a queue)."""
        uid, now, kept = str(transition.regarding.get("uid")), time.monotonic(), self.limits.remembered
        if not _bucket(self._buckets, uid, (self.limits.burst, self.limits.refill_s), now, kept).take(now):
            return "over the per-resource rate limit"
        if transition.type == "Normal":
            budget = (self.limits.namespace_burst, self.limits.namespace_refill_s)
            namespace = str(transition.regarding.get("namespace"))
            if not _bucket(self._budgets, namespace, budget, now, kept).take(now):
                return "over the namespace's budget for Normal events"
        return None

    async def _write(self, transition: Transition) -> None:
        known = self._series.get(transition.key)
        if known is None:
            await self._create(transition)
            return
        name, count = known
        series = {"count": count + 1, "lastObservedTime": micro_time(transition.at)}
        try:
            await self.kube.patch(EVENT, str(transition.regarding.get("namespace")), name, {"series": series})
        except errors.NotFound:  # expired (the API server's event TTL): a new series
            await self._create(transition)
            return
        self._remember(transition.key, name, count + 1)
        self.outcomes.labels("counted").inc()

    async def _create(self, transition: Transition) -> None:
        await self.kube.create(self._body(transition))
        self._remember(transition.key, transition.name, 1)
        self.outcomes.labels("created").inc()

    def _remember(self, key: tuple[str, str, str, str], name: str, count: int) -> None:
        self._series[key] = (name, count)
        self._series.move_to_end(key)
        while len(self._series) > self.limits.remembered:
            self._series.popitem(last=False)

    def _body(self, transition: Transition) -> Object:
        return {
            "apiVersion": EVENT.api_version,
            "kind": EVENT.kind,
            "metadata": {"name": transition.name, "namespace": transition.regarding.get("namespace")},
            "eventTime": micro_time(transition.at),
            "reportingController": CONTROLLER,
            "reportingInstance": self.instance,
            "action": transition.action,
            "reason": transition.reason,
            "note": transition.note,
            "type": transition.type,
            "regarding": transition.regarding,
        }

    def _count(self, outcome: str, transition: Transition, why: str) -> None:
        self.outcomes.labels(outcome).inc()
        if outcome == "dropped":
            # In a burst thousands are dropped: one line every DROPS_TOLD_EVERY_S says how many.
            self._dropped_since_told += 1
            now = time.monotonic()
            if now - self._told_at < DROPS_TOLD_EVERY_S:
                return
            self._told_at, dropped, self._dropped_since_told = now, self._dropped_since_told, 0
            why = f"{why} ({dropped} dropped since the last such line; substratus_kube_events counts them)"
        log.warning(
            "event %s: %s",
            outcome,
            why,
            extra={
                "kind": transition.regarding.get("kind"),
                "namespace": transition.regarding.get("namespace"),
                "object": transition.regarding.get("name"),
                "reason": transition.reason,
            },
        )
