"""upload_dir then download_prefix gives back the same tree: nested paths, empty and linked files."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from substratus_common.storage import local, transfer


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


async def test_a_nested_directory_comes_back_identical(tmp_path: Path) -> None:
    source = tmp_path / "artifacts"
    (source / "checkpoints" / "step-1").mkdir(parents=True)
    (source / "tokenizer").mkdir()
    (source / "config.json").write_text('{"a": 1}')
    (source / "checkpoints" / "step-1" / "weights.bin").write_bytes(secrets.token_bytes(3 * 1024 * 1024 + 7))
    (source / "checkpoints" / "step-1" / "empty").write_bytes(b"")
    (source / "tokenizer" / "vocab ü.txt").write_text("hello\n")
    os.symlink("../config.json", source / "tokenizer" / "config-link.json")  # uploaded as the target's bytes
    store = local.LocalStorage(tmp_path / "bucket")

    up = await transfer.upload_dir(store, source, "ab12/artifacts/")
    assert up.files == 5
    assert up.skipped == []
    assert up.bytes == sum(len(b) for b in _tree(source).values())
    keys = [info.key async for info in store.list_objects("ab12/artifacts/")]
    assert keys == sorted(f"ab12/artifacts/{k}" for k in _tree(source))

    target = tmp_path / "model"
    down = await transfer.download_prefix(store, "ab12/artifacts", target)
    assert down.files == 5
    assert _tree(target) == _tree(source)
    assert not [p for p in target.rglob(".*")]  # no temporary files left behind


async def test_an_empty_directory_uploads_nothing(tmp_path: Path) -> None:
    (tmp_path / "artifacts").mkdir()
    store = local.LocalStorage(tmp_path / "bucket")
    done = await transfer.upload_dir(store, tmp_path / "artifacts", "p/artifacts")
    assert (done.files, done.bytes, done.skipped) == (0, 0, [])
    assert [info async for info in store.list_objects("")] == []
