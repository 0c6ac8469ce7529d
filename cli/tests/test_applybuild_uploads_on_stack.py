"""On the stack: ``kubectl applybuild -f model.yaml DIR`` tars DIR, applies the Model with
``spec.build.upload``, uploads through the signed URL and ends with ``Uploaded=True``; running it
again on the same directory uploads nothing (storage already holds that MD5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from substratus_cli import applybuild
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess

MODEL = "apiVersion: substratus.ai/v1\nkind: Model\nmetadata: {name: built}\nspec: {params: {epochs: 1}}\n"


def _applybuild(stack: Stack, namespace: str, manifest: Path, ctx: Path) -> subprocess.CompletedProcess[str]:
    kubectl = str(Path(stack.state.bin_dirs[0]) / "kubectl")
    command = [sys.executable, "-m", "substratus_cli.applybuild", "-f", str(manifest), str(ctx)]
    command += ["-n", namespace, "--wait", "uploaded", "--timeout", "90", "--kubectl", kubectl]
    env = {**os.environ, **stack.env, "COLUMNS": "120"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)


def test_applybuild_uploads_once_and_ends_uploaded(
    stack: Stack, namespace: str, run_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    for service in ("watcher", "status-writer", "uploader"):
        run_service(service)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY app.py /\n")
    (ctx / "app.py").write_text("print('built')\n")
    (ctx / "notes.tmp").write_text("ignored")
    (ctx / ".dockerignore").write_text("*.tmp\n")
    manifest = tmp_path / "model.yaml"
    manifest.write_text(MODEL)
    md5 = applybuild.make_tarball(ctx, tmp_path).md5

    first = _applybuild(stack, namespace, manifest, ctx)
    assert first.returncode == 0, first.stderr
    assert "uploaded; waiting for the uploader to verify it" in first.stderr
    assert "Uploaded=True UploadFound" in first.stderr
    obj = json.loads(stack.kubectl("get", "model", "built", "-n", namespace, "-o", "json").stdout)
    assert obj["spec"]["build"]["upload"]["md5Checksum"] == md5
    request_id = obj["spec"]["build"]["upload"]["requestID"]
    assert obj["status"]["buildUpload"] == {"requestID": request_id, "storedMD5Checksum": md5}
    assert "X-Amz-Signature" not in first.stderr + first.stdout

    second = _applybuild(stack, namespace, manifest, ctx)
    assert second.returncode == 0, second.stderr
    assert "storage already holds this build context; nothing to upload" in second.stderr
    assert "uploaded; waiting" not in second.stderr
    again = json.loads(stack.kubectl("get", "model", "built", "-n", namespace, "-o", "json").stdout)
    assert again["spec"]["build"]["upload"]["requestID"] != request_id
    assert again["status"]["buildUpload"]["storedMD5Checksum"] == md5


def test_a_directory_without_a_dockerfile_fails_before_applying(stack: Stack, namespace: str, tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    manifest = tmp_path / "model.yaml"
    manifest.write_text(MODEL)
    result = _applybuild(stack, namespace, manifest, tmp_path / "ctx")
    assert result.returncode == 1
    assert "no Dockerfile" in result.stderr
    assert stack.kubectl("get", "model", "built", "-n", namespace, check=False).returncode != 0
