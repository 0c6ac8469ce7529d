"""A service's main: a fixed set of named root tasks and one bounded shutdown.

If any root task ends, the service stops. On SIGTERM or SIGINT the stop event is set; root tasks
are expected to stop fetching, finish or hand back in-flight work, and return. Whatever is still
running after the grace period is cancelled and named in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import uvloop

from substratus_common import config, logs
from substratus_common.bus import connection
from substratus_common.metrics import RuntimeMetrics
from substratus_common.runtime.health import HealthServer

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What every root task gets: settings, the stop signal, metrics and the readiness registry."""

    settings: config.Settings
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    metrics: RuntimeMetrics = field(default_factory=RuntimeMetrics)
    health: HealthServer | None = None
    resources: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    """Connections opened by the setup (bus, Kubernetes); closed after every root task has ended."""

    def add_readiness_check(self, name: str, check: Callable[[], bool], why: Callable[[], str] | None = None) -> None:
        if self.health is not None:
            self.health.add_check(name, check, why)

    def watch_bus(self, bus: connection.Bus) -> None:
        """``/readyz`` and ``substratus_bus_connected`` follow the NATS connection: a service cut off
        from the bus says so (and why) instead of idling green (check 5, docs/reliability.md)."""
        metrics = self.metrics

        def moved(connected: bool) -> None:
            metrics.bus_connected.set(1 if connected else 0)
            if not connected:
                metrics.bus_disconnects.inc()

        metrics.bus_connected.set(1 if bus.link.connected else 0)
        bus.link.listeners.append(moved)
        self.add_readiness_check("nats", lambda: bus.link.connected, bus.link.describe)


RootTask = Callable[[Context], Coroutine[Any, Any, None]]
Setup = Callable[[Context], Mapping[str, RootTask] | Awaitable[Mapping[str, RootTask]]]
"""Opens what the service needs (registering closers on ``ctx.resources``) and names its root tasks."""


async def run(ctx: Context, setup: Setup | Mapping[str, RootTask], *, install_signals: bool = True) -> int:
    """Run the named root tasks until one ends or ``ctx.stop`` is set; return an exit code."""
    async with ctx.resources:
        return await _run(ctx, setup, install_signals=install_signals)


async def _run(ctx: Context, setup: Setup | Mapping[str, RootTask], *, install_signals: bool) -> int:
    settings = ctx.settings
    ctx.health = HealthServer(settings.health_host, settings.health_port, ctx.metrics.registry)
    loop = asyncio.get_running_loop()
    if install_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, ctx.stop.set)
    await ctx.health.start()
    try:
        if callable(setup):
            made = setup(ctx)
            tasks = await made if inspect.isawaitable(made) else made
        else:
            tasks = setup
    except Exception:
        log.exception("the service could not start")
        await ctx.health.stop()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return 1
    running: dict[asyncio.Task[None], str] = {
        asyncio.create_task(factory(ctx), name=name): name for name, factory in tasks.items()
    }
    stopper = asyncio.create_task(_wait_stop(ctx), name="stop-signal")
    exit_code = 0
    try:
        done, _ = await asyncio.wait([*running, stopper], return_when=asyncio.FIRST_COMPLETED)
        if stopper in done:
            log.info("stop requested")
        for task in done - {stopper}:
            exit_code = _report_end(task, running[task])
        ctx.stop.set()
        pending = [t for t in running if not t.done()]
        if pending:
            finished, stuck = await asyncio.wait(pending, timeout=settings.shutdown_grace_s)
            for task in finished:
                exit_code = max(exit_code, _report_end(task, running[task], expected=True))
            for task in stuck:
                log.warning("task did not stop within the grace period; cancelling", extra={"task": running[task]})
                task.cancel()
            if stuck:
                await asyncio.wait(stuck, timeout=5)
    finally:
        stopper.cancel()
        await ctx.health.stop()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    log.info("stopped", extra={"exit_code": exit_code})
    return exit_code


async def _wait_stop(ctx: Context) -> None:
    await ctx.stop.wait()


def _report_end(task: asyncio.Task[None], name: str, *, expected: bool = False) -> int:
    if task.cancelled():
        log.warning("task was cancelled", extra={"task": name})
        return 1
    error = task.exception()
    if error is not None:
        log.error("task failed", extra={"task": name}, exc_info=error)
        return 1
    if not expected:
        log.warning("task ended; stopping the service", extra={"task": name})
    return 0


def main(service: str, tasks: Setup) -> None:
    """Console-script entry point: settings from the environment, JSON logs, uvloop, exit code."""
    settings = config.Settings(service=service)
    logs.setup(settings.log_level, service=service)

    async def _main() -> int:
        ctx = Context(settings=settings)
        return await run(ctx, tasks)

    sys.exit(uvloop.run(_main()))


async def idle(ctx: Context) -> None:
    """A root task that only waits for the stop signal (services not yet doing work)."""
    await ctx.stop.wait()
