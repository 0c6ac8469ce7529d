"""A foreign or malformed event on a change subject (no metadata, no uid) does not stop the watcher
from starting: it is skipped when the known state is read back, and nothing nameless is published."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from substratus_common.bus import connection
from substratus_common.events import envelope, streams, subjects
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, stream_messages

MODEL = """
apiVersion: substratus.ai/v1
kind: Model
metadata: {{name: real, namespace: {ns}}}
spec: {{image: substratusai/model-loader-huggingface}}
"""


async def test_an_event_without_metadata_is_skipped_at_start(
    stack: Stack, namespace: str, bus: connection.Bus, run_service: Callable[..., ServiceProcess]
) -> None:
    foreign = envelope.make(
        id=f"foreign-{namespace}",
        source="someone",
        type="ai.substratus.model.changed.v1",
        subject=f"models/{namespace}/ghost",
        data={},
    )
    await bus.publish(subjects.change("models", namespace, "ghost"), foreign)
    await bus.publish_raw(subjects.change("models", namespace, "junk"), b"\xffnot json", f"junk-{namespace}")

    watcher = run_service("watcher")
    stack.kubectl("apply", "-f", "-", input=MODEL.format(ns=namespace))
    subject = subjects.change("models", namespace, "real")
    deadline = asyncio.get_running_loop().time() + 30
    while not await stream_messages(bus, streams.CHANGES, subject):
        assert asyncio.get_running_loop().time() < deadline, "the watcher published nothing for the real Model"
        await asyncio.sleep(0.1)
    assert watcher.ready(), "the watcher stays up and ready"
    ghosts = await stream_messages(bus, streams.CHANGES, subjects.change("models", namespace, "ghost"))
    assert [envelope.decode(m.data).source for m in ghosts] == ["someone"], "no tombstone for what it never saw"
