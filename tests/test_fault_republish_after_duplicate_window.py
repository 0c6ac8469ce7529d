"""Check 15: resyncs and a watcher restart long after the duplicate window store nothing again.

The stream forgets a ``Nats-Msg-Id`` after its duplicate window (here 1 s), so deduplication alone
would store every object again at each resync; the watcher compares with the last message on each
subject instead, and stores only a resourceVersion the stream does not hold yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

from substratus_common.events import streams, subjects
from substratus_common.kube import client, resources
from substratus_local import nats_cluster
from substratus_local.stack import Stack
from substratus_local.testing_nats import bus_on, last_versions, nats_node, until
from substratus_watcher import known, publisher, sync

MANAGER = "substratus-test"

__all__ = ["nats_node"]  # the fixture, imported for this module's tests


def _model(
    namespace: str, name: str, label: str, image: str = "substratusai/model-loader-huggingface"
) -> client.Object:
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


async def test_resyncs_and_a_restart_after_the_window_store_only_new_versions(
    stack: Stack, namespace: str, nats_node: nats_cluster.Cluster
) -> None:
    label = secrets.token_hex(4)
    names = [f"m-{i}" for i in range(10)]
    for_ns = subjects.change_filter("models", namespace)
    kube = await client.connect(str(stack.kubeconfig))
    async with bus_on(nats_node, service="watcher", stream_duplicate_window_s=1.0) as bus:
        try:
            for name in names:
                await kube.apply(_model(namespace, name, label), MANAGER)

            def watcher(state: dict[sync.Key, sync.Version] | None = None) -> sync.TypeSync:
                return sync.TypeSync(
                    kube,
                    resources.MODEL,
                    publisher.Publisher(bus),
                    known=state,
                    options=sync.Options(label_selector=f"fault-test={label}", resync_s=2),
                    stored=lambda: known.stored(bus, resources.MODEL),
                )

            first = watcher()
            async with running(first):
                assert len(await last_versions(bus, for_ns)) == len(names)
                stored_at_start = await bus.last_sequence(streams.CHANGES)
                # Two resyncs, each well past the 1 s window: nothing is stored again.
                await until(lambda: first.relists >= 3, "two resyncs", limit_s=30)
                assert await bus.last_sequence(streams.CHANGES) == stored_at_start
                # A real change is still stored, once.
                await kube.apply(_model(namespace, "m-0", label, image="example.com/other:1"), MANAGER)
                await until(lambda: first.sink.published == len(names) + 1, "the change of m-0")  # type: ignore[attr-defined]
            assert await bus.last_sequence(streams.CHANGES) == stored_at_start + 1

            # A restart after the window, from what the stream holds: nothing new to store.
            state, _ = await known.load(bus)
            restarted = watcher(state[resources.MODEL])
            async with running(restarted):
                await until(lambda: restarted.relists >= 2, "a resync after the restart", limit_s=30)
            assert restarted.sink.published == 0  # type: ignore[attr-defined]
            assert await bus.last_sequence(streams.CHANGES) == stored_at_start + 1
        finally:
            await kube.close()
