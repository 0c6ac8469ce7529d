"""The local view loads when a kind it follows has no event stored while others have (the filter
that matches nothing must not keep a service from starting: a builder following Servers and
Notebooks on a bus that so far carried only Models), and it says loaded only once every kind's
stored events are in it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from substratus_common import config
from substratus_common.bus import connection
from substratus_common.events import envelope, subjects
from substratus_common.runtime import view
from substratus_local.stack import Stack


@pytest.fixture
async def bus(stack: Stack) -> AsyncIterator[connection.Bus]:
    bus = await connection.connect(config.Settings(service="test", nats_url=stack.nats_url))
    yield bus
    await bus.close()


async def _publish(bus: connection.Bus, kind: str, plural: str, namespace: str, name: str) -> None:
    uid = secrets.token_hex(8)
    meta = {"name": name, "namespace": namespace, "uid": uid}
    obj = {"apiVersion": "substratus.ai/v1", "kind": kind, "metadata": meta}
    event = envelope.make(
        id=f"{uid}/1",
        source="test",
        type=f"ai.substratus.{kind.lower()}.changed.v1",
        subject=f"{plural}/{namespace}/{name}",
        data=obj,
    )
    assert await bus.publish(subjects.change(plural, namespace, name), event)


async def test_view_loads_a_kind_without_events(bus: connection.Bus) -> None:
    ns = "v-" + secrets.token_hex(4)
    # A few events, so the stream's position is past its first message.
    for name in ("m", "n", "o"):
        await _publish(bus, "Model", "models", ns, name)
    await _publish(bus, "Dataset", "datasets", ns, "d")

    never = "kind" + secrets.token_hex(4)  # a plural nothing was ever published for
    local = view.View([never, "models", "datasets"])
    try:
        await local.follow(bus, load_timeout_s=10)
        assert local.get("models", ns, "o") is not None
        assert local.get("datasets", ns, "d") is not None
    finally:
        await local.close()
