"""The ``platform`` fixture of the notebook-manager's tests on the local stack: the watcher, the
status writer and the notebook-manager (and, when asked, the trainer) run as real processes against
the session's stack, in a fresh namespace per test."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually

Object = dict[str, Any]


@dataclass
class Platform:
    """The namespace a test works in, with the services running; kubectl helpers."""

    stack: Stack
    namespace: str
    manager: ServiceProcess

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return self.stack.kubectl(*args, "-n", self.namespace, input=input).stdout

    def apply(self, manifest: str) -> None:
        self.kubectl("apply", "-f", "-", input=manifest)

    def suspend(self, name: str, suspend: bool) -> None:
        patch = json.dumps({"spec": {"suspend": suspend}})
        self.kubectl("patch", "notebook", name, "--type=merge", "-p", patch)

    def get(self, kind: str, name: str) -> Object | None:
        result = self.stack.kubectl("get", kind, name, "-n", self.namespace, "-o", "json", check=False)
        if result.returncode != 0:
            return None
        obj: Object = json.loads(result.stdout)
        return obj

    def must(self, kind: str, name: str) -> Object:
        """The object, failing the test when it does not exist."""
        obj = self.get(kind, name)
        assert obj is not None, f"{kind}/{name} not found in {self.namespace}"
        return obj

    def serving(self, name: str) -> Object:
        obj = self.get("notebook", name) or {}
        for condition in (obj.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Serving":
                found: Object = condition
                return found
        return {}

    def wait_serving(self, name: str, reason: str, timeout: float = 60) -> Object:
        """The Notebook once ``Serving`` has ``reason`` for the current generation and ``ready`` agrees."""

        def check() -> Object:
            obj = self.get("notebook", name) or {}
            condition = self.serving(name)
            assert condition.get("reason") == reason, f"notebook/{name}: {condition}"
            assert condition.get("observedGeneration") == obj["metadata"]["generation"], condition
            # ``ready`` is written after the condition (by the status writer's own apply).
            status = obj.get("status") or {}
            assert status.get("ready") is (condition["status"] == "True"), status
            return obj

        return eventually(check, timeout, f"notebook/{name} Serving reason {reason}")

    def wait_gone(self, kind: str, name: str, timeout: float = 30) -> None:
        eventually(lambda: self.get(kind, name) is None, timeout, f"{kind}/{name} deleted")


@pytest.fixture(name="platform")
def platform_fixture(
    stack: Stack, namespace: str, run_service: Callable[..., ServiceProcess]
) -> Callable[..., Platform]:
    """``platform(trainer=True, manager_env={...})`` starts the watcher, status writer, notebook-manager
    (with extra environment) and, when asked, the trainer."""

    def start(trainer: bool = False, manager_env: Mapping[str, str] | None = None) -> Platform:
        run_service("watcher")
        run_service("status-writer")
        manager = run_service("notebook-manager", env=manager_env)
        if trainer:
            run_service("trainer")
        return Platform(stack, namespace, manager)

    return start
