"""The services under test, each run as its own process against the benchmark's stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from substratus_local import stack as stack_mod

LOCAL_ENV = {
    # As `make up` runs it: kwok runs no container, so the builder would build with buildah locally.
    "builder": {"SUBSTRATUS_BUILDER_EXECUTOR": "local", "SUBSTRATUS_REGISTRY_INSECURE": "true"},
}


class ServiceError(RuntimeError):
    """A service did not start or died; the message points at its log."""


class Service:
    def __init__(
        self,
        stack: stack_mod.Stack,
        name: str,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        *,
        label: str | None = None,
    ) -> None:
        self.stack, self.name = stack, name
        self.label = label or name  # e.g. "trainer-2" for a second replica
        self.extra_env = dict(env or {})
        self.log_path = log_dir / f"{self.label}.log"
        self.port = stack_mod.free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 90.0) -> None:
        self.spawn()
        self.wait_ready(timeout_s)

    def spawn(self) -> None:
        env = {
            **os.environ,
            **self.stack.env,
            "SUBSTRATUS_HEALTH_HOST": stack_mod.HOST,
            "SUBSTRATUS_HEALTH_PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
            **LOCAL_ENV.get(self.name, {}),
            **({"SUBSTRATUS_BUILDER_LOCAL_DIR": str(self.stack.root / "builder")} if self.name == "builder" else {}),
            **self.extra_env,
        }
        module = "substratus_" + self.name.replace("-", "_")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self._ready():
            if time.monotonic() > deadline:
                raise ServiceError(f"{self.label} not ready within {timeout_s:.0f}s; see {self.log_path}")
            time.sleep(0.1)

    def _ready(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise ServiceError(f"{self.label} exited; see {self.log_path}")
        try:
            return httpx.get(f"http://{stack_mod.HOST}:{self.port}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ServiceError(f"{self.label} was not started")
        return self.proc.pid

    def usage(self) -> dict[str, float]:
        """Peak (VmHWM) and current (VmRSS) resident memory in MiB, and CPU seconds used so far."""
        fields: dict[str, float] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                fields[key] = round(int(value.split()[0]) / 1024, 1)  # kB
        stat = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu_s = (int(stat[11]) + int(stat[12])) / ticks  # utime + stime
        return {
            "peak_rss_mib": fields.get("VmHWM", float("nan")),
            "rss_mib": fields.get("VmRSS", float("nan")),
            "cpu_s": round(cpu_s, 2),
            "passes": self.passes(),
        }

    def passes(self) -> float:
        """Reconcile (or report) passes so far: the ``substratus_handler_seconds`` histogram's count."""
        try:
            text = httpx.get(f"http://{stack_mod.HOST}:{self.port}/metrics", timeout=5).text
        except httpx.HTTPError:
            return float("nan")
        for line in text.splitlines():
            if line.startswith("substratus_handler_seconds_count"):
                return float(line.split()[-1])
        return 0.0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, a bounded wait for the graceful shutdown, then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def start_all(running: list[Service], timeout_s: float = 300.0) -> None:
    """Spawn every service, then wait for each to be ready (they start side by side)."""
    for svc in running:
        svc.spawn()
    for svc in running:
        svc.wait_ready(timeout_s)


def stop_all(running: list[Service]) -> None:
    for svc in running:
        if svc.proc is not None and svc.proc.poll() is None:
            svc.proc.send_signal(signal.SIGTERM)
    for svc in running:
        svc.stop()
