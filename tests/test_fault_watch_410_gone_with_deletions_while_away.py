"""Check 7: the watcher's watch expires (410 Gone, etcd compacted past its version) while Models
were created, changed and deleted: the relist stores every current version and a tombstone for
each deletion made while it was away, so no consumer keeps a Model that no longer exists."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

from substratus_common.bus import connection
from substratus_common.events import envelope, subjects
from substratus_common.kube import client, resources
from substratus_local.stack import Stack
from substratus_local.testing import needs_410_on_compaction
from substratus_local.testing_nats import last_versions, until
from substratus_watcher import known, publisher, sync

MANAGER = "substratus-test"


IMAGE = "substratusai/model-loader-huggingface"


def _model(namespace: str, name: str, label: str, image: str = IMAGE) -> client.Object:
    return {
        "apiVersion": resources.MODEL.api_version,
        "kind": "Model",
        "metadata": {"name": name, "namespace": namespace, "labels": {"fault-test": label}},
        "spec": {"image": image},
    }


@contextlib.asynccontextmanager
async def running(type_sync: sync.TypeSync) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(type_sync.run(stop))
    try:
        await asyncio.wait_for(type_sync.synced.wait(), 30)
        yield
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_410_gone_relists_and_tombstones_what_was_deleted_while_away(
    stack: Stack, namespace: str, bus: connection.Bus
) -> None:
    needs_410_on_compaction(stack)
    label = secrets.token_hex(4)
    kube = await client.connect(str(stack.kubeconfig))
    try:
        for i in range(6):
            await kube.apply(_model(namespace, f"m-{i}", label), MANAGER)
        sink = publisher.Publisher(bus)
        type_sync = sync.TypeSync(
            kube,
            resources.MODEL,
            sink,
            options=sync.Options(label_selector=f"fault-test={label}"),
            stored=lambda: known.stored(bus, resources.MODEL),
        )
        original = type_sync._watch_once

        async def away_then_gone(resource_version: str, server_timeout_s: int, stop: asyncio.Event) -> str:
            # While the watcher is away: deletions, a change, a creation; then etcd compacts.
            type_sync._watch_once = original  # type: ignore[method-assign]
            await kube.delete(resources.MODEL, namespace, "m-0")
            await kube.delete(resources.MODEL, namespace, "m-1")
            await kube.apply(_model(namespace, "m-2", label, image="example.com/changed:1"), MANAGER)
            await kube.apply(_model(namespace, "m-new", label), MANAGER)
            await asyncio.to_thread(stack.compact_etcd)
            return await original(resource_version, server_timeout_s, stop)

        type_sync._watch_once = away_then_gone  # type: ignore[method-assign]
        async with running(type_sync):
            await until(lambda: type_sync.relists >= 2, "the relist after 410 Gone")
            want = {f"m-{i}" for i in range(2, 6)} | {"m-new"}
            ns_filter = subjects.change_filter("models", namespace)

            async def stored() -> dict[str, tuple[str, str]]:
                return await last_versions(bus, ns_filter)

            deadline = asyncio.get_running_loop().time() + 30
            while True:
                latest = await stored()
                live = {}
                for name in want:
                    obj = await kube.get(resources.MODEL, namespace, name)
                    assert obj is not None
                    live[subjects.change("models", namespace, name)] = obj["metadata"]["resourceVersion"]
                current = all(latest.get(s, ("", ""))[1] == rv for s, rv in live.items())
                tombstoned = all(
                    latest.get(subjects.change("models", namespace, n), ("", ""))[0]
                    == envelope.change_type("Model", True)
                    for n in ("m-0", "m-1")
                )
                if current and tombstoned:
                    break
                assert asyncio.get_running_loop().time() < deadline, f"stream after the relist: {latest}"
                await asyncio.sleep(0.2)
    finally:
        await kube.close()
