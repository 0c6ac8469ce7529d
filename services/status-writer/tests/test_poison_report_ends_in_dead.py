"""A report the status writer cannot read ends in SUBSTRATUS_DEAD instead of a redelivery loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from substratus_common.bus import connection
from substratus_common.events import envelope, payloads, streams, subjects
from substratus_local import stack as stack_mod
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, stream_messages


async def _dead_letters(bus: connection.Bus, namespace: str, limit_s: float = 30) -> list[payloads.DeadLetter]:
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        msgs = await stream_messages(bus, streams.DEAD, f"substratus.dead.status-writer.models.{namespace}.>")
        if len(msgs) >= 2:
            return [payloads.decode_data(envelope.decode(m.data), payloads.DeadLetter) for m in msgs]
        assert asyncio.get_running_loop().time() < deadline, f"{len(msgs)} dead letters, wanted 2"
        await asyncio.sleep(0.1)


async def test_undecodable_and_unknown_type_reports_are_dead_lettered_once(
    stack: Stack, namespace: str, bus: connection.Bus, run_service: Callable[..., ServiceProcess]
) -> None:
    writer = run_service("status-writer")
    await bus.publish_raw(subjects.status("models", namespace, "garbage", "trainer"), b"\x00not json", "poison-1")
    unknown = envelope.make(
        id="poison-2", source="test", type="ai.substratus.unknown.v1", subject=f"models/{namespace}/odd", data={}
    )
    await bus.publish(subjects.status("models", namespace, "odd", "trainer"), unknown)

    letters = await _dead_letters(bus, namespace)
    assert sorted(letter.reason for letter in letters) == ["undecodable", "unknown-type"]
    assert all(letter.deliveries == 1 for letter in letters), "dead-lettered at the first delivery, no loop"

    # The metric an alert watches (docs/reliability.md): one per reason, counted once.
    async with httpx.AsyncClient(timeout=5) as http:
        metrics = (await http.get(f"http://{stack_mod.HOST}:{writer.port}/metrics")).text
    for reason in ("undecodable", "unknown-type"):
        assert f'substratus_messages_dead_lettered_total{{reason="{reason}"}} 1.0' in metrics, metrics
