"""The watcher's sink: every change of a resource or of a labelled child becomes a CloudEvent.

Event id and ``Nats-Msg-Id`` are ``<uid>/<resourceVersion>``, so two watchers, a resync or a
restart republishing the same version store it once.
"""

from __future__ import annotations

import asyncio
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


def strip(obj: client.Object) -> client.Object:
    """Drop managedFields: they are large, change often and nobody downstream reads them."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


class Publisher:
    def __init__(
        self, bus: connection.Bus, metrics: RuntimeMetrics | None = None, *, outage_wait_s: float = 900.0
    ) -> None:
        self.bus = bus
        self.metrics = metrics
        self.outage_wait_s = outage_wait_s
        self.published = 0
        self.duplicates = 0
        self.last_publish_latency_s = 0.0

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
        data, truncated = payloads.change_data(strip(obj))
        event = envelope.make(
            id=f"{meta.get('uid')}/{meta.get('resourceVersion')}",
            source=self.bus.source,
            type=envelope.change_type(rt.kind, deleted),
            subject=ce_subject,
            data=data,
            truncated=truncated,
        )
        stored = await self._with_retries(nats_subject, event, meta)
        if stored:
            self.published += 1
            if self.metrics is not None:
                self.metrics.published.labels("SUBSTRATUS_CHANGES").inc()
        else:
            self.duplicates += 1

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
