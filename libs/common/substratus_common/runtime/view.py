"""A service's local view of resources and their children, rebuilt from SUBSTRATUS_CHANGES.

Every replica follows the change subjects of the kinds it cares about (last message per subject
first, then live): the resources it owns and depends on, and the children (Jobs, Deployments,
Pods) of the ones it owns. The events carry the objects, so a reconcile reads the resource, its
children and its dependencies here instead of from the API (docs/adr/105), and a dependency
turning ready finds its dependents without listing the API, whichever replica handles the event.

The view is at least as new as what a pass was given: the runtime folds each delivery into it
before the pass (:meth:`View.fold`); an older version arriving late never replaces a newer one.
An object cut down to its identity (too large for the bus) has no ``spec``: :meth:`View.trusted`
says so, and the reader fetches it from the API.

With :attr:`View.summarize` set, the view remembers for each resource and child, for its last few
versions, whether each moved the summary from the version before it on the stream
(:meth:`View.fold_change`): whichever replica is handed a change, whatever it handled before and
however far the view has read ahead, it can tell whether that change moved what its owner reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from substratus_common.bus import connection, messages
from substratus_common.bus.errors import BusError
from substratus_common.events import envelope, payloads, streams, subjects
from substratus_common.events.subjects import ResourceKey
from substratus_common.runtime import compact

log = logging.getLogger(__name__)

Object = dict[str, Any]
ChildKey = tuple[str, str]  # child kind (lowercase, as in subjects), child name
Summarize = Callable[[ResourceKey, ChildKey | None, Object], object]
"""What of an object (a resource, or a child when the ChildKey is given) matters to its owner's
pass; None: the view keeps no record of its changes."""


UNWATCHED = "unwatched: no version of it changes what its owner reports"
"""A summary meaning that no version of a child, its first sighting included, wakes its owner (the
trainer's Jobs of a Model, as the builder sees them)."""

HISTORY = 8
"""Versions per object whose change flag the view keeps: a consumer that lags behind the view
(its workers busy) is handed versions the view has already moved past, and each is judged by its
own flag as long as it is among these."""


@dataclass
class _Change:
    """The summary of the newest version folded of one object, and for its last few versions
    whether each changed the summary from the version before it."""

    uid: str | None
    after: object
    changed: dict[str, bool]
    """resourceVersion → whether that version moved the summary (oldest first)."""

    def add(self, version: str, changed: bool) -> None:
        self.changed[version] = changed
        while len(self.changed) > HISTORY:
            del self.changed[next(iter(self.changed))]


class View:
    def __init__(self, plurals: Iterable[str], child_kinds: Mapping[str, Sequence[str]] | None = None) -> None:
        self.plurals = tuple(dict.fromkeys(plurals))
        self.child_kinds = {p: tuple(k) for p, k in (child_kinds or {}).items() if k}
        self.objects: compact.Objects[ResourceKey] = compact.Objects()
        self.children: dict[ResourceKey, compact.Objects[ChildKey]] = {}
        """Both kept as JSON bytes (``runtime.compact``): each read decodes a new dict."""
        self.loaded = asyncio.Event()
        self.on_fold: Callable[[ResourceKey, Object | None], None] | None = None
        """Called after a resource (not a child) was folded, with what the view now holds."""
        self.summarize: Summarize | None = None
        self._changes: dict[ResourceKey, dict[ChildKey | None, _Change]] = {}
        """Per resource: the record of the resource (None) and of each child."""
        self._sub: messages.OrderedSubscription | None = None
        self._reader: asyncio.Task[None] | None = None

    def follows(self, plurals: Iterable[str], child_kinds: Mapping[str, Sequence[str]] | None = None) -> None:
        """Set what :meth:`follow` subscribes to (before it is called)."""
        self.plurals = tuple(dict.fromkeys(plurals))
        self.child_kinds = {p: tuple(k) for p, k in (child_kinds or {}).items() if k}

    # ---- reading ------------------------------------------------------------------------------

    def get(self, plural: str, namespace: str, name: str) -> Object | None:
        return self.objects.get(ResourceKey(plural, namespace, name))

    def child(self, owner: ResourceKey, kind: str, name: str) -> Object | None:
        """The owner's child of that kind (``job``, ``pod``…) and name, as last published."""
        table = self.children.get(ResourceKey(*owner))
        return None if table is None else table.get((kind.lower(), name))

    def children_of(self, owner: ResourceKey, kind: str) -> list[Object]:
        kind = kind.lower()
        table = self.children.get(ResourceKey(*owner))
        return [] if table is None else [table[c] for c in list(table) if c[0] == kind]

    def find(self, plural: str, predicate: Callable[[Object], bool]) -> list[Object]:
        """Objects of a kind for which ``predicate`` holds (e.g. the Models that use a Dataset)."""
        found = (self.objects[key] for key in list(self.objects) if key.plural == plural)
        return [obj for obj in found if predicate(obj)]

    @staticmethod
    def trusted(obj: Object) -> bool:
        """Whether the object is whole (not cut down to its identity for the bus)."""
        return "spec" in obj or "status" in obj or "data" in obj

    # ---- folding events -----------------------------------------------------------------------

    def apply(self, subject: str, data: bytes) -> None:
        """Fold one raw change message into the view; anything else is ignored."""
        try:
            parsed = subjects.parse(subject)
            event = envelope.decode(data)
        except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
            return
        self.fold(parsed, event)

    def fold(self, subject: subjects.Subject, event: envelope.CloudEvent) -> Object | None:
        """Fold one change event; the object it is about as the view now holds it (None: gone)."""
        return self.fold_change(subject, event)[0]

    def fold_change(self, subject: subjects.Subject, event: envelope.CloudEvent) -> tuple[Object | None, bool]:
        """Fold one change event: the object as the view now holds it (None: gone), and whether the
        event's version changed its summary from the version before it on the stream. True when the
        view cannot tell: a deletion, a first sighting, or a version older than the last
        :data:`HISTORY` it folded (each version is judged by its own flag, never a later one's)."""
        if subject.stream != subjects.CHANGE:
            return None, True
        key = subject.key
        if subject.child_kind is not None:
            if subject.child is None:
                return None, True
            table = self.children.setdefault(key, compact.Objects())
            child_key = (subject.child_kind, subject.child)
            return self._fold_into(table, child_key, (key, child_key), event)
        found, changed = self._fold_into(self.objects, key, (key, None), event)
        if found is None:
            self.children.pop(key, None)
            self._changes.pop(key, None)
        if self.on_fold is not None:
            self.on_fold(key, found)
        return found, changed

    def _fold_into(
        self,
        table: compact.Objects[Any],
        key: Any,
        record: tuple[ResourceKey, ChildKey | None],
        event: envelope.CloudEvent,
    ) -> tuple[Object | None, bool]:
        current = table.entry(key)
        try:
            obj = payloads.change_object(event)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return (None if current is None else table[key]), True
        uid, version = compact.identity(obj)
        if envelope.is_deleted(event.type):
            if current is not None and current.uid not in (None, uid):
                return table[key], True  # a late tombstone of an earlier object of the same name
            table.pop(key, None)
            self._changes.get(record[0], {}).pop(record[1], None)
            return None, True
        if current is not None and current.uid == uid and _not_older(current.version, version):
            # Folded already (the event's object is the one held: no second decode), or a late
            # older version: the view keeps what it has.
            held = obj if current.version == version else table[key]
            return held, self._changed(record, uid, version)
        table.put(key, obj, event.data)
        self._record(record, obj, uid, version)
        return obj, self._changed(record, uid, version)

    def _record(self, record: tuple[ResourceKey, ChildKey | None], obj: Object, uid: str | None, version: str) -> None:
        """Remember whether this version (``uid`` and ``version`` are ``obj``'s) moved the summary."""
        if self.summarize is None:
            return
        summary = self.summarize(record[0], record[1], obj)
        if summary is None:
            return
        records = self._changes.setdefault(record[0], {})
        last = records.get(record[1])
        if last is None or last.uid != uid:
            records[record[1]] = last = _Change(uid, summary, {})
            last.add(version, summary != UNWATCHED)  # a first sighting: nothing to compare with
            return
        last.add(version, last.after != summary)
        last.after = summary

    def _changed(self, record: tuple[ResourceKey, ChildKey | None], uid: str | None, version: str) -> bool:
        last = self._changes.get(record[0], {}).get(record[1])
        if last is None or last.uid != uid:
            return True
        return last.changed.get(version, True)

    def remember(self, key: ResourceKey, obj: Object) -> None:
        """Fold an object this process has just read or written (the API's answer): it replaces
        what the view holds unless that is newer, and the stream's own copy of it, arriving later,
        changes nothing. Its managedFields are not kept (nobody downstream reads them)."""
        current = self.objects.entry(key)
        uid, version = compact.identity(obj)
        if current is None or current.uid != uid or not _newer_version(current.version, version):
            self.objects[key] = payloads.without_managed_fields(obj)

    def remember_created(self, owner: ResourceKey, kind: str, name: str, obj: Object) -> None:
        """A child this process has just created, as the API answered: the pass that created it
        has seen it, so its version on the stream changes nothing, and the next one is compared
        with it. Only children of a kind the view follows; never over a newer version."""
        child_key = (kind.lower(), name)
        if child_key[0] not in self.child_kinds.get(owner.plural, ()):
            return
        table = self.children.setdefault(ResourceKey(*owner), compact.Objects())
        current = table.entry(child_key)
        uid, version = compact.identity(obj)
        if current is not None and current.uid == uid and _not_older(current.version, version):
            return
        table[child_key] = payloads.without_managed_fields(obj)
        summary = self.summarize(owner, child_key, obj) if self.summarize is not None else None
        if summary is not None:
            change = _Change(uid, summary, {})
            change.add(version, False)  # the pass that created it has seen it
            self._changes.setdefault(ResourceKey(*owner), {})[child_key] = change

    # ---- following the stream -----------------------------------------------------------------

    def filter_subjects(self) -> list[str]:
        prefix = f"{subjects.PREFIX}.{subjects.CHANGE}"
        wanted = [f"{prefix}.{plural}.*.*" for plural in self.plurals]
        for plural, kinds in self.child_kinds.items():
            wanted += [f"{prefix}.{plural}.*.*.{kind}.*" for kind in kinds]
        return wanted

    async def follow(self, bus: connection.Bus, load_timeout_s: float = 60.0) -> None:
        """Subscribe (ordered, last per subject, then live) and wait until the backlog is read."""
        self._sub = await bus.ordered(streams.CHANGES, self.filter_subjects(), last_per_subject=True)
        progress = await self._sub.progress()
        if progress.num_pending == 0 and progress.delivered == 0:
            self.loaded.set()  # nothing stored yet for these kinds
        self._reader = asyncio.create_task(self._read(self._sub), name="view")
        try:
            await asyncio.wait_for(asyncio.shield(self.loaded.wait()), load_timeout_s)
        except TimeoutError as error:
            raise BusError(f"the view did not load within {load_timeout_s:.0f}s") from error
        log.info("view loaded", extra={"objects": len(self.objects), "kinds": list(self.plurals)})

    async def _read(self, sub: messages.OrderedSubscription) -> None:
        failures = 0
        while True:
            try:
                msg = await sub.next(timeout_s=None)
                failures = 0
            except BusError as error:
                # nats-py reconnects by itself; wait a bounded, growing delay and read on.
                failures += 1
                log.warning("the view lost its subscription; reading on", extra={"error": str(error)})
                await asyncio.sleep(min(0.5 * 2**failures, 10.0))
                continue
            self.apply(msg.subject, msg.data)
            if msg.metadata.num_pending == 0:
                self.loaded.set()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None


def _newer_version(current: str, candidate: str) -> bool:
    """Whether ``current`` is a later resourceVersion of the same object than ``candidate``."""
    try:
        return int(current or 0) > int(candidate or 0)
    except ValueError:
        return False


def _not_older(current: str, candidate: str) -> bool:
    """Whether a view holding ``current`` keeps it over ``candidate`` (same object): it is newer,
    or the same version."""
    return _newer_version(current, candidate) or (bool(current) and current == candidate)
