"""Check 2 (docs/reliability.md): the trainer dies like ``kill -9`` after a pass created a Job
and before it acked the message (the ``before-ack`` failpoint), three times in a row. The
messages come back to the next trainer, which finds the Job and creates none: every Model ends
ready with one Job whose uid never changed. kwok simulates the Jobs' Pods."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from substratus_common import config
from substratus_common.bus import connection
from substratus_common.events import streams
from substratus_local import testing_burst as burst
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually

COUNT = 10
CRASHES = 3
MAX_CRASHES = 12


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
    names = [f"k-{i:02d}" for i in range(COUNT)]
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=burst.models(names))
    jobs = burst.Jobs(stack, namespace)

    # Only a pass over this test's Models ends a trainer: the namespaces of earlier tests, still
    # being deleted, send the trainer passes of their own.
    env = {
        "SUBSTRATUS_FAILPOINTS": "before-ack",
        "SUBSTRATUS_FAILPOINT_NAMESPACE": namespace,
        "SUBSTRATUS_ACK_WAIT_S": "3",
    }
    # Each trainer dies after its first successful pass here, which may end before the passes that
    # create Jobs have written them: it goes on until crashed trainers have created Jobs, at least
    # CRASHES times.
    crashes = 0
    while crashes < CRASHES or jobs.seen() == 0:
        assert crashes < MAX_CRASHES, f"no Job created by {crashes} crashing trainers"
        crashing = run_service("trainer", env=env, wait_ready=False)
        proc = crashing.proc
        assert proc is not None
        eventually(lambda: proc.poll() is not None, 90, f"crash {crashes + 1}")  # noqa: B023 (used at once)
        assert proc.returncode == 137, crashing.logs()[-2000:]
        assert "failpoint hit" in crashing.logs()
        crashes += 1

    run_service("trainer", env={"SUBSTRATUS_ACK_WAIT_S": "3"})

    eventually(burst.converged(stack, namespace, names, jobs), 180, "every Model ready with one Job")
