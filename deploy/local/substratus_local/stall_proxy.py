"""A loopback TCP proxy that can go half-open, for fault tests (check 8, docs/reliability.md).

``stall()`` makes every connection open now stop forwarding bytes, both ways, while its sockets
stay open: what a client sees when a NAT table or a peer drops a connection silently. Connections
opened afterwards are forwarded again, so a client that notices and reconnects recovers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator

from substratus_local import stack as stack_mod

CHUNK = 65536


class StallProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = stack_mod.free_port()
        self.connections = 0
        self._stalls: list[asyncio.Event] = []
        self._transports: set[asyncio.WriteTransport] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="stall-proxy", daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url_host_port(self) -> str:
        return f"{stack_mod.HOST}:{self.port}"

    def start(self) -> None:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        self._server = started.result(timeout=10)

    async def _serve(self) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: _Tracked(self._transports, self._connection), stack_mod.HOST, self.port)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        stalled = asyncio.Event()
        self._stalls.append(stalled)
        # Cancelled by stop(): end quietly (the sockets are aborted there).
        with contextlib.suppress(asyncio.CancelledError):
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                writer.transport.abort()
                return
            self._transports.add(up_writer.transport)
            await asyncio.gather(self._pipe(reader, up_writer, stalled), self._pipe(up_reader, writer, stalled))

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, stalled: asyncio.Event) -> None:
        try:
            while True:
                data = await source.read(CHUNK)
                if stalled.is_set():
                    await asyncio.Event().wait()  # half-open: hold the sockets, forward nothing, forever
                if not data:
                    break
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            raise
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                sink.close()

    def stall(self) -> None:
        """Every connection open now forwards nothing more (new ones still work)."""

        def _stall() -> None:
            for stalled in self._stalls:
                stalled.set()

        self._loop.call_soon_threadsafe(_stall)

    def stop(self) -> None:
        async def _close() -> None:
            if self._server is not None:
                self._server.close()  # accepts nothing more
            # Python 3.11's Server.close() leaves accepted connections open, and a stalled one may
            # hold unsent bytes that close() would wait for: abort every socket accepted or dialled
            # and cancel the handlers, again until nothing is left (a socket accepted just before
            # the close gets its transport and handler a few loop turns later).
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while True:
                for transport in self._transports:
                    transport.abort()
                for handler in self._handlers:
                    handler.cancel()
                others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                if not others or loop.time() > deadline:
                    break
                await asyncio.wait(others, timeout=0.05)
            if self._server is not None:
                await self._server.wait_closed()
            for _ in range(3):
                await asyncio.sleep(0)  # let the aborted sockets finish closing before the loop stops

        try:
            asyncio.run_coroutine_threadsafe(_close(), self._loop).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._loop.close()


class _Tracked(asyncio.StreamReaderProtocol):
    """The protocol ``asyncio.start_server`` uses, which also records each accepted transport."""

    def __init__(
        self,
        transports: set[asyncio.WriteTransport],
        handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    ) -> None:
        super().__init__(asyncio.StreamReader(), handler)
        self._tracked = transports

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.WriteTransport):
            self._tracked.add(transport)
        super().connection_made(transport)


@contextlib.contextmanager
def running(target_host: str, target_port: int) -> Iterator[StallProxy]:
    proxy = StallProxy(target_host, target_port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
