"""The ``platform`` fixture of the trainer's tests on the local stack: the watcher, the status writer and the
trainer run as real processes against the session's stack, in a fresh namespace per test."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually

LOG_TAIL = 40


@dataclass
class Platform:
    """The namespace a test works in, with the services running; kubectl helpers."""

    stack: Stack
    namespace: str
    trainer: ServiceProcess

    def apply(self, manifest: str) -> None:
        self.stack.kubectl("apply", "-n", self.namespace, "-f", "-", input=manifest)

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

    def condition(self, kind: str, name: str, type_: str = "Complete") -> dict[str, Any]:
        obj = self.get(kind, name) or {}
        for condition in (obj.get("status") or {}).get("conditions") or []:
            if condition.get("type") == type_:
                found: dict[str, Any] = condition
                return found
        return {}

    def ready(self, kind: str, name: str) -> bool:
        return ((self.get(kind, name) or {}).get("status") or {}).get("ready") is True

    def wait_ready(self, kind: str, name: str, timeout: float = 90) -> dict[str, Any]:
        def check() -> bool:
            assert self.ready(kind, name), f"{kind}/{name}: {self.condition(kind, name)}"
            return True

        eventually(check, timeout, f"{kind}/{name} ready")
        obj = self.get(kind, name)
        assert obj is not None
        return obj

    def wait_reason(self, kind: str, name: str, reason: str, timeout: float = 90) -> dict[str, Any]:
        def check() -> dict[str, Any]:
            condition = self.condition(kind, name)
            assert condition.get("reason") == reason, f"{kind}/{name}: {condition}"
            return condition

        return eventually(check, timeout, f"{kind}/{name} reason {reason}")


@pytest.fixture(name="platform")
def platform_fixture(
    stack: Stack, namespace: str, run_service: Callable[..., ServiceProcess]
) -> Iterator[Callable[..., Platform]]:
    """``platform(trainer_env={...})`` starts the watcher, status writer and trainer; their logs'
    last lines are printed at teardown, so a failing test shows what the services did."""
    started: list[ServiceProcess] = []

    def start(trainer_env: Mapping[str, str] | None = None) -> Platform:
        started.append(run_service("watcher"))
        started.append(run_service("status-writer"))
        trainer = run_service("trainer", env=trainer_env)
        started.append(trainer)
        return Platform(stack, namespace, trainer)

    yield start
    for proc in started:
        lines = proc.logs().splitlines()
        print(f"--- {proc.service} (last {min(len(lines), LOG_TAIL)} of {len(lines)} log lines)")
        print("\n".join(lines[-LOG_TAIL:]))
