"""Check 20: a change stream full to its ``max_bytes`` discards its oldest messages, never refuses
a new one, and the watcher's resync stores again what was dropped (and only that).

Real API server (the session stack) and a NATS server of the test's own, so the tiny byte limit
cannot hurt other tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

from substratus_common.events import envelope, streams, subjects
from substratus_common.kube import client, resources
from substratus_local import nats_cluster
from substratus_local.stack import Stack
from substratus_local.testing_nats import bus_on, last_versions, nats_node, until
from substratus_watcher import known, publisher, sync

MANAGER = "substratus-test"
MAX_BYTES = 96 * 1024
PAD = "x" * 2500  # each change event is about 3 KiB

__all__ = ["nats_node"]  # the fixture, imported for this module's tests


def _model(namespace: str, name: str, label: str) -> client.Object:
    return {
        "apiVersion": resources.MODEL.api_version,
        "kind": "Model",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"fault-test": label},
            "annotations": {"fault-test/padding": PAD},
        },
        "spec": {"image": "substratusai/model-loader-huggingface"},
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


async def test_stream_full_discards_old_and_the_resync_stores_the_dropped_again(
    stack: Stack, namespace: str, nats_node: nats_cluster.Cluster
) -> None:
    label = secrets.token_hex(4)
    kube = await client.connect(str(stack.kubeconfig))
    async with bus_on(nats_node, service="watcher", stream_max_bytes=MAX_BYTES, stream_duplicate_window_s=1.0) as bus:
        try:
            sink = publisher.Publisher(bus)
            type_sync = sync.TypeSync(
                kube,
                resources.MODEL,
                sink,
                options=sync.Options(label_selector=f"fault-test={label}", resync_s=20),
                stored=lambda: known.stored(bus, resources.MODEL),
            )
            early = [f"early-{i}" for i in range(16)]
            late = [f"late-{i}" for i in range(32)]
            kept = [f"kept-{i}" for i in range(8)]  # newest: never dropped, so never stored again
            for name in early:
                await kube.apply(_model(namespace, name, label), MANAGER)
            async with running(type_sync):
                for name in late:
                    await kube.apply(_model(namespace, name, label), MANAGER)
                await until(lambda: sink.published >= len(early) + len(late), "every Model published")
                for name in late:
                    await kube.delete(resources.MODEL, namespace, name)
                await until(lambda: sink.published >= len(early) + 2 * len(late), "every deletion published")
                for name in kept:
                    await kube.apply(_model(namespace, name, label), MANAGER)
                await until(lambda: sink.published >= len(early) + 2 * len(late) + len(kept), "the kept Models")

                # The limit held: the oldest messages (the early Models) went, nothing was refused.
                info = await bus.js.stream_info(streams.CHANGES)
                assert info.config.max_bytes == MAX_BYTES
                assert info.state.bytes <= MAX_BYTES
                stored = await last_versions(bus, subjects.change_filter("models", namespace))
                dropped = [n for n in early if subjects.change("models", namespace, n) not in stored]
                assert dropped, "the stream never reached its limit: the test proves nothing"
                assert type_sync.relists == 1, "a resync ran before the drop was observed; raise resync_s"
                before = sink.published

                # The resync compares the live Models with the stream and stores what is missing.
                await until(lambda: type_sync.relists >= 2, "the resync", limit_s=40)
                stored = await last_versions(bus, subjects.change_filter("models", namespace))
                for name in (*early, *kept):
                    live = await kube.get(resources.MODEL, namespace, name)
                    assert live is not None
                    subject = subjects.change("models", namespace, name)
                    assert stored.get(subject) == (
                        envelope.change_type("Model", False),
                        live["metadata"]["resourceVersion"],
                    ), f"{name} was not repaired by the resync"
                # Only what was dropped was stored again (the others were already there).
                assert sink.published - before == len(dropped)
                for name in late:
                    kind, _ = stored.get(subjects.change("models", namespace, name), ("absent", ""))
                    assert kind in ("absent", envelope.change_type("Model", True)), f"{name} came back"
        finally:
            await kube.close()
