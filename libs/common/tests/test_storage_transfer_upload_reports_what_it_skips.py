"""What an upload cannot store (a broken link, an empty directory, a link loop) is reported, not
silently dropped; everything else still goes up."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from substratus_common.storage import local, transfer


async def test_skipped_entries_are_reported_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = tmp_path / "artifacts"
    (source / "sub" / "empty").mkdir(parents=True)
    (source / "sub" / "kept.txt").write_text("kept")
    os.symlink("does-not-exist", source / "broken")
    os.symlink("..", source / "sub" / "loop")  # a link back to the top: walked once only
    store = local.LocalStorage(tmp_path / "bucket")
    with caplog.at_level(logging.WARNING, logger="substratus_common.storage.transfer"):
        done = await transfer.upload_dir(store, source, "p")
    assert done.files == 1
    assert [info.key async for info in store.list_objects("p/")] == ["p/sub/kept.txt"]
    reasons = "\n".join(done.skipped)
    assert len(done.skipped) == 3, reasons
    assert f"{source / 'broken'}:" in reasons
    assert f"{source / 'sub' / 'empty'}: an empty directory" in reasons
    assert f"{source / 'sub' / 'loop'}: a link to a directory already uploaded" in reasons
    assert sum("not uploaded" in r.getMessage() for r in caplog.records) == 3
