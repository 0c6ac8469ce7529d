"""Check 14: two watchers running at once (a rollout's overlap, a stuck replica) store every
change once: every Model's current version is in the stream, no ``Nats-Msg-Id`` twice, and a
deletion gets one tombstone."""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Callable

from substratus_common.bus import connection
from substratus_common.events import envelope, payloads, streams, subjects
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, stream_messages

COUNT = 100


def _models(namespace: str, names: list[str], image: str) -> str:
    items = [
        {
            "apiVersion": "substratus.ai/v1",
            "kind": "Model",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"image": image},
        }
        for name in names
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


async def _wait_current(bus: connection.Bus, stack: Stack, namespace: str, gone: set[str]) -> None:
    listed = json.loads(stack.kubectl("get", "models", "-n", namespace, "-o", "json").stdout)["items"]
    wanted = {m["metadata"]["name"]: m["metadata"]["resourceVersion"] for m in listed}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    while True:
        msgs = await stream_messages(bus, streams.CHANGES, subjects.change_filter("models", namespace), True)
        latest = {subjects.parse(m.subject).name: envelope.decode(m.data) for m in msgs}
        behind = [
            n
            for n, rv in wanted.items()
            if n not in latest or payloads.change_object(latest[n])["metadata"]["resourceVersion"] != rv
        ]
        alive = [n for n in gone if n not in latest or not envelope.is_deleted(latest[n].type)]
        if not behind and not alive:
            return
        assert loop.time() < deadline, f"behind: {behind[:5]}; not tombstoned: {alive}"
        await asyncio.sleep(0.2)


async def test_two_watchers_store_each_change_once(
    stack: Stack, namespace: str, bus: connection.Bus, run_service: Callable[..., ServiceProcess]
) -> None:
    run_service("watcher")
    run_service("watcher")
    names = [f"m-{i:03d}" for i in range(COUNT)]
    stack.kubectl("apply", "-f", "-", input=_models(namespace, names, "substratusai/model-loader-huggingface"))
    stack.kubectl("apply", "-f", "-", input=_models(namespace, names[:20], "substratusai/other"))
    await _wait_current(bus, stack, namespace, set())
    stack.kubectl("delete", "models", "-n", namespace, *names[20:25])
    await _wait_current(bus, stack, namespace, set(names[20:25]))

    everything = await stream_messages(bus, streams.CHANGES, subjects.change_filter("models", namespace))
    ids = collections.Counter(m.headers.get("Nats-Msg-Id") if m.headers else None for m in everything)
    assert None not in ids
    twice = [msg_id for msg_id, n in ids.items() if n > 1]
    assert not twice, f"Nats-Msg-Ids stored more than once: {twice[:5]}"
    tombstones = [m for m in everything if envelope.is_deleted(envelope.decode(m.data).type)]
    assert len(tombstones) == 5
