"""What a user of ``make up`` sees: ``kubectl applybuild -f model.yaml DIR`` uploads DIR, the builder
(local executor, as the stack runs it) really builds it with buildah and pushes it to the stack's
registry, ``spec.image`` is set, and the Model runs its modeller Job with that image until ready."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from substratus_cli import applybuild
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess

MODEL = "apiVersion: substratus.ai/v1\nkind: Model\nmetadata: {name: mine}\nspec: {params: {epochs: 1}}\n"
ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"


def test_applybuild_builds_a_real_image_locally(
    stack: Stack, namespace: str, run_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    for service in ("watcher", "status-writer", "uploader", "trainer"):
        run_service(service)
    run_service("builder", env={"SUBSTRATUS_BUILDER_EXECUTOR": "local", "SUBSTRATUS_REGISTRY_INSECURE": "true"})
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY train.py /train.py\n")
    (ctx / "train.py").write_text("print('training')\n")
    manifest = tmp_path / "model.yaml"
    manifest.write_text(MODEL)
    md5 = applybuild.make_tarball(ctx, tmp_path).md5

    kubectl = str(Path(stack.state.bin_dirs[0]) / "kubectl")
    command = [sys.executable, "-m", "substratus_cli.applybuild", "-f", str(manifest), str(ctx), "-n", namespace]
    command += ["--wait", "ready", "--timeout", "150", "--kubectl", kubectl]
    env = {**os.environ, **stack.env, "COLUMNS": "120"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "Built=True JobComplete" in result.stderr
    assert "model/mine is ready" in result.stderr

    model = json.loads(stack.kubectl("get", "model", "mine", "-n", namespace, "-o", "json").stdout)
    repository = f"local-model-{namespace}-mine"
    image = f"{stack.registry}/{repository}:{md5}"
    assert model["spec"]["image"] == image
    response = httpx.get(f"http://{stack.registry}/v2/{repository}/manifests/{md5}", headers={"Accept": ACCEPT})
    assert response.status_code == 200, response.text
    job = json.loads(stack.kubectl("get", "job", "mine-modeller", "-n", namespace, "-o", "json").stdout)
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == image
