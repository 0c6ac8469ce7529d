"""The watcher's list-then-watch loop against a real API server: every change reaches the sink,
objects deleted while away become tombstones, and an expired version forces a relist."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable

import pytest

from substratus_common.kube import client, resources
from substratus_local.stack import Stack
from substratus_local.testing import needs_410_on_compaction
from substratus_watcher import sync

MANAGER = "substratus-test"


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []  # (changed|deleted, name, resourceVersion)
        self.changed_event = asyncio.Event()

    async def changed(self, rt: resources.ResourceType, obj: client.Object) -> None:
        self.events.append(("changed", obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))
        self.changed_event.set()

    async def deleted(self, rt: resources.ResourceType, obj: client.Object) -> None:
        self.events.append(("deleted", obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))
        self.changed_event.set()

    async def flush(self) -> None:
        """Each change is recorded when handed over: nothing is ever in flight."""

    def names(self, kind: str) -> list[str]:
        return [name for k, name, _ in self.events if k == kind]


async def until(predicate: Callable[[], bool], what: str, limit_s: float = 30) -> None:
    """Poll a condition the sink fills in (bounded); fails the test naming it."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{what} did not happen within {limit_s:.0f}s")
        await asyncio.sleep(0.05)


@pytest.fixture
async def kube(stack: Stack) -> AsyncIterator[client.Kube]:
    kube = await client.connect(str(stack.kubeconfig))
    yield kube
    await kube.close()


def _cm(namespace: str, name: str, label: str, value: str = "1") -> client.Object:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {"sync-test": label}},
        "data": {"v": value},
    }


@contextlib.asynccontextmanager
async def running(type_sync: sync.TypeSync) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(type_sync.run(stop))
    try:
        await asyncio.wait_for(type_sync.synced.wait(), 30)
        yield stop
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_list_then_watch_delivers_creates_updates_and_deletes(kube: client.Kube, namespace: str) -> None:
    label = secrets.token_hex(4)
    await kube.apply(_cm(namespace, "before", label), MANAGER)
    sink = RecordingSink()
    type_sync = sync.TypeSync(
        kube, resources.CONFIGMAP, sink, options=sync.Options(label_selector=f"sync-test={label}")
    )
    async with running(type_sync):
        assert sink.names("changed") == ["before"]
        await kube.apply(_cm(namespace, "after", label), MANAGER)
        await kube.apply(_cm(namespace, "before", label, "2"), MANAGER)
        await kube.delete(resources.CONFIGMAP, namespace, "after")
        await until(lambda: sink.names("deleted") == ["after"], "delete of after")
    assert sink.names("changed") == ["before", "after", "before"]


async def test_restart_from_known_state_sends_only_what_changed_and_tombstones(
    kube: client.Kube, namespace: str
) -> None:
    label = secrets.token_hex(4)
    kept = await kube.apply(_cm(namespace, "kept", label), MANAGER)
    edited = await kube.apply(_cm(namespace, "edited", label), MANAGER)
    doomed = await kube.apply(_cm(namespace, "doomed", label), MANAGER)
    known = {sync.key_of(o): sync.version_of(o) for o in (kept, edited, doomed)}
    # While "the watcher is down": one edit, one delete.
    await kube.apply(_cm(namespace, "edited", label, "2"), MANAGER)
    await kube.delete(resources.CONFIGMAP, namespace, "doomed")

    sink = RecordingSink()
    options = sync.Options(label_selector=f"sync-test={label}")
    async with running(sync.TypeSync(kube, resources.CONFIGMAP, sink, known=known, options=options)):
        pass
    assert sink.names("changed") == ["edited"]
    assert sink.names("deleted") == ["doomed"]
    tombstone_version = next(v for k, n, v in sink.events if k == "deleted")
    assert tombstone_version != doomed["metadata"]["resourceVersion"]  # a new event id, not the old one


async def test_compacted_resource_version_relists_without_losing_a_change(
    kube: client.Kube, namespace: str, stack: Stack
) -> None:
    needs_410_on_compaction(stack)
    label = secrets.token_hex(4)
    sink = RecordingSink()
    type_sync = sync.TypeSync(
        kube, resources.CONFIGMAP, sink, options=sync.Options(label_selector=f"sync-test={label}")
    )
    original = type_sync._watch_once

    async def watch_after_compaction(resource_version: str, server_timeout_s: int, stop: asyncio.Event) -> str:
        # While "the watcher is away": a change, then etcd compacts past the version it holds.
        type_sync._watch_once = original  # type: ignore[method-assign]
        await kube.apply(_cm(namespace, "during-outage", label), MANAGER)
        await kube.apply(_cm(namespace, "during-outage", label, "2"), MANAGER)
        # etcd keeps revisions from the compaction point on: the watcher's next one is now gone.
        await asyncio.to_thread(stack.compact_etcd)
        await kube.apply(_cm(namespace, "after-compaction", label), MANAGER)
        return await original(resource_version, server_timeout_s, stop)

    type_sync._watch_once = watch_after_compaction  # type: ignore[method-assign]
    async with running(type_sync):
        await until(
            lambda: {"during-outage", "after-compaction"} <= set(sink.names("changed")), "changes around compaction"
        )
    assert type_sync.relists >= 2, "the compacted version should have forced a relist"
