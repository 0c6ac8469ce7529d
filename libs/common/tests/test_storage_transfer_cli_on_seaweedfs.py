"""The ``substratus-storage`` console script, with the env a portable Pod gets, on the stack's
SeaweedFS: upload-on-exit stores a run's artifacts on SIGTERM, download brings them back."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from substratus_common.storage import helper
from substratus_local.stack import BUCKET, Stack

SCRIPT = str(Path(sys.executable).parent / "substratus-storage")


def test_artifacts_uploaded_on_exit_download_identically(stack: Stack, tmp_path: Path) -> None:
    env = {**os.environ, **stack.env}  # SUBSTRATUS_BUCKET_URL, SUBSTRATUS_S3_ENDPOINT_URL, AWS_* as in a Pod
    url = f"s3://{BUCKET}/{secrets.token_hex(8)}/artifacts"
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    upload = subprocess.Popen(
        [SCRIPT, "upload-on-exit", str(artifacts), url], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert upload.stderr is not None
        for line in upload.stderr:
            if helper.WAITING in line:
                break
        else:
            raise AssertionError(f"upload-on-exit exited early: {upload.wait()}")
        (artifacts / "adapter").mkdir()
        (artifacts / "adapter" / "weights.bin").write_bytes(secrets.token_bytes(2 * 1024 * 1024))
        (artifacts / "metrics.json").write_text('{"loss": 0.1}')
        upload.send_signal(signal.SIGTERM)
        _, stderr = upload.communicate(timeout=120)
    finally:
        if upload.poll() is None:
            upload.kill()
            upload.communicate()
    assert upload.returncode == 0, stderr

    model = tmp_path / "model"
    download = subprocess.run(
        [SCRIPT, "download", url, str(model), f"s3://{BUCKET}/{secrets.token_hex(8)}/none", str(tmp_path / "data")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert download.returncode == 0, download.stderr
    assert (model / "adapter" / "weights.bin").read_bytes() == (artifacts / "adapter" / "weights.bin").read_bytes()
    assert (model / "metrics.json").read_text() == '{"loss": 0.1}'
    assert list((tmp_path / "data").iterdir()) == []
