"""pytest helpers for fault tests that need NATS servers of their own (see ``nats_cluster``).

A test module takes what it needs with ``from substratus_local.testing_nats import ...``; the
fixtures here start real ``nats-server`` processes under the test's tmp_path and stop them after.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from substratus_common import config
from substratus_common.bus import connection
from substratus_common.events import envelope, payloads, streams
from substratus_local import binaries, nats_cluster
from substratus_local import stack as stack_mod


@pytest.fixture
def nats_node(tmp_path: Path) -> Iterator[nats_cluster.Cluster]:
    """One JetStream server of the test's own (its streams' limits are the test's to choose)."""
    with nats_cluster.running(tmp_path / "nats", size=1) as cluster:
        yield cluster


@pytest.fixture
def nats_three(tmp_path: Path) -> Iterator[nats_cluster.Cluster]:
    """A three-node JetStream cluster on loopback, as the chart runs NATS in production."""
    with nats_cluster.running(tmp_path / "nats", size=3) as cluster:
        yield cluster


@contextlib.asynccontextmanager
async def bus_on(cluster: nats_cluster.Cluster, **settings: Any) -> AsyncIterator[connection.Bus]:
    """A bus connected to ``cluster`` that provisions the streams with ``settings``."""
    bus = await connection.connect(config.Settings(nats_url=cluster.url, **settings))
    try:
        yield bus
    finally:
        await bus.close()


async def last_versions(bus: connection.Bus, filter_subject: str) -> dict[str, tuple[str, str]]:
    """subject → (event type, resourceVersion) of the last change message stored on it."""
    found: dict[str, tuple[str, str]] = {}
    async for msg in bus.last_per_subject(streams.CHANGES, filter_subject):
        event = envelope.decode(msg.data)
        obj = payloads.change_object(event)
        found[msg.subject] = (event.type, str(obj["metadata"]["resourceVersion"]))
    return found


async def until(predicate: Callable[[], bool], what: str, limit_s: float = 60) -> None:
    """Poll a condition (bounded); fails the test naming it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"{what} did not happen within {limit_s:.0f}s")
        await asyncio.sleep(0.05)


@dataclass
class ChartNats:
    """A nats-server configured as the chart's bundled one (its users, permissions, TLS)."""

    port: int
    log: Path
    passwords: dict[str, str]
    tls: bool

    @property
    def url(self) -> str:
        """The URL as the chart gives it: no credentials inside."""
        return f"{'tls' if self.tls else 'nats'}://{stack_mod.HOST}:{self.port}"

    def env(self, user: str, password: str | None = None) -> dict[str, str]:
        """A service's NATS environment as the chart sets it."""
        return {"NATS_URL": self.url, "NATS_USER": user, "NATS_PASSWORD": password or self.passwords[user]}

    def server_log(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def _render_chart(*args: str) -> list[dict[str, Any]]:
    helm = binaries.ensure(["helm"])["helm"]
    chart = stack_mod.REPO_ROOT / "deploy" / "helm" / "substratus"
    result = subprocess.run(
        [str(helm), "template", "nats-test", str(chart), "--namespace", "substratus", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@contextlib.contextmanager
def chart_nats(workdir: Path, tls_dir: Path | None = None) -> Iterator[ChartNats]:
    """Start nats-server from the chart's rendered nats.conf and the passwords of its Secret;
    with ``tls_dir`` (``pki.ensure``'s files) the server requires TLS as the chart configures it."""
    args = ["--set", "nats.tls.enabled=true", "--set", "nats.tls.secretName=nats-tls"] if tls_dir else []
    docs = _render_chart(*args)
    conf = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-nats"))
    secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-nats-users"))
    passwords = {name: base64.b64decode(value).decode() for name, value in secret["data"].items()}
    text = conf["data"]["nats.conf"]
    if tls_dir is not None:
        text = text.replace("/etc/nats/tls/tls.crt", str(tls_dir / "kubelet.crt"))
        text = text.replace("/etc/nats/tls/tls.key", str(tls_dir / "kubelet.key"))
    text = text.replace("store_dir: /data", f"store_dir: {workdir / 'data'}")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "nats.conf").write_text(text)
    port, monitor = stack_mod.free_port(), stack_mod.free_port()
    log = workdir / "nats.log"
    env = {
        **os.environ,
        "POD_NAME": "nats-test-0",
        **{"NATS_PASSWORD_" + name.upper().replace("-", "_"): pw for name, pw in passwords.items()},
    }
    argv = [nats_cluster.binary(), "-c", str(workdir / "nats.conf"), "-a", stack_mod.HOST, "-p", str(port)]
    argv += ["-m", str(monitor), "-l", str(log)]
    with (workdir / "nats.out").open("w") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        stack_mod.wait_for(
            "nats-server (chart config)",
            lambda: httpx.get(f"http://{stack_mod.HOST}:{monitor}/healthz?js-enabled-only=true", timeout=2).is_success,
            30,
            workdir / "nats.out",
        )
        yield ChartNats(port=port, log=log, passwords=passwords, tls=tls_dir is not None)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
