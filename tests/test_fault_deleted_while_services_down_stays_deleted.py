"""Check 16 (and 17): a Model deleted while every service is down stays deleted: once the services
are back and the trainer has handled everything in its consumer, neither the Model nor its Job or
params ConfigMap exists again (the Job went with its owner, by Kubernetes garbage collection)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from substratus_common.bus import connection
from substratus_common.events import streams
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess

MODEL = {
    "apiVersion": "substratus.ai/v1",
    "kind": "Model",
    "metadata": {"name": "gone"},
    "spec": {"image": "substratusai/model-loader-huggingface", "params": {"name": "org/gone"}},
}


def _names(stack: Stack, namespace: str, kind: str) -> set[str]:
    items = json.loads(stack.kubectl("get", kind, "-n", namespace, "-o", "json").stdout)["items"]
    return {str(i["metadata"]["name"]) for i in items}


async def _until(check: Callable[[], bool], what: str, limit_s: float = 90) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not check():
        assert loop.time() < deadline, f"{what} did not happen within {limit_s:.0f}s"
        await asyncio.sleep(0.5)


async def test_a_model_deleted_while_the_services_are_down_is_not_resurrected(
    stack: Stack, namespace: str, bus: connection.Bus, run_service: Callable[..., ServiceProcess]
) -> None:
    services = [run_service(name) for name in ("watcher", "status-writer", "trainer")]
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(MODEL))
    await _until(lambda: "gone-modeller" in _names(stack, namespace, "jobs"), "the Model's Job")
    for service in services:
        assert service.stop() == 0
    stack.kubectl("delete", "model", "gone", "-n", namespace, "--wait=true")
    await _until(lambda: not _names(stack, namespace, "jobs"), "garbage collection of the Job")

    for service in services:
        service.start()
    # Condition, not a sleep: the trainer has handled everything the watcher stored, tombstone included.
    watcher_done = await bus.last_sequence(streams.CHANGES)

    async def trainer_caught_up() -> bool:
        state = await bus.consumer_state(streams.CHANGES, "trainer")
        return state is not None and state.num_pending == 0 and state.num_ack_pending == 0

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    while not (await trainer_caught_up() and await bus.last_sequence(streams.CHANGES) >= watcher_done):
        assert loop.time() < deadline, "the trainer did not catch up within 90s"
        await asyncio.sleep(0.5)
    assert "gone" not in _names(stack, namespace, "models")
    assert not _names(stack, namespace, "jobs"), "a Job came back for a deleted Model"
    assert "gone-model-params" not in _names(stack, namespace, "configmaps")
