"""The uploader: answers ``spec.build.upload`` with a signed URL, then notices the upload itself.

A :class:`reconciler.Reconciler` (``substratus_common.runtime.reconciler``) for the four kinds:

- Each pass reconciles one resource as the view holds it (level-triggered); the runtime
  serializes passes per resource and publishes the report (its dedup: :func:`decide.status_says`).
- A new ``requestID``: if storage already holds ``<prefix>/uploads/<md5>.tar.gz`` with that MD5
  (hashed here, :func:`storage.base.md5_of`), report it found; else sign a PUT URL and report it.
- While a URL is out, a poller per resource stats the key every ``upload_poll_interval_s`` until
  the object appears or the URL expires, then enqueues the resource (another pass): the flow
  completes even if the client is gone after its PUT. The root task ``upload-pollers`` restarts
  the pollers from the view when the service starts and stops them when it stops.
- Status goes only through status reports; the uploader never writes the resource. The signed URL
  travels only in ``build_upload`` of a report, never in a log line or an error message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any

from substratus_common import errors
from substratus_common.api.types import Reason
from substratus_common.events.subjects import ResourceKey
from substratus_common.kube import resources as kube_resources
from substratus_common.runtime import reconciler, service
from substratus_common.storage import base
from substratus_common.storage import errors as storage_errors
from substratus_uploader import decide

log = logging.getLogger(__name__)

SERVICE = "uploader"
PLURALS = kube_resources.SUBSTRATUS_PLURALS
SIGNED_URL_REUSE_MARGIN_S = 60.0
"""A URL signed here for the same request is reused (not signed again) while it has this much life left."""

SPEC = reconciler.Spec(durable=SERVICE, owned=PLURALS, condition=decide.UPLOADED, watches=())

Object = dict[str, Any]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Uploader(reconciler.Reconciler):
    spec = SPEC

    def __init__(
        self, runtime: reconciler.Runtime, storage: base.Storage, now: Callable[[], dt.datetime] = _now
    ) -> None:
        self.storage, self.now = storage, now
        self.settings, self.view, self.enqueue = runtime.settings, runtime.view, runtime.enqueue
        self._signed: dict[tuple[str, str, str], base.SignedPut] = {}
        self._pollers: dict[ResourceKey, tuple[tuple[str, str, str], asyncio.Task[None]]] = {}
        self._closed = False

    # ---- what the runtime asks -------------------------------------------------------------------

    def baseline(self, obj: Object) -> reconciler.Outcome:
        """A failure on ``Uploaded`` keeps ``buildUpload`` as it is."""
        return reconciler.Outcome((), build_upload=(obj.get("status") or {}).get("buildUpload") or None)

    def status_says(self, obj: Object, outcome: reconciler.Outcome) -> bool:
        condition = next((c for c in outcome.conditions if c.type == decide.UPLOADED), None)
        return decide.status_says(obj, decide.Report(condition, outcome.build_upload))

    def forget(self, key: ResourceKey) -> None:
        self._stop_polling(key)

    def root_tasks(self) -> Mapping[str, service.RootTask]:
        return {"upload-pollers": self._keep_polling}

    async def reconcile(self, obj: Object) -> reconciler.Outcome:
        made = await self._reconcile(obj)
        return reconciler.Outcome(
            [made.condition] if made.condition is not None else [], build_upload=made.build_upload
        )

    async def _reconcile(self, obj: Object) -> decide.Report:
        try:
            request = decide.request_of(obj, self.settings.cluster_name)
        except ValueError as error:
            raise errors.PermanentError(
                f"spec.build.upload: {error}", reason=Reason.INVALID, condition=decide.UPLOADED
            ) from error
        key = reconciler.key_of(obj)
        if request is None:
            self._stop_polling(key)
            return decide.cleared()
        try:
            return await self._decide(obj, request)
        except storage_errors.StorageError as error:
            if error.retryable:
                raise
            raise errors.PermanentError(
                f"storage refused the uploader ({error.message}); an operator must fix the bucket or its credentials",
                reason=Reason.FORBIDDEN,
                condition=decide.UPLOADED,
            ) from error

    async def _decide(self, obj: Object, request: decide.Request) -> decide.Report:
        answer = decide.Answer.of(obj)
        now = self.now()
        key = reconciler.key_of(obj)
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

    # ---- polling ---------------------------------------------------------------------------------

    def _poll(self, key: ResourceKey, request: decide.Request, expiration: dt.datetime) -> None:
        """Make sure a poller watches storage for this request until ``expiration``."""
        ident = (request.uid, request.request_id, request.md5)
        running = self._pollers.get(key)
        if self._closed or (running is not None and running[0] == ident and not running[1].done()):
            return
        self._stop_polling(key)
        task = asyncio.create_task(self._run_poller(key, request, expiration), name=f"poll:{'/'.join(key)}")
        self._pollers[key] = (ident, task)

    def _stop_polling(self, key: ResourceKey) -> None:
        running = self._pollers.pop(key, None)
        if running is not None and running[1] is not asyncio.current_task():
            running[1].cancel()

    async def _run_poller(self, key: ResourceKey, request: decide.Request, expiration: dt.datetime) -> None:
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
            self.enqueue(key)  # found or expired: another pass decides
        finally:
            current = self._pollers.get(key)
            if current is not None and current[1] is asyncio.current_task():
                del self._pollers[key]

    async def _keep_polling(self, ctx: service.Context) -> None:
        """Root task: resume the pollers from the view, then stop them when the service stops."""
        await self.resume_polling()
        try:
            await ctx.stop.wait()
        finally:
            await self.close()

    async def resume_polling(self) -> None:
        """After a restart: poll for every request with an outstanding URL in the local view."""
        for key, obj in list(self.view.objects.items()):
            if key.plural not in PLURALS:
                continue
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


def _fields(request: decide.Request) -> dict[str, object]:
    where = {"resource": request.plural, "namespace": request.namespace, "object": request.name}
    return {**where, "request_id": request.request_id, "md5": request.md5}
