"""pytest helpers for fault tests that need NATS servers of their own (see ``nats_cluster``).

A test module takes what it needs with ``from substratus_local.testing_nats import ...``; the
fixtures here start real ``nats-server`` processes under the test's tmp_path and stop them after.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from substratus_common import config
from substratus_common.bus import connection
from substratus_common.events import envelope, payloads, streams
from substratus_local import nats_cluster


@pytest.fixture
def nats_node(tmp_path: Path) -> Iterator[nats_cluster.Cluster]:
    """One JetStream server of the test's own (its streams' limits are the test's to choose)."""
    with nats_cluster.running(tmp_path / "nats", size=1) as cluster:
        yield cluster


@pytest.fixture
def nats_three(tmp_path: Path) -> Iterator[nats_cluster.Cluster]:
    """A three-node JetStream cluster on loopback, as the chart runs NATS in production."""
    with nats_cluster.running(tmp_path / "nats", size=3) as cluster:
        yield cluster


@contextlib.asynccontextmanager
async def bus_on(cluster: nats_cluster.Cluster, **settings: Any) -> AsyncIterator[connection.Bus]:
    """A bus connected to ``cluster`` that provisions the streams with ``settings``."""
    bus = await connection.connect(config.Settings(nats_url=cluster.url, **settings))
    try:
        yield bus
    finally:
        await bus.close()


async def last_versions(bus: connection.Bus, filter_subject: str) -> dict[str, tuple[str, str]]:
    """subject → (event type, resourceVersion) of the last change message stored on it."""
    found: dict[str, tuple[str, str]] = {}
    async for msg in bus.last_per_subject(streams.CHANGES, filter_subject):
        event = envelope.decode(msg.data)
        obj = payloads.change_object(event)
        found[msg.subject] = (event.type, str(obj["metadata"]["resourceVersion"]))
    return found


async def until(predicate: Callable[[], bool], what: str, limit_s: float = 60) -> None:
    """Poll a condition (bounded); fails the test naming it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"{what} did not happen within {limit_s:.0f}s")
        await asyncio.sleep(0.05)
