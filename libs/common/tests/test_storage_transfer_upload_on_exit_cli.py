"""``substratus-storage upload-on-exit`` waits for SIGTERM, then uploads the directory and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from substratus_common.storage import helper


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    path = tmp_path / "bucket"
    path.mkdir()
    return path


def _start(directory: Path, url: str, bucket: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "substratus_common.storage.helper", "upload-on-exit", str(directory), url],
        env={**os.environ, "SUBSTRATUS_BUCKET_URL": bucket.as_uri()},
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until_waiting(proc: subprocess.Popen[str]) -> Iterator[str]:
    """Lines of stderr up to the one saying the helper handles signals (read, not slept for)."""
    assert proc.stderr is not None
    for line in proc.stderr:
        yield line
        if helper.WAITING in line:
            return
    pytest.fail(f"the helper exited before waiting for a signal (rc {proc.wait()})")


def test_sigterm_uploads_the_directory_then_exits_0(tmp_path: Path, bucket: Path) -> None:
    artifacts = tmp_path / "artifacts"
    (artifacts / "out").mkdir(parents=True)
    proc = _start(artifacts, f"{bucket.as_uri()}/p1/artifacts", bucket)
    try:
        list(_wait_until_waiting(proc))
        # The workload writes while the helper waits: what is there at SIGTERM is what goes up.
        (artifacts / "out" / "model.bin").write_bytes(b"\x00weights" * 1000)
        (artifacts / "log.txt").write_text("done\n")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert (bucket / "p1/artifacts/out/model.bin").read_bytes() == b"\x00weights" * 1000
    assert (bucket / "p1/artifacts/log.txt").read_text() == "done\n"
    assert "uploaded" in stderr


def test_a_failed_upload_exits_non_zero(tmp_path: Path, bucket: Path) -> None:
    proc = _start(tmp_path / "missing", f"{bucket.as_uri()}/p2/artifacts", bucket)
    try:
        list(_wait_until_waiting(proc))
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == helper.EXIT_FAILED
    assert "is not a directory" in stderr
