"""The /healthz, /readyz and /metrics HTTP server of a service."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], bool]
Why = Callable[[], str]
"""What a failing check says in ``/readyz`` (e.g. ``disconnected from NATS for 12s``)."""


class HealthServer:
    """Liveness answers while the event loop runs; readiness while every registered check passes."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry) -> None:
        self._host, self._port, self._registry = host, port, registry
        self._checks: dict[str, tuple[ReadinessCheck, Why | None]] = {}
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def add_check(self, name: str, check: ReadinessCheck, why: Why | None = None) -> None:
        self._checks[name] = (check, why)

    def failing(self) -> list[str]:
        """The failing checks, each with what it says, e.g. ``nats (disconnected from NATS for 3s)``."""
        found = []
        for name, (check, why) in sorted(self._checks.items()):
            if not check():
                found.append(f"{name} ({why()})" if why is not None else name)
        return found

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _: web.Request) -> web.Response:
        failing = self.failing()
        if failing:
            return web.Response(status=503, text="not ready: " + ", ".join(failing) + "\n")
        return web.Response(text="ok\n")

    async def _metrics(self, _: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port
        log.info("health server listening", extra={"host": self._host, "port": self.port})
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
