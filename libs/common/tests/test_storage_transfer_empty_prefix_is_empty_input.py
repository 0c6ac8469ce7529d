"""Downloading a prefix with nothing under it gives an empty directory, not an error.

A base Model with no artifacts is a user error the trainer already gates by readiness; the helper
treats an empty prefix as an empty input, and a neighbouring key that merely starts alike is not
under the prefix.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from substratus_common.storage import local, transfer


async def test_an_empty_prefix_downloads_nothing(tmp_path: Path) -> None:
    store = local.LocalStorage(tmp_path / "bucket")
    await store.put("abc-other/artifacts/x", b"not ours")  # starts like the prefix, is not under it
    done = await transfer.download_prefix(store, "abc", tmp_path / "model")
    assert (done.files, done.bytes) == (0, 0)
    assert (tmp_path / "model").is_dir()
    assert list((tmp_path / "model").iterdir()) == []


def test_the_cli_exits_0_for_an_empty_prefix(tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "substratus_common.storage.helper",
            "download",
            f"{bucket.as_uri()}/abc/artifacts",
            str(tmp_path / "model"),
        ],
        env={"SUBSTRATUS_BUCKET_URL": bucket.as_uri(), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "nothing stored under" in result.stderr
    assert list((tmp_path / "model").iterdir()) == []
