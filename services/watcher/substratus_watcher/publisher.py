"""The watcher's sink: every change of a resource or of a labelled child becomes a CloudEvent.

Event id and ``Nats-Msg-Id`` are ``<uid>/<resourceVersion>``, so two watchers, a resync or a
restart republishing the same version store it once.

Publishes are pipelined: up to :data:`WINDOW` are in flight at once, waiting for their acks
together (nats-py sends the ones handed over meanwhile in one write), but never two of one
subject, so each subject's versions are stored in the order they were watched (the stream's last
message per subject is what a view loads and what a resync compares with). A publish that fails
past its retries fails the next hand-over or :meth:`Publisher.flush`, which the sync calls at the
end of each list and each watch.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

from substratus_common.api import labels
from substratus_common.bus import connection
from substratus_common.bus.errors import BusError
from substratus_common.events import envelope, payloads, subjects
from substratus_common.kube import client
from substratus_common.kube.resources import SUBSTRATUS_KINDS, ResourceType
from substratus_common.metrics import RuntimeMetrics

log = logging.getLogger(__name__)

PUBLISH_ATTEMPTS = 6
PUBLISH_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
WINDOW = 128
"""Publishes in flight at once (each of another subject)."""
CLOSE_GRACE_S = 5.0


def subject_for(rt: ResourceType, obj: client.Object) -> tuple[str, str] | None:
    """(NATS subject, CloudEvents subject) of an object, or None for a child that is not ours."""
    meta = obj.get("metadata", {})
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    if rt in SUBSTRATUS_KINDS:
        return subjects.change(rt.plural, namespace, name), f"{rt.plural}/{namespace}/{name}"
    owner = labels.owner_of(meta.get("labels"))
    if owner is None:
        return None
    plural, owner_name = owner
    nats_subject = subjects.child_change(plural, namespace, owner_name, rt.kind, name)
    return nats_subject, f"{plural}/{namespace}/{owner_name}/{rt.plural}/{name}"


class Publisher:
    def __init__(
        self,
        bus: connection.Bus,
        metrics: RuntimeMetrics | None = None,
        *,
        outage_wait_s: float = 900.0,
        window: int = WINDOW,
    ) -> None:
        self.bus = bus
        self.metrics = metrics
        self.outage_wait_s = outage_wait_s
        self.published = 0
        self.duplicates = 0
        self.last_publish_latency_s = 0.0
        self._window = asyncio.Semaphore(window)
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        """The publish in flight per NATS subject (at most one each)."""
        self._failed: BaseException | None = None

    async def flush(self) -> None:
        """Wait until everything handed over is stored; raise what failed meanwhile."""
        while self._in_flight:
            await asyncio.wait(list(self._in_flight.values()))
        self._raise_failure()

    async def close(self) -> None:
        """Let the publishes in flight finish (bounded), then cancel what is left: the stream is
        the watcher's state, and what was not stored is published again at the next start."""
        pending = list(self._in_flight.values())
        if pending:
            _, late = await asyncio.wait(pending, timeout=CLOSE_GRACE_S)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=CLOSE_GRACE_S)

    def _raise_failure(self) -> None:
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed

    async def changed(self, rt: ResourceType, obj: client.Object) -> None:
        await self._publish(rt, obj, deleted=False)

    async def deleted(self, rt: ResourceType, obj: client.Object) -> None:
        await self._publish(rt, obj, deleted=True)

    async def _publish(self, rt: ResourceType, obj: client.Object, *, deleted: bool) -> None:
        try:
            where = subject_for(rt, obj)
        except ValueError as error:
            # Kubernetes never names an object like this; whatever it is, it is not worth a crash.
            log.warning("not publishing an object without a valid name", extra={"error": str(error)})
            return
        if where is None:
            return
        nats_subject, ce_subject = where
        meta = obj.get("metadata", {})
        data, truncated = payloads.change_data(payloads.without_managed_fields(obj))
        event = envelope.make(
            id=f"{meta.get('uid')}/{meta.get('resourceVersion')}",
            source=self.bus.source,
            type=envelope.change_type(rt.kind, deleted),
            subject=ce_subject,
            data=data,
            truncated=truncated,
        )
        self._raise_failure()
        before = self._in_flight.get(nats_subject)
        if before is not None:
            await asyncio.wait([before])  # one version of a subject in flight: stored in order
            self._raise_failure()
        await self._window.acquire()
        task = asyncio.create_task(self._store(nats_subject, event, meta), name=f"publish:{nats_subject}")
        self._in_flight[nats_subject] = task
        task.add_done_callback(functools.partial(self._done, nats_subject))

    async def _store(self, subject: str, event: envelope.CloudEvent, meta: dict[str, Any]) -> None:
        stored = await self._with_retries(subject, event, meta)
        if stored:
            self.published += 1
            if self.metrics is not None:
                self.metrics.published.labels("SUBSTRATUS_CHANGES").inc()
        else:
            self.duplicates += 1

    def _done(self, subject: str, task: asyncio.Task[None]) -> None:
        self._window.release()
        if self._in_flight.get(subject) is task:
            del self._in_flight[subject]
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("could not store a change", extra={"subject": subject, "error": str(error)})
            if self._failed is None:
                self._failed = error

    async def _with_retries(self, subject: str, event: envelope.CloudEvent, meta: dict[str, Any]) -> bool:
        """Bounded retries; if the bus stays away the watcher stops and restarts from the stream.

        While the connection is down (nats-py reconnecting) the watcher waits for it, at most
        ``outage_wait_s``, without using up an attempt: a NATS restart or a minutes-long outage
        ends with the change stored, not with the watcher exiting (``/readyz`` says why meanwhile)."""
        attempt = 0
        while True:
            try:
                started = time.perf_counter()
                stored = await self.bus.publish(subject, event)
                self.last_publish_latency_s = time.perf_counter() - started
                return stored
            except BusError as error:
                if not self.bus.link.connected:
                    log.warning("NATS is away; waiting for it to store a change", extra={"subject": subject})
                    if await self.bus.link.wait_connected(self.outage_wait_s):
                        continue
                    raise
                attempt += 1
                if attempt >= PUBLISH_ATTEMPTS:
                    raise
                delay = PUBLISH_BACKOFF_S[min(attempt - 1, len(PUBLISH_BACKOFF_S) - 1)]
                log.warning(
                    "publish failed; retrying",
                    extra={"subject": subject, "object": meta.get("name"), "error": str(error), "delay_s": delay},
                )
                await asyncio.sleep(delay)
