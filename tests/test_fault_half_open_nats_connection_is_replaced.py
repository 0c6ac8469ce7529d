"""Check 8, the NATS half (docs/reliability.md): the trainer's connection to NATS goes half-open
(a loopback proxy stops forwarding bytes, its sockets left open). The client's pings go
unanswered, so within 30 s it drops the connection and dials again, and a Model applied after the
stall gets its Job and becomes ready. kwok simulates the Job's Pod.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx

from substratus_local import stack as stack_mod
from substratus_local import stall_proxy
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually

DETECT_WITHIN_S = 30.0


def _model(name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "substratus.ai/v1",
            "kind": "Model",
            "metadata": {"name": name},
            "spec": {"image": "substratusai/model-loader-huggingface", "params": {"name": f"org/{name}"}},
        }
    )


def _ready(stack: Stack, namespace: str, name: str) -> bool:
    got = stack.kubectl("get", "model", name, "-n", namespace, "-o", "json", check=False)
    return got.returncode == 0 and (json.loads(got.stdout).get("status") or {}).get("ready") is True


def _disconnects(proc: ServiceProcess) -> float:
    text = httpx.get(f"http://{stack_mod.HOST}:{proc.port}/metrics", timeout=5).text
    line = next(line for line in text.splitlines() if line.startswith("substratus_bus_disconnects_total "))
    return float(line.split()[1])


def test_a_half_open_nats_connection_is_noticed_within_30s_and_replaced(
    stack: Stack, namespace: str, run_service: Callable[..., ServiceProcess]
) -> None:
    run_service("watcher")
    run_service("status-writer")
    with stall_proxy.running(stack_mod.HOST, stack.port("nats")) as proxy:
        trainer = run_service("trainer", env={"NATS_URL": f"nats://{proxy.url_host_port}"})
        stack.kubectl("apply", "-n", namespace, "-f", "-", input=_model("before"))
        eventually(lambda: _ready(stack, namespace, "before"), 90, "a Model ready through the proxy")
        assert _disconnects(trainer) == 0
        dialled = proxy.connections

        proxy.stall()
        stalled_at = time.monotonic()
        stack.kubectl("apply", "-n", namespace, "-f", "-", input=_model("after"))
        eventually(lambda: _disconnects(trainer) >= 1, DETECT_WITHIN_S + 5, "the trainer dropping the dead link")
        noticed_s = time.monotonic() - stalled_at
        assert noticed_s <= DETECT_WITHIN_S, f"noticed after {noticed_s:.0f}s"
        eventually(lambda: proxy.connections > dialled, 30, "the trainer dialling again")
        eventually(lambda: _ready(stack, namespace, "after"), 120, "the Model applied after the stall ready")
        print(f"\nhalf-open NATS connection noticed {noticed_s:.1f}s after the stall")
        jobs = json.loads(stack.kubectl("get", "jobs", "-n", namespace, "-o", "json").stdout)["items"]
        assert sorted(j["metadata"]["labels"]["substratus.ai/name"] for j in jobs) == ["after", "before"]
