"""The ``platform`` fixture of the server-manager's tests on the local stack: the watcher, the status
writer, the trainer (so Models become ready for real) and the server-manager run as processes
against the session's stack, in a fresh namespace per test."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from substratus_local.stack import HOST, Stack
from substratus_local.testing import ServiceProcess, eventually

MODEL = """
apiVersion: substratus.ai/v1
kind: Model
metadata: {name: opt}
spec:
  image: substratusai/model-loader-huggingface
  params: {name: facebook/opt-125m}
"""

LOG_TAIL = 40

SERVER = """
apiVersion: substratus.ai/v1
kind: Server
metadata: {name: opt}
spec:
  image: substratusai/model-server-basaran
  model: {name: opt}
  env: {LOG_LEVEL: info}
"""


@dataclass
class Platform:
    """The namespace a test works in, with the services running; kubectl helpers."""

    stack: Stack
    namespace: str
    server_manager: ServiceProcess

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return self.stack.kubectl(*args, "-n", self.namespace, input=input).stdout

    def apply(self, manifest: str) -> None:
        self.kubectl("apply", "-f", "-", input=manifest)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        result = self.stack.kubectl("get", kind, name, "-n", self.namespace, "-o", "json", check=False)
        if result.returncode != 0:
            return None
        obj: dict[str, Any] = json.loads(result.stdout)
        return obj

    def items(self, kind: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", kind, "-o", "json"]
        if selector:
            args += ["-l", selector]
        items: list[dict[str, Any]] = json.loads(self.kubectl(*args))["items"]
        return items

    def condition(self, kind: str, name: str, type_: str = "Serving") -> dict[str, Any]:
        obj = self.get(kind, name) or {}
        for condition in (obj.get("status") or {}).get("conditions") or []:
            if condition.get("type") == type_:
                found: dict[str, Any] = condition
                return found
        return {}

    def wait_ready(self, kind: str, name: str, timeout: float = 90) -> dict[str, Any]:
        type_ = "Serving" if kind == "server" else "Complete"

        def check() -> dict[str, Any]:
            obj = self.get(kind, name) or {}
            assert (obj.get("status") or {}).get("ready") is True, f"{kind}/{name}: {self.condition(kind, name, type_)}"
            return obj

        return eventually(check, timeout, f"{kind}/{name} ready")

    def wait_reason(self, name: str, reason: str, timeout: float = 90) -> dict[str, Any]:
        """The Server's ``Serving`` condition once its reason is ``reason``."""

        def check() -> dict[str, Any]:
            condition = self.condition("server", name)
            assert condition.get("reason") == reason, f"server/{name}: {condition}"
            return condition

        return eventually(check, timeout, f"server/{name} reason {reason}")

    def field_owners(self, kind: str, name: str) -> dict[str, str]:
        """Field manager → the fields it owns (``managedFields[].fieldsV1`` as JSON text)."""
        obj = json.loads(self.kubectl("get", kind, name, "-o", "json", "--show-managed-fields"))
        return {f["manager"]: json.dumps(f.get("fieldsV1", {})) for f in obj["metadata"]["managedFields"]}

    def replica_sets(self, name: str) -> list[dict[str, Any]]:
        return self.items("replicasets", f"substratus.ai/kind=servers,substratus.ai/name={name}")

    def metric(self, name: str, labels: str = "") -> float:
        """A counter of the server-manager's ``/metrics`` (0 when not exported yet)."""
        text = httpx.get(f"http://{HOST}:{self.server_manager.port}/metrics", timeout=5).text
        match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    @property
    def applies(self) -> float:
        return self.metric("substratus_server_deployments_applied_total")

    @property
    def acked(self) -> float:
        return self.metric("substratus_messages_handled_total", '{outcome="ack"}')


@pytest.fixture(name="platform")
def platform_fixture(
    stack: Stack, namespace: str, run_service: Callable[..., ServiceProcess]
) -> Iterator[Callable[..., Platform]]:
    """``platform(server_env={...})`` starts the watcher, status writer, trainer and server-manager;
    their logs' last lines are printed at teardown, so a failing test shows what they did."""
    started: list[ServiceProcess] = []

    def start(server_env: Mapping[str, str] | None = None) -> Platform:
        for name in ("watcher", "status-writer", "trainer"):
            started.append(run_service(name))
        server_manager = run_service("server-manager", env=server_env)
        started.append(server_manager)
        return Platform(stack, namespace, server_manager)

    yield start
    for proc in started:
        lines = proc.logs().splitlines()
        print(f"--- {proc.service} (last {min(len(lines), LOG_TAIL)} of {len(lines)} log lines)")
        print("\n".join(lines[-LOG_TAIL:]))
