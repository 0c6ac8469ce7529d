"""The async Kubernetes client against a real API server: apply, status, list, watch, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from substratus_common.kube import client, errors, resources
from substratus_local.stack import Stack


@pytest.fixture
async def kube(stack: Stack) -> AsyncIterator[client.Kube]:
    kube = await client.connect(str(stack.kubeconfig))
    yield kube
    await kube.close()


def _configmap(namespace: str, name: str, data: dict[str, str]) -> client.Object:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


async def test_apply_is_idempotent_and_owned_by_the_field_manager(kube: client.Kube, namespace: str) -> None:
    first = await kube.apply(_configmap(namespace, "params", {"a": "1"}), "substratus-test")
    again = await kube.apply(_configmap(namespace, "params", {"a": "1"}), "substratus-test")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    managers = {m["manager"] for m in again["metadata"]["managedFields"]}
    assert managers == {"substratus-test"}
    fetched = await kube.get(resources.CONFIGMAP, namespace, "params")
    assert fetched is not None
    assert fetched["data"] == {"a": "1"}


async def test_apply_child_says_whether_this_apply_created_the_object(kube: client.Kube, namespace: str) -> None:
    """Two replicas applying one child at once: only the apply that created it says so."""
    first, second = await asyncio.gather(
        kube.apply_child(_configmap(namespace, "raced", {"a": "1"}), "substratus-test"),
        kube.apply_child(_configmap(namespace, "raced", {"a": "1"}), "substratus-test"),
    )
    assert sorted([first[1], second[1]]) == [False, True]
    assert first[0]["metadata"]["uid"] == second[0]["metadata"]["uid"]
    _, again = await kube.apply_child(_configmap(namespace, "raced", {"a": "2"}), "substratus-test")
    assert again is False


async def test_get_of_a_missing_object_is_none_and_delete_reports_it(kube: client.Kube, namespace: str) -> None:
    assert await kube.get(resources.CONFIGMAP, namespace, "nope") is None
    assert await kube.delete(resources.CONFIGMAP, namespace, "nope") is False


async def test_invalid_object_is_a_permanent_error_naming_the_field(kube: client.Kube, namespace: str) -> None:
    bad = _configmap(namespace, "Not_A_Valid_Name", {})
    with pytest.raises(errors.Invalid) as raised:
        await kube.apply(bad, "substratus-test")
    assert not raised.value.retryable
    assert "metadata.name" in raised.value.message


async def test_list_pages_and_watch_sees_changes_from_its_version(kube: client.Kube, namespace: str) -> None:
    for i in range(5):
        await kube.apply(_configmap(namespace, f"cm-{i}", {"i": str(i)}), "substratus-test")
    listed = await kube.list(resources.CONFIGMAP, namespace, limit=2)
    names = sorted(item["metadata"]["name"] for item in listed.items)
    assert [n for n in names if n.startswith("cm-")] == [f"cm-{i}" for i in range(5)]
    assert all(item["kind"] == "ConfigMap" for item in listed.items)

    seen: list[tuple[str, str]] = []

    async def collect() -> None:
        async for event in kube.watch(resources.CONFIGMAP, namespace, resource_version=listed.resource_version):
            if event.type != "BOOKMARK":
                seen.append((event.type, event.object["metadata"]["name"]))
            if ("DELETED", "cm-0") in seen:
                return

    watcher = asyncio.create_task(collect())
    await kube.apply(_configmap(namespace, "cm-5", {"i": "5"}), "substratus-test")
    await kube.apply(_configmap(namespace, "cm-1", {"i": "changed"}), "substratus-test")
    await kube.delete(resources.CONFIGMAP, namespace, "cm-0")
    await asyncio.wait_for(watcher, 30)
    assert seen == [("ADDED", "cm-5"), ("MODIFIED", "cm-1"), ("DELETED", "cm-0")]
