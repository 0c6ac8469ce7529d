"""The engine users grow into: a three-node JetStream cluster on loopback, the streams with three
replicas as the chart configures for production. ``kill -9`` of the change stream's leader in the
middle of a burst loses nothing: a new leader is elected, the watcher's bounded publish retries
carry it over, and every Model's current version is stored once the burst is over. With the
services running on the cluster, every Model of a burst ends ready with one Job (kwok simulates
the Jobs' Pods).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable

from substratus_common.events import streams, subjects
from substratus_common.kube import client, resources
from substratus_local import nats_cluster
from substratus_local import testing_burst as burst
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually
from substratus_local.testing_nats import bus_on, last_versions, nats_three, until
from substratus_watcher import known, publisher, sync

MANAGER = "substratus-test"
BURST = 200

__all__ = ["nats_three"]  # the fixture, imported for this module's tests


def _model(namespace: str, name: str, label: str) -> client.Object:
    return {
        "apiVersion": resources.MODEL.api_version,
        "kind": "Model",
        "metadata": {"name": name, "namespace": namespace, "labels": {"fault-test": label}},
        "spec": {"image": "substratusai/model-loader-huggingface"},
    }


@contextlib.asynccontextmanager
async def running(type_sync: sync.TypeSync) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(type_sync.run(stop))
    try:
        await asyncio.wait_for(type_sync.synced.wait(), 30)
        yield task
    finally:
        stop.set()
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_killing_the_stream_leader_mid_burst_loses_no_change(
    stack: Stack, namespace: str, nats_three: nats_cluster.Cluster
) -> None:
    label = secrets.token_hex(4)
    names = [f"m-{i}" for i in range(BURST)]
    kube = await client.connect(str(stack.kubeconfig))
    async with bus_on(nats_three, service="watcher", stream_replicas=3) as bus:
        try:
            info = await bus.js.stream_info(streams.CHANGES)
            assert info.config.num_replicas == 3
            assert info.cluster is not None
            assert info.cluster.leader
            leader = info.cluster.leader
            sink = publisher.Publisher(bus)
            type_sync = sync.TypeSync(
                kube,
                resources.MODEL,
                sink,
                options=sync.Options(label_selector=f"fault-test={label}", resync_s=600),
                stored=lambda: known.stored(bus, resources.MODEL),
            )
            async with running(type_sync) as task:
                for i, name in enumerate(names):
                    await kube.apply(_model(namespace, name, label), MANAGER)
                    if i == BURST // 2:
                        await until(lambda: sink.published >= BURST // 4, "a quarter of the burst stored")
                        nats_three.kill(leader)
                await until(lambda: sink.published >= BURST or task.done(), "the whole burst stored", 120)
                assert not task.done(), f"the watcher's sync stopped: {task.exception() if task.done() else ''}"

            info = await bus.js.stream_info(streams.CHANGES)
            assert info.cluster is not None
            assert info.cluster.leader not in (None, leader), "no new leader"
            stored = await last_versions(bus, subjects.change_filter("models", namespace))
            listed = await kube.list(resources.MODEL, namespace, label_selector=f"fault-test={label}")
            assert len(listed.items) == BURST
            for obj in listed.items:
                subject = subjects.change("models", namespace, obj["metadata"]["name"])
                assert subject in stored, f"{obj['metadata']['name']} was lost with the leader"
                assert stored[subject][1] == obj["metadata"]["resourceVersion"]

            # The killed node comes back and catches up: three current replicas again.
            nats_three.restart(leader)

            async def replicas_current() -> bool:
                state = await bus.js.stream_info(streams.CHANGES)
                peers = state.cluster.replicas if state.cluster and state.cluster.replicas else []
                return len(peers) == 2 and all(p.current for p in peers)

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while not await replicas_current():
                assert loop.time() < deadline, "the restarted node did not catch up within 60s"
                await asyncio.sleep(0.2)
        finally:
            await kube.close()


def _leader(cluster: nats_cluster.Cluster, stream: str) -> str:
    async def ask() -> str:
        async with bus_on(cluster, service="test", stream_replicas=3) as bus:
            info = await bus.js.stream_info(stream)
            assert info.cluster is not None
            assert info.cluster.leader
            return str(info.cluster.leader)

    return asyncio.run(ask())


def test_services_on_the_cluster_converge_when_the_stream_leader_is_killed_mid_burst(
    stack: Stack, namespace: str, nats_three: nats_cluster.Cluster, run_service: Callable[..., ServiceProcess]
) -> None:
    env = {"NATS_URL": nats_three.url, "SUBSTRATUS_STREAM_REPLICAS": "3", "SUBSTRATUS_ACK_WAIT_S": "10"}
    services = [run_service(name, env=env) for name in ("watcher", "status-writer", "trainer")]
    leader = _leader(nats_three, streams.CHANGES)
    names = [f"n-{i:03d}" for i in range(100)]
    applying = burst.Applying(stack, namespace, burst.models(names))
    jobs = burst.Jobs(stack, namespace)
    eventually(lambda: jobs.seen() >= 10, 120, "the burst under way")
    nats_three.kill(leader)
    applying.finish()

    converged = burst.converged(stack, namespace, names, jobs)
    eventually(converged, 300, "every Model ready on the cluster after the leader was killed")
    assert _leader(nats_three, streams.CHANGES) != leader, "a new leader was elected"
    for proc in services:
        assert proc.ready(), f"{proc.service} not ready"
    nats_three.restart(leader)
