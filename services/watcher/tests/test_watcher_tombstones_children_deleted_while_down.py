"""A Job owned by a Model and deleted while the watcher is down gets a tombstone on the Model's
child subject when the watcher comes back, so the owner's service learns its Job is gone."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from substratus_common.api import labels
from substratus_common.bus import connection
from substratus_common.events import envelope, streams, subjects
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, stream_messages


async def _events(bus: connection.Bus, subject: str, count: int, limit_s: float = 30) -> list[envelope.CloudEvent]:
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        msgs = await stream_messages(bus, streams.CHANGES, subject)
        if len(msgs) >= count:
            return [envelope.decode(m.data) for m in msgs]
        assert asyncio.get_running_loop().time() < deadline, f"{len(msgs)} events on {subject}, wanted {count}"
        await asyncio.sleep(0.1)


async def test_a_child_deleted_while_down_is_tombstoned_on_the_child_subject(
    stack: Stack, namespace: str, bus: connection.Bus, run_service: Callable[..., ServiceProcess]
) -> None:
    child_labels = labels.for_child("models", "m", "modeller")
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "m-modeller", "namespace": namespace, "labels": child_labels},
        "spec": {
            "suspend": True,  # no Pods: only the Job's own events matter here
            "template": {
                "metadata": {"labels": child_labels},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "modeller", "image": "busybox"}]},
            },
        },
    }
    watcher = run_service("watcher")
    stack.kubectl("apply", "-f", "-", input=json.dumps(job))
    subject = subjects.child_change("models", namespace, "m", "Job", "m-modeller")
    await _events(bus, subject, 1)

    watcher.stop()
    stack.kubectl("delete", "job", "m-modeller", "-n", namespace)
    watcher.start()
    events = await _events(bus, subject, 2)
    assert events[-1].type == "ai.substratus.job.deleted.v1"
    assert events[-1].subject == f"models/{namespace}/m/jobs/m-modeller"
