"""Check 8, the NATS half (docs/reliability.md): the trainer's connection to NATS goes half-open
(a loopback proxy stops forwarding bytes, its sockets left open). The client's pings go
unanswered, so within 30 s it drops the connection and dials again, and a Model applied after the
stall gets its Job and becomes ready. kwok simulates the Job's Pod.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from substratus_local import stack as stack_mod
from substratus_local import stall_proxy
from substratus_local import testing_burst as burst
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually

DETECT_WITHIN_S = 30.0


DISCONNECTS = "substratus_bus_disconnects_total"


def test_a_half_open_nats_connection_is_noticed_within_30s_and_replaced(
    stack: Stack, namespace: str, run_service: Callable[..., ServiceProcess]
) -> None:
    run_service("watcher")
    run_service("status-writer")
    with stall_proxy.running(stack_mod.HOST, stack.port("nats")) as proxy:
        trainer = run_service("trainer", env={"NATS_URL": f"nats://{proxy.url_host_port}"})
        stack.kubectl("apply", "-n", namespace, "-f", "-", input=burst.models(["before"]))
        eventually(lambda: burst.ready(stack, namespace, "model", "before"), 90, "a Model ready through the proxy")
        assert burst.metric(trainer, DISCONNECTS, required=True) == 0
        dialled = proxy.connections

        proxy.stall()
        stalled_at = time.monotonic()
        stack.kubectl("apply", "-n", namespace, "-f", "-", input=burst.models(["after"]))
        eventually(
            lambda: burst.metric(trainer, DISCONNECTS, required=True) >= 1,
            DETECT_WITHIN_S + 5,
            "the trainer dropping the dead link",
        )
        noticed_s = time.monotonic() - stalled_at
        assert noticed_s <= DETECT_WITHIN_S, f"noticed after {noticed_s:.0f}s"
        eventually(lambda: proxy.connections > dialled, 30, "the trainer dialling again")
        eventually(
            lambda: burst.ready(stack, namespace, "model", "after"), 120, "the Model applied after the stall ready"
        )
        print(f"\nhalf-open NATS connection noticed {noticed_s:.1f}s after the stall")
        jobs = burst.items(stack, namespace, "jobs")
        assert sorted(j["metadata"]["labels"]["substratus.ai/name"] for j in jobs) == ["after", "before"]
