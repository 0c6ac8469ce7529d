"""``substratus-storage download`` exits 1 with the URL and the reason when a transfer fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from substratus_common.storage import helper


def test_an_unwritable_target_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    (bucket / "p" / "artifacts").mkdir(parents=True)
    (bucket / "p" / "artifacts" / "weights.bin").write_bytes(b"w")
    blocker = tmp_path / "model"
    blocker.write_text("a file where the directory should be")
    url = f"{bucket.as_uri()}/p/artifacts"
    result = subprocess.run(
        [sys.executable, "-m", "substratus_common.storage.helper", "download", url, str(blocker)],
        env={"SUBSTRATUS_BUCKET_URL": bucket.as_uri(), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == helper.EXIT_FAILED, result.stderr
    assert f"download {url} to {blocker} failed" in result.stderr
    assert "cannot create" in result.stderr
    assert blocker.read_text() == "a file where the directory should be"
