"""The uploader's answers to ``spec.build.upload``, with a directory as storage and in-memory API and bus.

The fake API applies each report the way the status writer does for the fields the uploader owns
(``status.buildUpload`` replaced, the ``Uploaded`` condition at the report's generation).
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest

from substratus_common import config, errors
from substratus_common.api import artifacts
from substratus_common.bus import connection
from substratus_common.events import envelope, payloads
from substratus_common.events.subjects import ResourceKey
from substratus_common.kube import client
from substratus_common.kube.resources import ResourceType
from substratus_common.metrics import RuntimeMetrics
from substratus_common.runtime import reconciler, view
from substratus_common.storage import base, local
from substratus_common.storage import errors as storage_errors
from substratus_uploader import decide
from substratus_uploader import uploader as uploading  # World.uploader shadows the module name

NS, NAME = "ns1", "m1"
BODY = b"a reproducible tarball"
MD5 = hashlib.md5(BODY).hexdigest()
KEY = ResourceKey("models", NS, NAME)


@dataclass
class FakeKube:
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        obj = self.objects.get((rt.plural, str(namespace), name))
        return copy.deepcopy(obj) if obj is not None else None


@dataclass
class FakeBus:
    kube: FakeKube
    source: str = "substratus/uploader"
    reports: list[payloads.StatusReport] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def publish(self, subject: str, event: envelope.CloudEvent) -> bool:
        made = msgspec.json.decode(event.data, type=payloads.StatusReport)
        self.reports.append(made)
        obj = self.kube.objects[(subject.split(".")[2], made.namespace, made.name)]
        status = obj.setdefault("status", {})
        status.pop("buildUpload", None)
        if made.build_upload is not None:
            status["buildUpload"] = dict(made.build_upload)
        conditions = [c for c in status.get("conditions", []) if c["type"] != decide.UPLOADED]
        for c in made.conditions:
            conditions.append(
                {
                    "type": c.type,
                    "status": c.status,
                    "reason": c.reason,
                    "message": c.message,
                    "observedGeneration": made.generation,
                }
            )
        status["conditions"] = conditions
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
        self.changed.set()
        return True


@dataclass
class World:
    kube: FakeKube
    bus: FakeBus
    storage: local.LocalStorage
    settings: config.Settings
    uploader: uploading.Uploader = field(init=False)
    loop: reconciler.Loop = field(init=False)
    passes: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.uploader, self.loop = self.start()

    def start(self) -> tuple[uploading.Uploader, reconciler.Loop]:
        """An uploader as the runtime runs it: its view, and enqueue() running another pass."""
        found = view.View(uploading.PLURALS)
        runtime = reconciler.Runtime(
            self.settings,
            cast(connection.Bus, self.bus),
            cast(client.Kube, self.kube),
            found,
            RuntimeMetrics(),
        )
        runtime.enqueue = self._enqueue  # type: ignore[method-assign]  # another pass, as the consumer runs it
        work = uploading.Uploader(runtime, self.storage)
        loop = reconciler.Loop(runtime, work)
        runtime.loop = loop
        return work, loop

    def _enqueue(self, key: ResourceKey) -> None:
        task = asyncio.create_task(self.reconcile())
        self.passes.add(task)
        task.add_done_callback(self.passes.discard)

    def apply(self, md5: str, request_id: str) -> None:
        obj = self.kube.objects.get(KEY)
        if obj is None:
            obj = {
                "apiVersion": "substratus.ai/v1",
                "kind": "Model",
                "metadata": {"name": NAME, "namespace": NS, "uid": "u-1", "generation": 0, "resourceVersion": "1"},
                "spec": {},
            }
            self.kube.objects[KEY] = obj
        obj["spec"]["build"] = {"upload": {"md5Checksum": md5, "requestID": request_id}}
        obj["metadata"]["generation"] += 1
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.kube.objects[KEY].get("status", {}))

    @property
    def uploaded(self) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == "Uploaded")

    async def reconcile(self) -> None:
        """One pass, with the view holding what the API holds now (as the events would bring it)."""
        obj = self.kube.objects.get(KEY)
        if obj is None:
            self.loop.runtime.view.objects.pop(KEY, None)
        else:
            self.loop.runtime.view.objects[KEY] = copy.deepcopy(obj)
        await self.loop.run_pass(KEY, [])

    async def until(self, check: Callable[[], bool]) -> None:
        """Wait (at most 10 s) until ``check`` holds, re-checking after each published report."""
        async with asyncio.timeout(10):
            while not check():
                self.bus.changed.clear()
                await self.bus.changed.wait()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    kube = FakeKube()
    bus = FakeBus(kube)
    storage = local.LocalStorage(tmp_path / "bucket")
    settings = config.Settings(service="uploader", bucket_url=storage.url, upload_poll_interval_s=0.05)
    world = World(kube, bus, storage, settings)
    yield world
    await world.uploader.close()
    for task in list(world.passes):
        task.cancel()


def _storage_key(md5: str = MD5) -> str:
    return artifacts.upload_key("local", NS, "models", NAME, md5)


async def test_a_new_request_gets_a_signed_url_and_the_upload_is_noticed(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    world.apply(MD5, "r1")
    await world.reconcile()
    upload = world.status["buildUpload"]
    assert set(upload) == {"signedURL", "requestID", "expiration"}
    assert upload["requestID"] == "r1"
    assert (world.uploaded["status"], world.uploaded["reason"]) == ("False", "AwaitingUpload")
    expiration = decide.parse_time(upload["expiration"])
    assert expiration is not None
    assert dt.timedelta(minutes=14) < expiration - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=15)
    # The client PUTs and goes away: the poller notices by itself.
    await world.storage.accept_put(
        upload["signedURL"],
        BODY,
        {"Content-Type": "application/octet-stream", "Content-MD5": base.md5_base64(MD5)},
    )
    await world.until(lambda: world.uploaded["status"] == "True")
    assert world.uploaded["reason"] == "UploadFound"
    assert world.status["buildUpload"] == {"requestID": "r1", "storedMD5Checksum": MD5}
    assert upload["signedURL"] not in caplog.text
    assert all(upload["signedURL"] not in (c.message or "") for r in world.bus.reports for c in r.conditions)


async def test_a_new_request_for_a_stored_tarball_needs_no_upload(world: World) -> None:
    await world.storage.put(_storage_key(), BODY)
    world.apply(MD5, "r2")
    await world.reconcile()
    assert world.status["buildUpload"] == {"requestID": "r2", "storedMD5Checksum": MD5}
    assert (world.uploaded["status"], world.uploaded["reason"]) == ("True", "UploadFound")


async def test_a_stored_object_with_another_md5_is_not_taken_for_the_upload(world: World) -> None:
    await world.storage.put(_storage_key(), b"something else")
    world.apply(MD5, "r3")
    await world.reconcile()
    assert world.uploaded["reason"] == "AwaitingUpload"
    assert "signedURL" in world.status["buildUpload"]


async def test_reconciling_again_keeps_the_same_url_and_publishes_nothing_new(world: World) -> None:
    world.apply(MD5, "r4")
    await world.reconcile()
    first = world.status["buildUpload"]
    published = len(world.bus.reports)
    await world.reconcile()
    await world.reconcile()
    assert world.status["buildUpload"] == first
    assert len(world.bus.reports) == published


async def test_an_expired_url_asks_for_a_new_request_id(world: World) -> None:
    world.apply(MD5, "r5")
    await world.reconcile()
    expiration = decide.parse_time(world.status["buildUpload"]["expiration"])
    assert expiration is not None
    world.uploader.now = lambda: expiration + dt.timedelta(seconds=1)
    await world.reconcile()
    assert "signedURL" not in world.status["buildUpload"]
    assert world.status["buildUpload"]["requestID"] == "r5"
    assert (world.uploaded["status"], world.uploaded["reason"]) == ("False", decide.UPLOAD_EXPIRED)
    assert "set a new spec.build.upload.requestID" in world.uploaded["message"]
    # A new request ID gets a new URL.
    world.apply(MD5, "r6")
    world.uploader.now = lambda: dt.datetime.now(dt.UTC)
    await world.reconcile()
    assert world.status["buildUpload"]["requestID"] == "r6"
    assert "signedURL" in world.status["buildUpload"]


async def test_a_new_md5_under_the_same_request_id_is_refused(world: World) -> None:
    world.apply(MD5, "r7")
    await world.reconcile()
    world.apply(hashlib.md5(b"edited").hexdigest(), "r7")
    await world.reconcile()
    assert "signedURL" not in world.status["buildUpload"]
    assert world.uploaded["reason"] == decide.UPLOAD_EXPIRED
    assert "md5Checksum changed" in world.uploaded["message"]


async def test_a_new_generation_is_reported_again(world: World) -> None:
    await world.storage.put(_storage_key(), BODY)
    world.apply(MD5, "r8")
    await world.reconcile()
    world.kube.objects[KEY]["metadata"]["generation"] += 1
    await world.reconcile()
    assert world.uploaded["observedGeneration"] == world.kube.objects[KEY]["metadata"]["generation"]


async def test_removing_the_upload_clears_what_the_uploader_wrote(world: World) -> None:
    await world.storage.put(_storage_key(), BODY)
    world.apply(MD5, "r9")
    await world.reconcile()
    world.kube.objects[KEY]["spec"]["build"] = {"git": {"url": "https://example.com/repo"}}
    await world.reconcile()
    assert "buildUpload" not in world.status
    assert not any(c["type"] == "Uploaded" for c in world.status["conditions"])


async def test_refused_storage_is_a_permanent_error_on_uploaded(world: World, tmp_path: Path) -> None:
    class Refusing(local.LocalStorage):
        async def stat(self, key: str) -> base.ObjectInfo | None:
            raise storage_errors.StorageRefused("stat: 403 AccessDenied", status=403)

    world.uploader.storage = Refusing(tmp_path / "other")
    world.apply(MD5, "r10")
    with pytest.raises(errors.PermanentError) as caught:
        await world.reconcile()
    assert caught.value.reason == "Forbidden"
    assert caught.value.condition == "Uploaded"


async def test_polling_resumes_from_the_view_after_a_restart(world: World) -> None:
    world.apply(MD5, "r11")
    await world.reconcile()
    upload = world.status["buildUpload"]
    await world.uploader.close()
    world.uploader, world.loop = world.start()
    restarted = world.uploader
    restarted.view.objects[KEY] = copy.deepcopy(world.kube.objects[KEY])
    try:
        await restarted.resume_polling()
        await world.storage.accept_put(
            upload["signedURL"],
            BODY,
            {"Content-Type": "application/octet-stream", "Content-MD5": base.md5_base64(MD5)},
        )
        await world.until(lambda: world.uploaded["status"] == "True")
    finally:
        await restarted.close()
