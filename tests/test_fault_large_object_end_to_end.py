"""Check 22: a Model of about 1.4 MB (large params) goes end to end: the watcher stores its change
cut to its identity (no message on the bus over its limit), the trainer reads the object from the
API server, and the Model gets a readable condition, with at most one Job."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from substratus_common.bus import connection
from substratus_common.events import envelope, streams, subjects
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, stream_messages

SIZE = 1_400_000


def _conditions(stack: Stack, namespace: str) -> list[dict[str, Any]]:
    jsonpath = "jsonpath={.status.conditions}"
    out = stack.kubectl("get", "model", "big", "-n", namespace, "-o", jsonpath).stdout
    conditions: list[dict[str, Any]] = json.loads(out) if out.strip() else []
    return conditions


async def test_a_model_of_1_4_mb_goes_end_to_end(
    stack: Stack, namespace: str, bus: connection.Bus, run_service: Callable[..., ServiceProcess]
) -> None:
    for service in ("watcher", "status-writer", "trainer"):
        run_service(service)
    model = {
        "apiVersion": "substratus.ai/v1",
        "kind": "Model",
        "metadata": {"name": "big", "namespace": namespace},
        "spec": {"image": "substratusai/model-loader-huggingface", "params": {"blob": "x" * SIZE}},
    }
    stack.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(model))
    subject = subjects.change("models", namespace, "big")
    loop = asyncio.get_running_loop()

    deadline = loop.time() + 30
    while not (msgs := await stream_messages(bus, streams.CHANGES, subject)):
        assert loop.time() < deadline, "no change event for the 1.4 MB Model"
        await asyncio.sleep(0.2)
    event = envelope.decode(msgs[-1].data)
    assert event.substratustruncated is True
    assert len(msgs[-1].data) < 64 * 1024

    # Either it runs (one Job) or it is refused with a condition that says why (its params
    # ConfigMap would pass the API server's 1 MiB object limit).
    deadline = loop.time() + 90
    while True:
        conditions = _conditions(stack, namespace)
        told = [c for c in conditions if c.get("reason") in ("JobNotComplete", "JobComplete", "Invalid")]
        if told:
            break
        assert loop.time() < deadline, f"the 1.4 MB Model has no readable condition: {conditions}"
        await asyncio.sleep(1.0)
    assert told[0].get("message")
    jobs = json.loads(stack.kubectl("get", "jobs", "-n", namespace, "-o", "json").stdout)["items"]
    assert len(jobs) == (0 if told[0]["reason"] == "Invalid" else 1)
