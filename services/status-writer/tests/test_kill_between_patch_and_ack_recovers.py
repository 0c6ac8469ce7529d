"""The status writer dies after writing a status but before acking the report (like `kill -9`
at the worst moment): the report comes back, is applied again, and the status is correct."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats.js.errors

from substratus_common.bus import connection
from substratus_common.events import streams
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually

from .writer_harness import apply_model, condition, get, publish

FAST_REDELIVERY = {"SUBSTRATUS_ACK_WAIT_S": "2"}


async def _settled(bus: connection.Bus, limit_s: float = 30) -> None:
    """Nothing pending or unacked on the status writer's durable consumer (absent counts as settled)."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        try:
            info = await bus.js.consumer_info(streams.STATUS, "status-writer")
        except nats.js.errors.NotFoundError:
            return
        if not info.num_pending and not info.num_ack_pending:
            return
        assert asyncio.get_running_loop().time() < deadline, f"status-writer consumer not settled: {info}"
        await asyncio.sleep(0.1)


async def test_a_crash_before_the_ack_leaves_a_correct_status_after_redelivery(
    stack: Stack, namespace: str, bus: connection.Bus, run_service: Callable[..., ServiceProcess]
) -> None:
    # Reports left by earlier tests are drained first, so the first one the crashing writer handles is ours.
    drain = run_service("status-writer")
    await _settled(bus)
    drain.stop()
    crashing = run_service("status-writer", env={**FAST_REDELIVERY, "SUBSTRATUS_FAILPOINTS": "before-ack"})
    model = apply_model(stack, namespace, "opt")
    await publish(bus, model, "trainer", ("Complete", "True", "JobComplete", "the modeller Job completed"))

    assert crashing.proc is not None
    eventually(lambda: crashing.proc is not None and crashing.proc.poll() is not None, 30, "the crash before the ack")
    assert crashing.proc.returncode == 137
    written = get(stack, namespace, "opt")
    assert condition(written, "Complete")["reason"] == "JobComplete", "the write happened before the crash"

    run_service("status-writer", env=FAST_REDELIVERY)
    await _settled(bus)  # the unacked report was delivered again and acked this time
    obj = get(stack, namespace, "opt")
    assert obj["status"]["ready"] is True
    assert condition(obj, "Complete") == condition(written, "Complete")
