"""The measurements, against a running stack with the watcher and status-writer up.

Times are wall-clock (``time.time()``) on this machine, compared with the times NATS stored the
messages at (same machine, same clock). "Apply" is a server-side apply by the benchmark's own
client; the API server accepted the object some time between sending it and the reply arriving,
so each apply → stored latency is given twice: from the reply (a lower bound) and from the send
(an upper bound).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import ssl
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from substratus_cli import reader
from substratus_common.bus import connection
from substratus_common.events import envelope, streams, subjects
from substratus_common.kube import client, errors
from substratus_common.kube.resources import MODEL
from substratus_common.runtime import report

FIELD_MANAGER = "substratus-bench"
REPORTING_SERVICE = "bench"
IMAGE = "substratusai/model-loader-huggingface"  # a preset image: no build, nothing else to wait for
CONDITION, REASON = "Complete", "Benchmark"


def manifest(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": MODEL.api_version,
        "kind": MODEL.kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"image": IMAGE, "params": {"name": "facebook/opt-125m"}},
    }


@dataclass(frozen=True)
class Applied:
    name: str
    obj: dict[str, Any]
    sent: float
    returned: float

    @property
    def event_id(self) -> str:
        meta = self.obj["metadata"]
        return f"{meta['uid']}/{meta['resourceVersion']}"


async def apply_all(kube: client.Kube, namespace: str, names: Sequence[str], concurrency: int) -> list[Applied]:
    """Server-side apply every Model, ``concurrency`` requests in flight at most."""
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str) -> Applied:
        async with gate:
            sent = time.time()
            obj = await kube.apply(manifest(namespace, name), FIELD_MANAGER)
            return Applied(name, obj, sent, time.time())

    return list(await asyncio.gather(*(one(n) for n in names)))


async def wait_change_subjects(bus: connection.Bus, namespace: str, count: int, timeout_s: float) -> None:
    """Until the change stream holds events of ``count`` distinct Models of the namespace."""
    filter_subject = f"{subjects.PREFIX}.{subjects.CHANGE}.{MODEL.plural}.{namespace}.*"
    deadline = time.monotonic() + timeout_s
    while True:
        info = await bus.js.stream_info(streams.CHANGES, subjects_filter=filter_subject)
        have = len(info.state.subjects or {})
        if have >= count:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {have} of {count} Models in {namespace} reached {streams.CHANGES}")
        await asyncio.sleep(0.2)


async def stored_times(bus: connection.Bus, namespace: str, since: float) -> dict[str, float]:
    """Event id → time the change stream stored it, for the Models of a namespace."""
    filters = {streams.CHANGES: [f"{subjects.PREFIX}.{subjects.CHANGE}.{MODEL.plural}.{namespace}.*"]}
    start = dt.datetime.fromtimestamp(since - 1, dt.UTC)
    out: dict[str, float] = {}
    async for stored in reader.read(bus, filters, start=start, follow=False):
        out.setdefault(envelope.decode(stored.data).id, stored.stored_at.timestamp())
    return out


class StatusWatch:
    """Watches the Models of a namespace and notes when each first shows the benchmark's condition."""

    def __init__(self, kube: client.Kube, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace
        self.seen: dict[str, float] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listed = await self.kube.list(MODEL, self.namespace)
        self._task = asyncio.create_task(self._run(listed.resource_version), name=f"watch-{self.namespace}")

    async def _run(self, resource_version: str) -> None:
        while True:
            try:
                async for event in self.kube.watch(MODEL, self.namespace, resource_version=resource_version):
                    meta = event.object.get("metadata", {})
                    resource_version = str(meta.get("resourceVersion", resource_version))
                    name = str(meta.get("name"))
                    if event.type == "MODIFIED" and name not in self.seen and _has_condition(event.object):
                        self.seen[name] = time.time()
                        self._changed.set()
            except errors.Gone:
                resource_version = (await self.kube.list(MODEL, self.namespace)).resource_version

    async def wait(self, names: Sequence[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not all(n in self.seen for n in names):
            self._changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sum(1 for n in names if n not in self.seen)
                raise TimeoutError(f"{missing} of {len(names)} statuses not written within {timeout_s:.0f}s")
            if self._task is not None and self._task.done():
                self._task.result()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(left, 1.0))
            except TimeoutError:
                continue

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def _has_condition(obj: dict[str, Any]) -> bool:
    conditions = obj.get("status", {}).get("conditions") or []
    return any(c.get("type") == CONDITION and c.get("reason") == REASON for c in conditions)


async def publish_report(bus: connection.Bus, applied: Applied) -> float:
    """Publish the benchmark's status report about one Model; when the stream acknowledged it."""
    reported = report.report_for(applied.obj, REPORTING_SERVICE, [report.condition(CONDITION, False, REASON)])
    await report.publish(bus, reported, MODEL.plural)
    return time.time()


async def publish_reports(bus: connection.Bus, applied: Sequence[Applied], concurrency: int) -> dict[str, float]:
    gate = asyncio.Semaphore(concurrency)

    async def one(a: Applied) -> tuple[str, float]:
        async with gate:
            return a.name, await publish_report(bus, a)

    return dict(await asyncio.gather(*(one(a) for a in applied)))


async def bus_only(bus: connection.Bus, count: int, concurrency: int) -> tuple[float, float]:
    """Publish ``count`` small CloudEvents (acknowledged, deduplicated by id) with no service involved.

    They go to a plural no service reads; returns (first send, last acknowledgement).
    """
    gate = asyncio.Semaphore(concurrency)
    run = f"{time.time_ns():x}"

    async def one(i: int) -> None:
        event = envelope.make(
            id=f"bench-{run}-{i}",
            source=bus.source,
            type=envelope.change_type("BenchEvent", False),
            subject=f"benchevents/bench/e{i}",
            data={"i": i},
        )
        async with gate:
            await bus.publish(subjects.change("benchevents", "bench", f"e{run}-{i}"), event)

    start = time.time()
    await asyncio.gather(*(one(i) for i in range(count)))
    return start, time.time()


def api_requests(stack_pki: Path, apiserver_url: str, resource: str) -> Counter[str]:
    """The API server's request counts for one resource, by ``verb`` and ``verb/subresource``."""
    ctx = ssl.create_default_context(cafile=str(stack_pki / "ca.crt"))
    ctx.load_cert_chain(str(stack_pki / "admin.crt"), str(stack_pki / "admin.key"))
    text = httpx.get(f"{apiserver_url}/metrics", verify=ctx, timeout=30).text
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels_text, _, value = line.rpartition("} ")
        labels = dict(_LABEL.findall(labels_text))
        if labels.get("resource") != resource:
            continue
        sub = labels.get("subresource", "")
        counts[labels.get("verb", "?") + (f"/{sub}" if sub else "")] += int(float(value))
    return counts


_LABEL = re.compile(r'(\w+)="([^"]*)"')
