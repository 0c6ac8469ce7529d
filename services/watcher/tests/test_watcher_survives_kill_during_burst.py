"""A burst of 200 Models with the watcher killed (`kill -9`) halfway and restarted: every Model's
latest version is in the stream, no ``Nats-Msg-Id`` is stored twice, and a Model deleted while the
watcher was down gets a tombstone."""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Callable

from substratus_common.bus import connection
from substratus_common.events import envelope, payloads, streams, subjects
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, stream_messages

COUNT = 200


def _models(namespace: str, names: list[str], image: str = "substratusai/model-loader-huggingface") -> str:
    items = [
        {
            "apiVersion": "substratus.ai/v1",
            "kind": "Model",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"image": image, "params": {"name": name}},
        }
        for name in names
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def _current_versions(stack: Stack, namespace: str) -> dict[str, str]:
    listed = json.loads(stack.kubectl("get", "models", "-n", namespace, "-o", "json").stdout)
    return {m["metadata"]["name"]: m["metadata"]["resourceVersion"] for m in listed["items"]}


async def _latest_stored(bus: connection.Bus, namespace: str) -> dict[str, envelope.CloudEvent]:
    msgs = await stream_messages(bus, streams.CHANGES, subjects.change_filter("models", namespace), True)
    latest = {}
    for msg in msgs:
        parsed = subjects.parse(msg.subject)
        if parsed.child_kind is None:
            latest[parsed.name] = envelope.decode(msg.data)
    return latest


async def _wait_until_stored(
    bus: connection.Bus, namespace: str, wanted: dict[str, str], deleted: set[str], limit_s: float = 90
) -> dict[str, envelope.CloudEvent]:
    """Bounded wait until the stream's last event per Model is its current version (or a tombstone)."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        latest = await _latest_stored(bus, namespace)
        behind = [
            name
            for name, rv in wanted.items()
            if name not in latest or payloads.change_object(latest[name])["metadata"]["resourceVersion"] != rv
        ]
        not_tombstoned = [n for n in deleted if n not in latest or not envelope.is_deleted(latest[n].type)]
        if not behind and not not_tombstoned:
            return latest
        assert asyncio.get_running_loop().time() < deadline, (
            f"{len(behind)} Models behind in the stream (e.g. {behind[:5]}); not tombstoned: {not_tombstoned}"
        )
        await asyncio.sleep(0.2)


async def test_burst_with_kill_9_halfway_loses_nothing_and_stores_nothing_twice(
    stack: Stack, namespace: str, bus: connection.Bus, run_service: Callable[..., ServiceProcess]
) -> None:
    watcher = run_service("watcher")
    names = [f"m-{i:03d}" for i in range(COUNT)]
    first, second = names[: COUNT // 2], names[COUNT // 2 :]

    deleted = set(first[10:15])
    stack.kubectl("apply", "-f", "-", input=_models(namespace, first))
    # Kill mid-burst, once the Models we will delete are known to the stream (so they need tombstones):
    # whatever was not published yet is only in the API server now.
    created = _current_versions(stack, namespace)
    await _wait_until_stored(bus, namespace, {n: created[n] for n in deleted}, set())
    watcher.kill()
    stack.kubectl("apply", "-f", "-", input=_models(namespace, second))
    stack.kubectl("apply", "-f", "-", input=_models(namespace, first[:10], image="substratusai/other"))
    stack.kubectl("delete", "models", "-n", namespace, *sorted(deleted))

    watcher.start()
    wanted = _current_versions(stack, namespace)
    assert len(wanted) == COUNT - len(deleted)
    latest = await _wait_until_stored(bus, namespace, wanted, deleted)
    assert payloads.change_object(latest[first[0]])["spec"]["image"] == "substratusai/other"

    everything = await stream_messages(bus, streams.CHANGES, subjects.change_filter("models", namespace))
    ids = collections.Counter(m.headers.get("Nats-Msg-Id") if m.headers else None for m in everything)
    assert None not in ids
    twice = [msg_id for msg_id, n in ids.items() if n > 1]
    assert not twice, f"Nats-Msg-Ids stored more than once: {twice[:5]}"
