"""The lifecycle of examples/local/ on the local stack's real node, as a user runs it: the
reference images built here (tools/images.sh) and pushed to the stack's registry, the services
running, `kubectl apply -f examples/local/`, then every resource ready; the trained artifacts in
the bucket under the fine-tuned Model's deterministic path; a completion from the Server through
`kubectl port-forward` that is the fine-tuned model's own continuation; the Notebook's Jupyter
answering `/api` and its authenticated API only with the token. A fine-tune whose trainer exits
non-zero reports `JobFailed` with the container's exit code and last log line."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from substratus_local import node_config
from substratus_local.stack import REPO_ROOT, Stack
from substratus_local.testing import ServiceProcess, eventually

# The reference images' shared code (images/common), to read the stored model as the server does.
sys.path.insert(0, str(REPO_ROOT / "images" / "common"))
from substratus_workload import ngram

EXAMPLES = REPO_ROOT / "examples" / "local"
ALIAS = "registry.substratus.local"
VERSION = re.search(r'^version = "(.+)"', (REPO_ROOT / "services/watcher/pyproject.toml").read_text(), re.M)
STORAGE_IMAGE = f"{ALIAS}/substratusai/substratus-storage:{VERSION.group(1) if VERSION else 'latest'}"
SERVICES = ("watcher", "status-writer", "trainer", "server-manager", "notebook-manager")
READY_S = 600  # cold: image pulls of ~60-200 MB layers onto the node, on a busy 2-core machine


def images_sh(stack: Stack, what: str) -> None:
    """Build (cached in buildah's store) and push the images to this stack's registry."""
    env = {
        **os.environ,
        "REGISTRY": stack.registry,
        "PUSH": "1",
        "IMAGE_REPOSITORY": f"{ALIAS}/substratusai",
    }
    result = subprocess.run(
        [str(REPO_ROOT / "tools" / "images.sh"), what],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, f"tools/images.sh {what} failed:\n{result.stderr[-4000:]}"


@pytest.fixture(scope="module")
def pushed(real_node_stack: Stack) -> Stack:
    # The storage helper image and the five reference images.
    images_sh(real_node_stack, "storage")
    images_sh(real_node_stack, "workloads")
    return real_node_stack


@pytest.fixture
def platform(pushed: Stack, tmp_path: Path) -> Iterator[Stack]:
    started = []
    for service in SERVICES:
        proc = ServiceProcess(pushed, service, tmp_path, {"SUBSTRATUS_STORAGE_IMAGE": STORAGE_IMAGE})
        started.append(proc)
        proc.start()
    yield pushed
    for proc in started:
        proc.stop()


def storage_secret(stack: Stack, namespace: str) -> None:
    """The optional Secret the storage helper reads its S3 keys from (as a user creates it)."""
    stack.kubectl(
        "create", "secret", "generic", "substratus-storage", "-n", namespace,
        f"--from-literal=AWS_ACCESS_KEY_ID={stack.env['AWS_ACCESS_KEY_ID']}",
        f"--from-literal=AWS_SECRET_ACCESS_KEY={stack.env['AWS_SECRET_ACCESS_KEY']}",
    )  # fmt: skip


def get(stack: Stack, namespace: str, kind: str, name: str) -> dict[str, Any]:
    result = stack.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), {})


def wait_ready(stack: Stack, namespace: str, kind: str, name: str) -> dict[str, Any]:
    def ready() -> dict[str, Any]:
        obj = get(stack, namespace, kind, name)
        assert (obj.get("status") or {}).get("ready") is True, f"{kind}/{name}: {(obj.get('status') or {})}"
        return obj

    return eventually(ready, READY_S, f"{kind}/{name} ready")


class PortForward:
    """`kubectl port-forward <target> :<port>`; the local port it chose."""

    def __init__(self, stack: Stack, namespace: str, target: str, port: int) -> None:
        kubectl = str(Path(stack.state.bin_dirs[0]) / "kubectl")
        self.proc = subprocess.Popen(
            [kubectl, "port-forward", "-n", namespace, target, f":{port}"],
            env={**os.environ, **stack.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        found: list[int] = []
        seen: list[str] = []

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                seen.append(line)
                match = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", line)
                if match and not found:
                    found.append(int(match.group(1)))

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        eventually(lambda: found, 30, f"kubectl port-forward {target} (output: {''.join(seen)!r})")
        self.url = f"http://127.0.0.1:{found[0]}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def artifacts_prefix(namespace: str, plural: str, name: str) -> str:
    """DESIGN.md, "Artifacts": md5("clusters/<cluster>/namespaces/<ns>/<plural>/<name>")/artifacts."""
    path = f"clusters/local/namespaces/{namespace}/{plural}/{name}"
    return hashlib.md5(path.encode(), usedforsecurity=False).hexdigest() + "/artifacts"


# Building and pushing the images (cold: minutes) happens in the first test's setup.
@pytest.mark.timeout(2400)
def test_examples_local_run_for_real(platform: Stack, node_namespace: str) -> None:
    stack, ns = platform, node_namespace
    storage_secret(stack, ns)
    stack.kubectl("apply", "-n", ns, "-f", str(EXAMPLES))
    for kind, name in [
        ("dataset", "lighthouse"),
        ("model", "ngram-base"),
        ("model", "ngram-lighthouse"),
        ("server", "ngram-lighthouse"),
        ("notebook", "ngram-lighthouse"),
    ]:
        wait_ready(stack, ns, kind, name)

    # The workloads ran on the real node, not on a kwok node.
    pods = json.loads(stack.kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]
    nodes = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods}
    assert set(nodes.values()) == {node_config.NODE_NAME}, nodes

    # The bytes went through SeaweedFS: the dataset's file and both models' model.json.
    s3 = boto3.client("s3", endpoint_url=stack.env["S3_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
    bucket = stack.env["SUBSTRATUS_BUCKET_URL"].removeprefix("s3://")

    def keys(prefix: str) -> list[str]:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")
        return sorted(o["Key"].removeprefix(prefix + "/") for o in listed.get("Contents", []))

    data_prefix = artifacts_prefix(ns, "datasets", "lighthouse")
    tuned_prefix = artifacts_prefix(ns, "models", "ngram-lighthouse")
    base_prefix = artifacts_prefix(ns, "models", "ngram-base")
    assert keys(data_prefix) == ["lighthouse.txt"]
    assert keys(tuned_prefix) == ["model.json"]
    assert keys(base_prefix) == ["model.json"]
    body = s3.get_object(Bucket=bucket, Key=f"{tuned_prefix}/model.json")["Body"].read().decode()
    tuned = ngram.from_json(body)
    base = ngram.from_json(s3.get_object(Bucket=bucket, Key=f"{base_prefix}/model.json")["Body"].read().decode())
    data = s3.get_object(Bucket=bucket, Key=f"{data_prefix}/lighthouse.txt")["Body"].read().decode()
    assert tuned.characters == base.characters + 4 * len(data)  # weight 4 in examples/local

    # A completion through port-forward: the fine-tuned model's continuation, not the base's.
    forward = PortForward(stack, ns, "service/ngram-lighthouse-server", 8080)
    try:
        prompt = "The lighthouse k"
        response = httpx.post(f"{forward.url}/v1/completions", json={"prompt": prompt, "max_tokens": 24}, timeout=30)
    finally:
        forward.close()
    assert response.status_code == 200, response.text
    text = response.json()["choices"][0]["text"]
    assert len(text) == 24
    assert text == ngram.generate(tuned, prompt, 24)
    assert text != ngram.generate(base, prompt, 24)

    # The Notebook: real Jupyter, its API open only with the token of the Notebook's Secret.
    secret = get(stack, ns, "secret", "ngram-lighthouse-notebook-token")
    token = base64.b64decode(secret["data"]["token"]).decode()
    forward = PortForward(stack, ns, "pod/ngram-lighthouse-notebook", 8888)
    try:
        version = httpx.get(f"{forward.url}/api", timeout=30)
        refused = httpx.get(f"{forward.url}/api/status", timeout=30)
        wrong = httpx.get(f"{forward.url}/api/status", headers={"Authorization": "token nope"}, timeout=30)
        status = httpx.get(f"{forward.url}/api/status", headers={"Authorization": f"token {token}"}, timeout=30)
        kernel = httpx.post(f"{forward.url}/api/kernels", headers={"Authorization": f"token {token}"}, timeout=60)
    finally:
        forward.close()
    assert version.status_code == 200
    assert "version" in version.json()
    assert refused.status_code == 403
    assert wrong.status_code == 403
    assert status.status_code == 200, status.text
    assert kernel.status_code == 201, kernel.text
    assert kernel.json()["name"] == "python3"


BROKEN = """
apiVersion: substratus.ai/v1
kind: Model
metadata: {name: ngram-broken}
spec:
  image: registry.substratus.local/substratus/model-trainer:latest
  model: {name: ngram-base}
  dataset: {name: lighthouse}
  params: {weight: 0}
"""


@pytest.mark.timeout(1800)
def test_a_failing_trainer_reports_its_exit_code_and_last_line(platform: Stack, node_namespace: str) -> None:
    stack, ns = platform, node_namespace
    storage_secret(stack, ns)
    stack.kubectl(
        "apply", "-n", ns, "-f", str(EXAMPLES / "01-dataset.yaml"), "-f", str(EXAMPLES / "02-model-base.yaml")
    )
    wait_ready(stack, ns, "dataset", "lighthouse")
    wait_ready(stack, ns, "model", "ngram-base")
    stack.kubectl("apply", "-n", ns, "-f", "-", input=BROKEN)

    def failed() -> dict[str, Any]:
        cond = condition(get(stack, ns, "model", "ngram-broken"), "Complete")
        assert cond.get("reason") == "JobFailed", cond
        return cond

    cond = eventually(failed, READY_S, "Model ngram-broken JobFailed")
    assert cond["status"] == "False"
    assert "exited with code 2" in cond["message"], cond["message"]
    assert "param 'weight' must be at least 1, got 0" in cond["message"], cond["message"]
