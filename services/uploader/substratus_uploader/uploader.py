"""The uploader: answers ``spec.build.upload`` with a signed URL, then notices the upload itself.

- Each change event only names a resource; the handler reads it from the API and reconciles it
  (level-triggered), under one lock per resource shared with the pollers.
- A new ``requestID``: if storage already holds ``<prefix>/uploads/<md5>.tar.gz`` with that MD5
  (hashed here, :func:`storage.base.md5_of`), report it found; else sign a PUT URL and report it.
- While a URL is out, a poller per resource stats the key every ``upload_poll_interval_s`` until
  the object appears or the URL expires, then reconciles again: the flow completes even if the
  client is gone after its PUT. Pollers are restarted from the local view when the service starts.
- Status goes only through status reports; the uploader never writes the resource. The signed URL
  travels only in ``build_upload`` of a report, never in a log line or an error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from substratus_common import config, errors, failpoints
from substratus_common.api.types import Reason
from substratus_common.bus import connection
from substratus_common.events import envelope, payloads, subjects
from substratus_common.kube import client
from substratus_common.kube import resources as kube_resources
from substratus_common.runtime import consumer, report, view
from substratus_common.storage import base
from substratus_common.storage import errors as storage_errors
from substratus_uploader import decide

log = logging.getLogger(__name__)

SERVICE = "uploader"
PLURALS = tuple(rt.plural for rt in kube_resources.SUBSTRATUS_KINDS)
SIGNED_URL_REUSE_MARGIN_S = 60.0
"""A URL signed here for the same request is reused (not signed again) while it has this much life left."""

Key = tuple[str, str, str]
Object = dict[str, Any]


def filter_subjects() -> list[str]:
    """Changes of the four kinds themselves, not of their children."""
    return [f"{subjects.PREFIX}.{subjects.CHANGE}.{plural}.*.*" for plural in PLURALS]


@dataclass
class Uploader:
    bus: connection.Bus
    kube: client.Kube
    storage: base.Storage
    settings: config.Settings
    view: view.View = field(default_factory=lambda: view.View(PLURALS))
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    reports_published: int = 0
    _locks: dict[Key, asyncio.Lock] = field(default_factory=dict)
    _lock_users: dict[Key, int] = field(default_factory=dict)
    _signed: dict[tuple[str, str, str], base.SignedPut] = field(default_factory=dict)
    _pollers: dict[Key, tuple[tuple[str, str, str], asyncio.Task[None]]] = field(default_factory=dict)
    _closed: bool = False

    # ---- consuming -------------------------------------------------------------------------------

    async def handle(self, delivery: consumer.Delivery) -> None:
        key = delivery.subject.key
        if delivery.subject.child_kind is not None:
            return
        if envelope.is_deleted(delivery.event.type):
            self._stop_polling(key)
            return
        seen = payloads.change_object(delivery.event)
        if "spec" in seen and not decide.asks_for_upload(seen) and not decide.has_upload_status(seen):
            return  # no upload asked for and nothing of ours to clear: no API read
        async with self._exclusive(key):
            await self.reconcile_key(key)

    async def give_up(self, delivery: consumer.Delivery, reason: str, message: str) -> None:
        """The runtime terminated a message: say why on ``Uploaded``, keeping ``buildUpload`` as it is."""
        plural, namespace, name = delivery.subject.key
        obj = await self.kube.get(kube_resources.by_plural(plural), namespace, name)
        if obj is None:
            return
        upload = (obj.get("status") or {}).get("buildUpload") or None
        await self._publish(obj, decide.Report(report.condition(decide.UPLOADED, False, reason, message), upload))

    # ---- reconciling -----------------------------------------------------------------------------

    async def reconcile_key(self, key: Key) -> None:
        """Read the resource and reconcile it. Call under its lock."""
        plural, namespace, name = key
        obj = await self.kube.get(kube_resources.by_plural(plural), namespace, name)
        if obj is None:
            self._stop_polling(key)
            return
        await failpoints.delay(failpoints.SLOW_RECONCILE)  # benchmarks only (SUBSTRATUS_FAILPOINTS)
        await self.reconcile(obj)

    async def reconcile(self, obj: Object) -> None:
        try:
            request = decide.request_of(obj, self.settings.cluster_name)
        except ValueError as error:
            raise errors.PermanentError(
                f"spec.build.upload: {error}", reason=Reason.INVALID, condition=decide.UPLOADED
            ) from error
        key = _key_of(obj)
        if request is None:
            self._stop_polling(key)
            if decide.has_upload_status(obj):
                await self._publish(obj, decide.cleared())
            return
        try:
            made = await self._decide(obj, request)
        except storage_errors.StorageError as error:
            if error.retryable:
                raise
            raise errors.PermanentError(
                f"storage refused the uploader ({error.message}); an operator must fix the bucket or its credentials",
                reason=Reason.FORBIDDEN,
                condition=decide.UPLOADED,
            ) from error
        await self._publish(obj, made)

    async def _decide(self, obj: Object, request: decide.Request) -> decide.Report:
        answer = decide.Answer.of(obj)
        now = self.now()
        key = _key_of(obj)
        if answer.request_id == request.request_id:
            if answer.signed_url is None and answer.stored_md5 == request.md5:
                self._stop_polling(key)
                return decide.found(request)  # verified when it was first reported
            if answer.signed_url is not None and not decide.url_is_for(answer.signed_url, request.key):
                self._stop_polling(key)
                return decide.stale_request(request)
            if await self._holds(request):
                self._stop_polling(key)
                return decide.found(request)
            if answer.signed_url is None or answer.expiration is None or answer.expiration <= now:
                self._stop_polling(key)
                if answer.stored_md5 is not None:
                    return decide.stale_request(request)
                return decide.expired(request, answer.expiration)
            self._poll(key, request, answer.expiration)
            return decide.awaiting(request, answer.signed_url, answer.expiration)
        if await self._holds(request):
            self._stop_polling(key)
            log.info("upload already stored", extra=_fields(request))
            return decide.found(request)
        signed = await self._sign(request, now)
        self._poll(key, request, signed.expiration)
        return decide.awaiting(request, signed.url, signed.expiration)

    async def _holds(self, request: decide.Request) -> bool:
        """Whether storage holds the tarball and its bytes have the requested MD5 (hashed here)."""
        if await self.storage.stat(request.key) is None:
            return False
        md5 = await base.md5_of(self.storage, request.key)
        if md5 != request.md5:
            log.warning("stored upload has another MD5", extra={**_fields(request), "stored_md5": md5})
            return False
        return True

    async def _sign(self, request: decide.Request, now: dt.datetime) -> base.SignedPut:
        memo = (request.uid, request.request_id, request.md5)
        for stale in [k for k, s in self._signed.items() if s.expiration <= now]:
            del self._signed[stale]
        signed = self._signed.get(memo)
        if signed is None or (signed.expiration - now).total_seconds() < SIGNED_URL_REUSE_MARGIN_S:
            signed = await self.storage.sign_put(request.key, request.md5, self.settings.signed_url_expiry_s)
            self._signed[memo] = signed
            log.info(
                "signed an upload URL", extra={**_fields(request), "expiration": decide.format_time(signed.expiration)}
            )
        return signed

    async def _publish(self, obj: Object, made: decide.Report) -> None:
        if decide.status_says(obj, made):
            return
        meta = obj["metadata"]
        status_report = report.report_for(
            obj,
            SERVICE,
            [made.condition] if made.condition is not None else [],
            observed=f"{meta.get('uid')}/{meta.get('resourceVersion')}",
            build_upload=made.build_upload,
        )
        await report.publish(self.bus, status_report, _key_of(obj)[0])
        self.reports_published += 1

    # ---- polling ---------------------------------------------------------------------------------

    def _poll(self, key: Key, request: decide.Request, expiration: dt.datetime) -> None:
        """Make sure a poller watches storage for this request until ``expiration``."""
        ident = (request.uid, request.request_id, request.md5)
        running = self._pollers.get(key)
        if self._closed or (running is not None and running[0] == ident and not running[1].done()):
            return
        self._stop_polling(key)
        task = asyncio.create_task(self._run_poller(key, request, expiration), name=f"poll:{'/'.join(key)}")
        self._pollers[key] = (ident, task)

    def _stop_polling(self, key: Key) -> None:
        running = self._pollers.pop(key, None)
        if running is not None and running[1] is not asyncio.current_task():
            running[1].cancel()

    async def _run_poller(self, key: Key, request: decide.Request, expiration: dt.datetime) -> None:
        interval = self.settings.upload_poll_interval_s
        try:
            while True:
                remaining = (expiration - self.now()).total_seconds()
                if remaining < 0:
                    break
                await asyncio.sleep(min(interval, remaining + 0.5))
                try:
                    if await self.storage.stat(request.key) is not None:
                        break
                except storage_errors.StorageError as error:
                    log.info("polling storage failed; trying again", extra={**_fields(request), "error": str(error)})
            await self._settle(key)
        finally:
            current = self._pollers.get(key)
            if current is not None and current[1] is asyncio.current_task():
                del self._pollers[key]

    async def _settle(self, key: Key) -> None:
        """Reconcile after the upload appeared or the URL expired, retrying what may pass."""
        backoff = self.settings.retry_backoff_s
        for attempt in range(self.settings.max_deliveries):
            try:
                async with self._exclusive(key):
                    # Detach from the registry first so reconcile does not cancel this very task.
                    current = self._pollers.get(key)
                    if current is not None and current[1] is asyncio.current_task():
                        del self._pollers[key]
                    await self.reconcile_key(key)
                return
            except errors.PermanentError as error:
                plural, namespace, name = key
                obj = await self.kube.get(kube_resources.by_plural(plural), namespace, name)
                if obj is not None:
                    upload = (obj.get("status") or {}).get("buildUpload") or None
                    failed = report.condition(decide.UPLOADED, False, error.reason, error.message)
                    await self._publish(obj, decide.Report(failed, upload))
                return
            except Exception as error:
                delay = backoff[min(attempt, len(backoff) - 1)]
                log.info(
                    "could not settle an upload; retrying",
                    extra={"resource": key[0], "namespace": key[1], "object": key[2], "error": str(error)},
                )
                await asyncio.sleep(delay)

    async def resume_polling(self) -> None:
        """After a restart: poll for every request with an outstanding URL in the local view."""
        for key, obj in list(self.view.objects.items()):
            try:
                request = decide.request_of(obj, self.settings.cluster_name)
            except ValueError:
                continue
            answer = decide.Answer.of(obj)
            if (
                request is not None
                and answer.request_id == request.request_id
                and answer.signed_url is not None
                and answer.expiration is not None
            ):
                self._poll(key, request, answer.expiration)
        if self._pollers:
            log.info("resumed polling for outstanding uploads", extra={"uploads": len(self._pollers)})

    async def close(self) -> None:
        self._closed = True
        tasks = [task for _, task in self._pollers.values()]
        self._pollers.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    @contextlib.asynccontextmanager
    async def _exclusive(self, key: Key) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._lock_users[key] = self._lock_users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[key] -= 1
            if self._lock_users[key] == 0:
                del self._lock_users[key]
                self._locks.pop(key, None)


def _key_of(obj: Object) -> Key:
    meta = obj["metadata"]
    return kube_resources.by_kind(str(obj["kind"])).plural, str(meta["namespace"]), str(meta["name"])


def _fields(request: decide.Request) -> dict[str, object]:
    return {
        "resource": request.plural,
        "namespace": request.namespace,
        "object": request.name,
        "request_id": request.request_id,
        "md5": request.md5,
    }
