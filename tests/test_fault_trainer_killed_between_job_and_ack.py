"""Check 2 (docs/reliability.md): the trainer dies like ``kill -9`` after a pass created a Job
and before it acked the message (the ``before-ack`` failpoint), three times in a row. The
messages come back to the next trainer, which finds the Job and creates none: every Model ends
ready with one Job whose uid never changed. kwok simulates the Jobs' Pods."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from substratus_common import config
from substratus_common.bus import connection
from substratus_common.events import streams
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually

COUNT = 10
CRASHES = 3
MAX_CRASHES = 12


def _models() -> str:
    items = [
        {
            "apiVersion": "substratus.ai/v1",
            "kind": "Model",
            "metadata": {"name": f"k-{i:02d}"},
            "spec": {"image": "substratusai/model-loader-huggingface", "params": {"name": f"org/k-{i}"}},
        }
        for i in range(COUNT)
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def _drained(stack: Stack) -> bool:
    """Nothing pending or unacked on the trainer's durable consumer."""

    async def check() -> bool:
        bus = await connection.connect(config.Settings(service="test", nats_url=stack.nats_url), provision=False)
        try:
            state = await bus.consumer_state(streams.CHANGES, "trainer")
        finally:
            await bus.close()
        return state is None or (state.num_pending == 0 and state.num_ack_pending == 0)

    return asyncio.run(check())


def _items(stack: Stack, namespace: str, kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(stack.kubectl("get", kind, "-n", namespace, "-o", "json").stdout)["items"]
    return found


def test_a_trainer_killed_between_creating_a_job_and_acking_creates_no_second_job(
    stack: Stack, namespace: str, run_service: Callable[..., ServiceProcess]
) -> None:
    run_service("watcher")
    run_service("status-writer")
    # Events left on the shared durable consumer by earlier tests are handled first, so that the
    # passes the crashing trainers make are over this test's Models.
    draining = run_service("trainer")
    eventually(lambda: _drained(stack), 120, "the trainer's consumer drained")
    draining.stop()
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=_models())
    first_uid: dict[str, str] = {}

    def jobs_seen() -> int:
        for job in _items(stack, namespace, "jobs"):
            meta = job["metadata"]
            assert first_uid.setdefault(meta["name"], meta["uid"]) == meta["uid"], f"{meta['name']} re-created"
        return len(first_uid)

    env = {"SUBSTRATUS_FAILPOINTS": "before-ack", "SUBSTRATUS_ACK_WAIT_S": "3"}
    # Each trainer dies after its first successful pass, which may end before the passes that
    # create Jobs have written them: it goes on until crashed trainers have created Jobs, at least
    # CRASHES times.
    crashes = 0
    while crashes < CRASHES or jobs_seen() == 0:
        assert crashes < MAX_CRASHES, f"no Job created by {crashes} crashing trainers"
        crashing = run_service("trainer", env=env, wait_ready=False)
        proc = crashing.proc
        assert proc is not None
        eventually(lambda: proc.poll() is not None, 90, f"crash {crashes + 1}")  # noqa: B023 (used at once)
        assert proc.returncode == 137, crashing.logs()[-2000:]
        assert "failpoint hit" in crashing.logs()
        crashes += 1

    run_service("trainer", env={"SUBSTRATUS_ACK_WAIT_S": "3"})

    def converged() -> bool:
        models = _items(stack, namespace, "models")
        ready = [m for m in models if (m.get("status") or {}).get("ready") is True]
        assert len(ready) == COUNT, f"{len(ready)}/{COUNT} Models ready"
        assert jobs_seen() == COUNT
        owners = sorted(j["metadata"]["labels"]["substratus.ai/name"] for j in _items(stack, namespace, "jobs"))
        assert owners == sorted(m["metadata"]["name"] for m in models), "one Job per Model"
        return True

    eventually(converged, 180, "every Model ready with one Job")
