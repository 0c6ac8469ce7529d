"""List, then watch, one resource type, and hand every change to a sink.

Follows kopf's continuous watch: list → watch from the list's resourceVersion with bookmarks →
keep the newest version → on 410 Gone list again and diff against what was known, so nothing is
lost; a silent stream is restarted from the last version; a periodic resync compares the live
list with what the stream holds (last message per subject) and stores only what differs, so it
repairs what the stream's limits dropped without storing every object again (docs/adr/130).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from substratus_common.kube import client, errors
from substratus_common.kube.resources import ResourceType

log = logging.getLogger(__name__)

Key = tuple[str, str]  # namespace, name


@dataclass(frozen=True)
class Version:
    uid: str
    resource_version: str


Stored = Callable[[], Awaitable[tuple[dict[Key, Version], dict[Key, dict[str, str]]]]]
"""Reads what the stream holds for one type: versions and labels per key."""


class Sink(Protocol):
    """Where changes go; ``changed`` and ``deleted`` may return before the change is stored."""

    async def changed(self, rt: ResourceType, obj: client.Object) -> None: ...

    async def deleted(self, rt: ResourceType, obj: client.Object) -> None: ...

    async def flush(self) -> None:
        """Return once every change handed over is stored (raise if one could not be)."""


def key_of(obj: client.Object) -> Key:
    meta = obj.get("metadata", {})
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def version_of(obj: client.Object) -> Version:
    meta = obj.get("metadata", {})
    return Version(str(meta.get("uid", "")), str(meta.get("resourceVersion", "")))


def tombstone(rt: ResourceType, key: Key, known: Version, seen_at: str, labels: dict[str, str] | None) -> client.Object:
    """What is left of an object deleted while nobody watched: enough to name it.

    Its resourceVersion is the list's at which the absence was noticed, so the event id
    ``<uid>/<resourceVersion>`` differs from the object's last change event.
    """
    meta: dict[str, Any] = {"namespace": key[0], "name": key[1], "uid": known.uid, "resourceVersion": seen_at}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": meta}


@dataclass
class Options:
    label_selector: str | None = None
    resync_s: float = 600.0
    stall_s: float = 30.0
    """Nothing at all on a watch for this long means its connection went half-open: watch again on
    a new one. Longer than ``watch_timeout_s``, after which a healthy server always ends it."""
    watch_timeout_s: int = 25
    backoff_s: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class TypeSync:
    """Keeps the sink current with one resource type, from a known starting state."""

    def __init__(
        self,
        kube: client.Kube,
        rt: ResourceType,
        sink: Sink,
        *,
        known: dict[Key, Version] | None = None,
        labels: dict[Key, dict[str, str]] | None = None,
        options: Options | None = None,
        clock: Callable[[], float] | None = None,
        stored: Stored | None = None,
    ) -> None:
        self.kube, self.rt, self.sink = kube, rt, sink
        self.known: dict[Key, Version] = dict(known or {})
        self.labels: dict[Key, dict[str, str]] = dict(labels or {})
        self.options = options or Options()
        # Without a reader of the stream (unit tests), a resync compares with what this process
        # last handed to the sink.
        self._stored = stored
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self.relists = 0
        self.synced = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the sink current until ``stop``; a watch blocked on a quiet stream stops at once.

        Cancelling mid-publish loses nothing: the stream is the watcher's state, and whatever was
        not stored is published again at the next start.
        """
        work = asyncio.create_task(self._run(stop), name=f"sync:{self.rt.plural}")
        stopped = asyncio.create_task(stop.wait(), name=f"sync-stop:{self.rt.plural}")
        try:
            await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
        if not work.cancelled():
            work.result()  # re-raise what ended the loop

    async def _run(self, stop: asyncio.Event) -> None:
        failures = 0
        resync = False
        while not stop.is_set():
            try:
                resource_version = await self._relist(against_stream=resync)
                self.synced.set()
                failures = 0
                await self._watch_until_resync(resource_version, stop)
                resync = True  # the period passed: compare with what the stream holds
            except errors.Gone:
                log.info("watch expired (410 Gone); listing again", extra={"resource": self.rt.plural})
                resync = False
            except errors.APIError as error:
                # A 404 on the list means the type is not served (yet): the CRDs may be installed
                # after the watcher starts, so wait for them instead of crashing.
                if not error.retryable and not isinstance(error, errors.NotFound):
                    raise
                delay = self.options.backoff_s[min(failures, len(self.options.backoff_s) - 1)]
                failures += 1
                log.warning(
                    "listing or watching failed; retrying",
                    extra={"resource": self.rt.plural, "error": str(error), "delay_s": delay},
                )
                # Wait for the stop signal, at most the backoff delay (jittered so replicas spread).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay * (0.8 + random.random() * 0.4))

    async def _relist(self, *, against_stream: bool) -> str:
        """List, publish what differs from the baseline, tombstone what is gone.

        The baseline is what this process last published, or, at a resync, what the stream holds
        now: a subject whose last message the stream's limits discarded is stored again then.
        """
        baseline = self.known
        if against_stream and self._stored is not None:
            baseline, stored_labels = await self._stored()
            for key, value in stored_labels.items():
                self.labels.setdefault(key, value)
        current: dict[Key, Version] = {}
        list_version = ""
        # Page by page: only versions are kept, never the whole list (ADR 137).
        async for page in self.kube.pages(self.rt, label_selector=self.options.label_selector):
            list_version = page.resource_version
            for obj in page.items:
                key, version = key_of(obj), version_of(obj)
                current[key] = version
                self.labels[key] = dict(obj.get("metadata", {}).get("labels") or {})
                if baseline.get(key) != version:
                    await self.sink.changed(self.rt, obj)
        last = {**self.known, **baseline}
        for key in sorted(set(last) - set(current)):
            gone = tombstone(self.rt, key, last[key], list_version, self.labels.pop(key, None))
            await self.sink.deleted(self.rt, gone)
        await self.sink.flush()
        self.known = current
        self.relists += 1  # counted once everything it found is published
        return list_version

    async def _watch_until_resync(self, resource_version: str, stop: asyncio.Event) -> None:
        deadline = self._clock() + self.options.resync_s
        while not stop.is_set() and self._clock() < deadline:
            timeout = max(1, min(self.options.watch_timeout_s, int(deadline - self._clock())))
            try:
                resource_version = await self._watch_once(resource_version, timeout, stop)
            except errors.WatchStalled:
                log.warning("watch went silent; watching again", extra={"resource": self.rt.plural})

    async def _watch_once(self, resource_version: str, server_timeout_s: int, stop: asyncio.Event) -> str:
        stream = self.kube.watch(
            self.rt,
            resource_version=resource_version,
            label_selector=self.options.label_selector,
            timeout_seconds=server_timeout_s,
            stall_after=self.options.stall_s,
        )
        async for event in stream:
            if stop.is_set():
                break
            meta = event.object.get("metadata", {})
            resource_version = str(meta.get("resourceVersion") or resource_version)
            if event.type == "BOOKMARK":
                continue
            key = key_of(event.object)
            if event.type == "DELETED":
                self.known.pop(key, None)
                self.labels.pop(key, None)
                await self.sink.deleted(self.rt, event.object)
            else:
                self.known[key] = version_of(event.object)
                self.labels[key] = dict(meta.get("labels") or {})
                await self.sink.changed(self.rt, event.object)
        await self.sink.flush()  # a publish that failed ends the watch here at the latest
        return resource_version
