"""A service's ``/readyz`` and ``substratus_bus_connected`` follow its NATS connection, on a real
nats-server of the test's own that is stopped and started again (check 5, docs/reliability.md);
the durable consumer NATS lost with its store is created again by the keyed consumer."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence

import httpx

from substratus_common import config
from substratus_common.bus import connection
from substratus_common.events import envelope, streams, subjects
from substratus_common.runtime import consumer, service
from substratus_common.runtime.health import HealthServer
from substratus_local import nats_cluster
from substratus_local import testing_burst as burst
from substratus_local.testing_nats import nats_node, until

__all__ = ["nats_node"]  # the fixture, imported for this module's tests

HOST = "127.0.0.1"


def _metric(text: str, name: str) -> float | None:
    return burst.metric_in(text, name, default=None)


async def test_readyz_and_the_metric_say_nats_is_away_until_it_is_back(nats_node: nats_cluster.Cluster) -> None:
    ctx = service.Context(settings=config.Settings(service="test", nats_url=nats_node.url))
    ctx.health = HealthServer(HOST, 0, ctx.metrics.registry)
    port = await ctx.health.start()
    bus = await connection.connect(ctx.settings)
    ctx.watch_bus(bus)
    base = f"http://{HOST}:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            assert (await http.get("/readyz")).status_code == 200
            assert _metric((await http.get("/metrics")).text, "substratus_bus_connected") == 1

            nats_node.stop()  # a graceful stop: the server says goodbye, the client reconnects
            await until(lambda: not bus.link.connected, "the client noticing NATS is gone", 30)
            answer = await http.get("/readyz")
            assert answer.status_code == 503
            assert "nats (disconnected from NATS for" in answer.text, answer.text
            text = (await http.get("/metrics")).text
            assert _metric(text, "substratus_bus_connected") == 0
            assert _metric(text, "substratus_bus_disconnects_total") == 1

            nats_node.restart("n1")
            await until(lambda: bus.link.connected, "the client reconnecting", 60)
            assert (await http.get("/readyz")).status_code == 200
            assert _metric((await http.get("/metrics")).text, "substratus_bus_connected") == 1
            stored = await bus.publish(
                subjects.change("models", "ns", "after"),
                envelope.make(
                    id="after/1", source=bus.source, type=envelope.change_type("Model", False), subject="x", data={}
                ),
            )
            assert stored, "publishing works again on the same connection"
    finally:
        await bus.close()
        await ctx.health.stop()


async def test_a_consumer_lost_with_the_nats_store_is_created_again(nats_node: nats_cluster.Cluster) -> None:
    """NATS comes back with an empty store (a lost volume): the service's own streams are provisioned
    again by a fresh connect, and the keyed consumer binds its durable again instead of idling."""
    settings = config.Settings(service="test", nats_url=nats_node.url, retry_backoff_s=(0.2, 0.5, 1.0))
    bus = await connection.connect(settings)
    seen: list[str] = []
    got = asyncio.Event()

    async def handle(key: subjects.ResourceKey, deliveries: Sequence[consumer.Delivery]) -> None:
        seen.extend(d.event.id for d in deliveries)
        got.set()

    options = consumer.options(
        settings, stream=streams.CHANGES, durable="lost", filter_subjects=[f"{subjects.PREFIX}.>"]
    )
    runner = consumer.KeyedConsumer(bus, "test", options, handle)
    stop = asyncio.Event()
    running = asyncio.create_task(runner.run(stop, grace_s=2))
    try:
        await until(lambda: runner.ready, "the consumer bound", 30)
        nats_node.kill("n1")
        shutil.rmtree(nats_node.root / "n1" / "store")  # the state is gone: streams and consumers
        nats_node.restart("n1")
        await until(lambda: bus.link.disconnects == 1 and bus.link.connected, "the client reconnecting", 60)
        await connection.ensure_streams(bus.js, settings)  # what the watcher does when it starts again
        subject = subjects.change("models", "ns", "m")
        event = envelope.make(
            id="m/2", source=bus.source, type=envelope.change_type("Model", False), subject="x", data={}
        )
        await bus.publish(subject, event)
        await asyncio.wait_for(got.wait(), 60)
        assert seen == ["m/2"]
        assert await bus.consumer_state(streams.CHANGES, "lost") is not None
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
        await bus.close()
