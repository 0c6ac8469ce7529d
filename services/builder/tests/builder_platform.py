"""The ``builder_platform`` fixture of the builder's tests on the local stack: the watcher, the status
writer and the builder (and, when asked, the trainer or the uploader) run as real processes against
the session's stack, in a fresh namespace per test."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError

from substratus_common.events import streams, subjects
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually


@dataclass
class BuilderPlatform:
    """The namespace a test works in, with the services running; kubectl helpers."""

    stack: Stack
    namespace: str
    builder: ServiceProcess

    def apply(self, manifest: str) -> None:
        self.stack.kubectl("apply", "-n", self.namespace, "-f", "-", input=manifest)

    def patch(self, kind: str, name: str, patch: Mapping[str, Any]) -> None:
        self.stack.kubectl("patch", kind, name, "-n", self.namespace, "--type=merge", "-p", json.dumps(dict(patch)))

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        result = self.stack.kubectl("get", kind, name, "-n", self.namespace, "-o", "json", check=False)
        if result.returncode != 0:
            return None
        obj: dict[str, Any] = json.loads(result.stdout)
        return obj

    def items(self, kind: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", kind, "-n", self.namespace, "-o", "json"]
        if selector:
            args += ["-l", selector]
        items: list[dict[str, Any]] = json.loads(self.stack.kubectl(*args).stdout)["items"]
        return items

    def condition(self, kind: str, name: str, type_: str = "Built") -> dict[str, Any]:
        obj = self.get(kind, name) or {}
        for condition in (obj.get("status") or {}).get("conditions") or []:
            if condition.get("type") == type_:
                found: dict[str, Any] = condition
                return found
        return {}

    def wait_condition(
        self, kind: str, name: str, reason: str, type_: str = "Built", timeout: float = 60
    ) -> dict[str, Any]:
        """The condition once it has ``reason``."""

        def check() -> dict[str, Any]:
            condition = self.condition(kind, name, type_)
            assert condition.get("reason") == reason, f"{kind}/{name} {type_}: {condition}"
            return condition

        return eventually(check, timeout, f"{kind}/{name} {type_} reason {reason}")

    def wait_ready(self, kind: str, name: str, timeout: float = 90) -> dict[str, Any]:
        def check() -> dict[str, Any]:
            obj = self.get(kind, name) or {}
            assert (obj.get("status") or {}).get("ready") is True, f"{kind}/{name}: {obj.get('status')}"
            return obj

        return eventually(check, timeout, f"{kind}/{name} ready")

    def wait_builder_handled(self, plural: str, name: str, timeout: float = 60) -> None:
        """Wait until the resource's current version is on the bus and the builder acked it (and all
        before it): then whatever the builder does about that version is done."""
        obj = self.get(plural, name)
        assert obj is not None
        version = obj["metadata"]["resourceVersion"]
        subject = subjects.change(plural, self.namespace, name)

        def published() -> int:
            seq, event = asyncio.run(_last_change(self.stack.nats_url, subject))
            data = event.get("data") or {}
            assert (data.get("metadata") or {}).get("resourceVersion") == version, f"{subject}: not yet {version}"
            return seq

        seq = eventually(published, timeout, f"{plural}/{name} version {version} on the bus")

        def acked() -> bool:
            floor = asyncio.run(_ack_floor(self.stack.nats_url, "builder"))
            assert floor >= seq, f"builder acked up to {floor}, not yet {seq}"
            return True

        eventually(acked, timeout, f"builder acked {plural}/{name} version {version}")


@pytest.fixture(name="builder_platform")
def builder_platform_fixture(
    stack: Stack, namespace: str, run_service: Callable[..., ServiceProcess]
) -> Callable[..., BuilderPlatform]:
    """``builder_platform(builder_env={...}, trainer=False, uploader=False)`` starts the services."""

    def start(
        builder_env: Mapping[str, str] | None = None, *, trainer: bool = False, uploader: bool = False
    ) -> BuilderPlatform:
        run_service("watcher")
        run_service("status-writer")
        if trainer:
            run_service("trainer")
        if uploader:
            run_service("uploader")
        builder = run_service("builder", env=builder_env)
        return BuilderPlatform(stack, namespace, builder)

    return start


def git_repository(root: Path, files: Mapping[str, str], tag: str) -> str:
    """A local git repository with ``files`` committed and tagged; its ``file://`` URL."""
    root.mkdir(parents=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
            cwd=root,
            check=True,
            capture_output=True,
        )

    git("init", "-q", "-b", "main")
    git("add", ".")
    git("commit", "-q", "-m", "build context")
    git("tag", tag)
    return root.as_uri()


async def _last_change(nats_url: str, subject: str) -> tuple[int, dict[str, Any]]:
    nc = await nats.connect(nats_url)
    try:
        msg = await nc.jetstream().get_last_msg(streams.CHANGES, subject)
    except NotFoundError:
        return 0, {}
    finally:
        await nc.close()
    event: dict[str, Any] = json.loads(msg.data or b"{}")
    return int(msg.seq or 0), event


async def _ack_floor(nats_url: str, durable: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().consumer_info(streams.CHANGES, durable)
    finally:
        await nc.close()
    return int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0
