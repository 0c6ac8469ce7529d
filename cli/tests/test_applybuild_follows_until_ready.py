"""With ``--wait ready`` (the default) ``kubectl applybuild`` follows the resource past the upload:
it prints each condition change, streams the build Job's logs once the Job exists, and stops
when the resource is ready (or says why the build failed)."""

from __future__ import annotations

import io
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from substratus_cli import applybuild


@dataclass
class Scripted:
    """A kubectl whose ``get`` walks through a list of statuses (the last one repeats)."""

    statuses: list[dict[str, Any]]
    applied: dict[str, Any] = field(default_factory=dict)
    log_procs: list[subprocess.Popen[str]] = field(default_factory=list)
    gets: int = 0

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.applied = obj
        return obj

    def get(self, kind: str, name: str) -> dict[str, Any]:
        status = self.statuses[min(self.gets, len(self.statuses) - 1)]
        self.gets += 1
        rid = self.applied["spec"]["build"]["upload"]["requestID"]
        md5 = self.applied["spec"]["build"]["upload"]["md5Checksum"]
        upload = {"requestID": rid, "storedMD5Checksum": md5}
        return {**self.applied, "status": {"buildUpload": upload, **status}}

    def job_exists(self, name: str) -> bool:
        assert name == "m-model-bld"
        return self.gets >= 2

    def follow_logs(self, job: str, console: Console) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-c", "print('step 1/2: FROM scratch')"], text=True)
        self.log_procs.append(proc)
        return proc


def _cond(type_: str, status: str, reason: str, message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


UPLOADED = _cond("Uploaded", "True", "UploadFound", "stored")


def _run(tmp_path: Path, statuses: list[dict[str, Any]]) -> tuple[Scripted, str]:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    kubectl = Scripted(statuses)
    out = io.StringIO()
    flow = applybuild.Flow(kubectl, Console(file=out, markup=False, width=200), poll_s=0.01, timeout_s=5)  # type: ignore[arg-type]
    manifest = {"apiVersion": "substratus.ai/v1", "kind": "Model", "metadata": {"name": "m"}, "spec": {}}
    try:
        flow.run(manifest, ctx, "ready")
    finally:
        for proc in kubectl.log_procs:
            proc.wait(timeout=10)
    return kubectl, out.getvalue()


def test_follows_the_build_until_ready(tmp_path: Path) -> None:
    kubectl, out = _run(
        tmp_path,
        [
            {"conditions": [UPLOADED]},
            {"conditions": [UPLOADED, _cond("Built", "False", "JobNotComplete", "building")]},
            {"conditions": [UPLOADED, _cond("Built", "False", "JobNotComplete", "building")]},
            {"conditions": [UPLOADED, _cond("Built", "True", "JobComplete")], "ready": True},
        ],
    )
    assert "storage already holds this build context" in out
    assert "Built=False JobNotComplete: building" in out
    assert "model/m is ready" in out
    assert len(kubectl.log_procs) == 1
    assert kubectl.log_procs[0].returncode is not None


def test_a_failed_build_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(applybuild.ApplyBuildError, match="the build failed: kaniko exited 1"):
        _run(tmp_path, [{"conditions": [UPLOADED, _cond("Built", "False", "JobFailed", "kaniko exited 1")]}])
