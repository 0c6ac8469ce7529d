"""When each Job first existed and each Model first was ready, seen by the benchmark's own watches.

Both runs (our services and the bare-client floor) are timed by the same watches of the same
process, so the two are measured alike: a Job "exists" when the watch first shows it, a Model is
"ready" when the watch first shows ``status.ready: true``. Every Job uid seen is kept per owning
Model, so a replaced Job (a second uid) shows up even if it was deleted again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from typing import Any

from substratus_common.kube import client, errors
from substratus_common.kube.resources import JOB, MODEL, ResourceType

Object = dict[str, Any]


def owner_model(job: Object) -> str | None:
    for ref in job.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == MODEL.kind:
            return str(ref.get("name"))
    return None


def is_ready(model: Object) -> bool:
    return (model.get("status") or {}).get("ready") is True


def job_complete(job: Object) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Complete" and c.get("status") == "True" for c in conditions)


class Watch:
    """List, then watch one resource type in a namespace, calling ``on(obj, now)`` for every object seen.

    A watch that ends, stalls or is too old is resumed (listing again when the version is gone).
    """

    def __init__(self, kube: client.Kube, rt: ResourceType, namespace: str, on: Callable[[Object, float], None]):
        self.kube, self.rt, self.namespace, self.on = kube, rt, namespace, on
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        version = await self._list()
        self._task = asyncio.create_task(self._run(version), name=f"watch-{self.rt.plural}-{self.namespace}")

    async def _list(self) -> str:
        listed = await self.kube.list(self.rt, self.namespace)
        now = time.time()
        for item in listed.items:
            self.on(item, now)
        return listed.resource_version

    async def _run(self, version: str) -> None:
        while True:
            try:
                async for event in self.kube.watch(self.rt, self.namespace, resource_version=version, stall_after=30):
                    version = str(event.object.get("metadata", {}).get("resourceVersion", version))
                    if event.type in ("ADDED", "MODIFIED"):
                        self.on(event.object, time.time())
            except errors.Gone:
                version = await self._list()
            except (errors.WatchStalled, errors.APIUnavailable):
                continue  # quiet (no bookmarks without the watch cache) or dropped: watch again from `version`

    def check(self) -> None:
        """Raise what ended the watch, if it ended."""
        if self._task is not None and self._task.done():
            self._task.result()
            raise RuntimeError(f"the watch of {self.rt.plural} in {self.namespace} ended")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class Timeline:
    """Jobs and Models of one namespace: first-seen times and Job uids per Model."""

    def __init__(self, kube: client.Kube, namespace: str, on_job: Callable[[Object], None] | None = None) -> None:
        self.namespace = namespace
        self.job_seen: dict[str, float] = {}  # Model name -> first time one of its Jobs was seen
        self.job_uids: dict[str, set[str]] = {}
        self.job_done_at: dict[str, float] = {}  # Model name -> first time its Job was seen Complete
        self.ready_at: dict[str, float] = {}
        self._on_job = on_job
        self._changed = asyncio.Event()
        self._watches = [Watch(kube, JOB, namespace, self._job), Watch(kube, MODEL, namespace, self._model)]

    def _job(self, job: Object, now: float) -> None:
        model = owner_model(job)
        if model is None:
            return
        self.job_seen.setdefault(model, now)
        self.job_uids.setdefault(model, set()).add(str(job["metadata"]["uid"]))
        if job_complete(job):
            self.job_done_at.setdefault(model, now)
        if self._on_job is not None:
            self._on_job(job)
        self._changed.set()

    def _model(self, model: Object, now: float) -> None:
        name = str(model["metadata"]["name"])
        if is_ready(model) and name not in self.ready_at:
            self.ready_at[name] = now
            self._changed.set()

    async def start(self) -> None:
        for watch in self._watches:
            await watch.start()

    async def stop(self) -> None:
        for watch in self._watches:
            await watch.stop()

    async def wait(
        self,
        names: Collection[str],
        timeout_s: float,
        alive: Callable[[], None] = lambda: None,
        what: str = "",
        progress: Callable[[str], None] = lambda _: None,
    ) -> None:
        """Until every Model in ``names`` is ready; ``alive`` raises if something the run needs died."""
        deadline = time.monotonic() + timeout_s
        next_note = time.monotonic() + 30
        while True:
            missing = [n for n in names if n not in self.ready_at]
            if not missing:
                return
            if time.monotonic() >= next_note:
                jobs = sum(1 for n in names if n in self.job_seen)
                progress(f"{what}: {jobs}/{len(names)} Jobs exist, {len(names) - len(missing)} Models ready")
                next_note = time.monotonic() + 30
            for watch in self._watches:
                watch.check()
            alive()
            left = deadline - time.monotonic()
            if left <= 0:
                jobs = sum(1 for n in names if n in self.job_seen)
                raise TimeoutError(
                    f"{what}: {len(missing)} of {len(names)} Models not ready within {timeout_s:.0f}s "
                    f"({jobs} have a Job), e.g. {missing[:3]}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(left, 2.0))
            except TimeoutError:
                continue
