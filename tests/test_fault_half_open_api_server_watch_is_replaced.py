"""Check 8, the API-server half (docs/reliability.md): the watcher reaches the API server through
a loopback proxy that goes half-open (it stops forwarding bytes; the sockets stay open). Its
watches end by themselves every ``SUBSTRATUS_WATCH_TIMEOUT_S`` (25 s) when healthy, so one that
says nothing for ``SUBSTRATUS_WATCH_STALL_S`` (30 s) is dropped with its connection and watched
again on a new one: a Model applied right after the stall is stored and becomes ready. kwok
simulates the Job's Pod."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

from substratus_common.bus import connection
from substratus_common.events import streams, subjects
from substratus_local import stack as stack_mod
from substratus_local import stall_proxy
from substratus_local import testing_burst as burst
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, stream_messages

DETECT_WITHIN_S = 30.0


def _through(stack: Stack, proxy: stall_proxy.StallProxy, path: Path) -> Path:
    """The stack's kubeconfig with the API server's address replaced by the proxy's (same certificate)."""
    config = json.loads(stack.kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://{proxy.url_host_port}"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


async def _stored(bus: connection.Bus, namespace: str, name: str) -> bool:
    found = await stream_messages(bus, streams.CHANGES, subjects.change("models", namespace, name))
    return bool(found)


async def _until(check: Callable[[], object], what: str, limit_s: float) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return loop.time() - started
        assert loop.time() - started < limit_s, f"{what} did not happen within {limit_s:.0f}s"
        await asyncio.sleep(0.5)


async def test_a_half_open_watch_is_replaced_within_30s(
    stack: Stack, namespace: str, bus: connection.Bus, run_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    run_service("status-writer")
    run_service("trainer")
    with stall_proxy.running(stack_mod.HOST, stack.port("apiserver")) as proxy:
        kubeconfig = _through(stack, proxy, tmp_path / "through-proxy.kubeconfig")
        watcher = run_service("watcher", env={"KUBECONFIG": str(kubeconfig)})
        stack.kubectl("apply", "-n", namespace, "-f", "-", input=burst.models(["before"]))
        await _until(lambda: burst.ready(stack, namespace, "model", "before"), "a Model ready through the proxy", 90)

        proxy.stall()
        stalled_at = time.monotonic()
        stack.kubectl("apply", "-n", namespace, "-f", "-", input=burst.models(["after"]))
        await _until(lambda: _stored(bus, namespace, "after"), "the Model's change stored", DETECT_WITHIN_S + 15)
        stored_s = time.monotonic() - stalled_at
        assert "watch went silent; watching again" in watcher.logs()
        await _until(
            lambda: burst.ready(stack, namespace, "model", "after"), "the Model applied after the stall ready", 90
        )
        print(f"\nhalf-open watch replaced; the change applied after the stall stored {stored_s:.1f}s later")
        assert stored_s <= DETECT_WITHIN_S + 10, f"stored {stored_s:.0f}s after the stall"
        assert watcher.ready()
