"""A service's local view of resources, rebuilt from SUBSTRATUS_CHANGES and kept current from it.

Every replica follows all resource-level change subjects of the kinds it cares about (last
message per subject first, then live), so a dependency turning ready finds its dependents without
listing the API, whichever replica handles the event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from substratus_common.bus import connection
from substratus_common.bus.errors import BusError
from substratus_common.events import envelope, payloads, streams, subjects

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # plural, namespace, name
Object = dict[str, Any]


class View:
    def __init__(self, plurals: Iterable[str]) -> None:
        self.plurals = tuple(plurals)
        self.objects: dict[Key, Object] = {}
        self.loaded = asyncio.Event()
        self._subs: list[Any] = []
        self._pending: dict[str, int] = {}

    def get(self, plural: str, namespace: str, name: str) -> Object | None:
        return self.objects.get((plural, namespace, name))

    def find(self, plural: str, predicate: Callable[[Object], bool]) -> list[Object]:
        """Objects of a kind for which ``predicate`` holds (e.g. the Models that use a Dataset)."""
        return [obj for (p, _, _), obj in self.objects.items() if p == plural and predicate(obj)]

    def apply(self, subject: str, data: bytes) -> None:
        """Fold one change message into the view; anything else is ignored."""
        try:
            parsed = subjects.parse(subject)
            event = envelope.decode(data)
        except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
            return
        if parsed.stream != subjects.CHANGE or parsed.child_kind is not None:
            return
        if envelope.is_deleted(event.type):
            self.objects.pop(parsed.key, None)
            return
        try:
            obj = payloads.change_object(event)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        current = self.objects.get(parsed.key)
        if current is not None and _newer(current, obj):
            return  # a late republish of an older version
        self.objects[parsed.key] = obj

    async def follow(self, bus: connection.Bus, load_timeout_s: float = 60.0) -> None:
        """Subscribe (ordered, last per subject, then live) and wait until the backlog is read."""
        for plural in self.plurals:
            filter_subject = f"{subjects.PREFIX}.{subjects.CHANGE}.{plural}.*.*"
            self._pending[plural] = -1

            async def _on_message(msg: Msg, plural: str = plural) -> None:
                self.apply(msg.subject, msg.data)
                if self._pending.get(plural, 0) != 0 and int(msg.metadata.num_pending) == 0:
                    self._pending[plural] = 0
                    self._check_loaded()

            try:
                sub = await bus.js.subscribe(
                    filter_subject,
                    stream=streams.CHANGES,
                    cb=_on_message,
                    ordered_consumer=True,
                    deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
                )
                self._subs.append(sub)
                info = await sub.consumer_info()
            except (nats.errors.Error, TimeoutError) as error:
                raise BusError(f"following {filter_subject}: {error}") from error
            # consumer_seq, not stream_seq: a filter that matches nothing still reports the stream's position.
            delivered = info.delivered.consumer_seq if info.delivered else 0
            if int(info.num_pending or 0) == 0 and not delivered:
                self._pending[plural] = 0  # nothing stored yet for this kind
        self._check_loaded()
        try:
            await asyncio.wait_for(self.loaded.wait(), load_timeout_s)
        except TimeoutError as error:
            raise BusError(f"the view did not load within {load_timeout_s:.0f}s") from error
        log.info("view loaded", extra={"objects": len(self.objects), "kinds": list(self.plurals)})

    def _check_loaded(self) -> None:
        # Only once every kind is followed: an early kind's backlog must not stand for the others'.
        if len(self._pending) == len(self.plurals) and all(v == 0 for v in self._pending.values()):
            self.loaded.set()

    async def close(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
        self._subs.clear()


def _newer(current: Object, candidate: Object) -> bool:
    """Whether ``current`` is a later version of the same object than ``candidate``."""
    a, b = current.get("metadata", {}), candidate.get("metadata", {})
    if a.get("uid") != b.get("uid"):
        return False
    try:
        return int(a.get("resourceVersion") or 0) > int(b.get("resourceVersion") or 0)
    except ValueError:
        return False
