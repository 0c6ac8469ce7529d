"""Several reports queued for one resource become one apply per reporting service: the newest
one's conditions land, and the status writer's metrics count the others as superseded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from substratus_common.bus import connection
from substratus_common.events import streams
from substratus_local.stack import HOST, Stack
from substratus_local.testing import ServiceProcess, eventually

from .writer_harness import apply_model, condition, get, publish


async def _settled(bus: connection.Bus, limit_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        state = await bus.consumer_state(streams.STATUS, "status-writer")
        if state is None or (not state.num_pending and not state.num_ack_pending):
            return
        assert asyncio.get_running_loop().time() < deadline, f"status-writer consumer not settled: {state}"
        await asyncio.sleep(0.1)


def _reports(process: ServiceProcess) -> dict[str, float]:
    text = httpx.get(f"http://{HOST}:{process.port}/metrics", timeout=5).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("substratus_status_reports_total{"):
            labels, value = line.split(" ")
            found[labels.split('outcome="')[1].split('"')[0]] = float(value)
    return found


async def test_five_queued_reports_from_one_service_are_one_apply(
    stack: Stack, namespace: str, bus: connection.Bus, run_service: Callable[..., ServiceProcess]
) -> None:
    # Reports left by earlier tests are handled first, so what the next writer finds queued is ours.
    drain = run_service("status-writer")
    await _settled(bus)
    drain.stop()
    model = apply_model(stack, namespace, "opt")
    for step in range(1, 6):
        await publish(bus, model, "trainer", ("Complete", "False", "JobNotComplete", f"step {step} of 5"))
    await publish(bus, model, "builder", ("Built", "True", "JobComplete", "image built"))

    writer = run_service("status-writer")
    await _settled(bus)
    obj = get(stack, namespace, "opt")
    assert condition(obj, "Complete")["message"] == "step 5 of 5"
    assert condition(obj, "Built")["reason"] == "JobComplete"
    counted = eventually(lambda: _reports(writer) or None, 10, "the status writer's metrics")
    assert counted is not None
    assert counted.get("superseded") == 4, counted
    assert counted.get("applied") == 2, counted
