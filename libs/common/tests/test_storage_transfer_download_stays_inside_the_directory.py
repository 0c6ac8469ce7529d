"""A listed key that would land outside the target directory fails the download before anything is
written; a "folder" key (ending in ``/``, as consoles make them) becomes a directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from substratus_common.storage import base, errors, local, transfer


class Listed(local.LocalStorage):
    """A local bucket that also lists ``extra`` keys (which S3 or GCS could hold, a directory cannot)."""

    def __init__(self, root: Path, extra: list[str]) -> None:
        super().__init__(root)
        self.extra = extra

    async def list_objects(self, prefix: str) -> AsyncIterator[base.ObjectInfo]:
        async for info in super().list_objects(prefix):
            yield info
        for key in self.extra:
            yield base.ObjectInfo(key=key, size=0, md5_hex=None)


@pytest.mark.parametrize("key", ["p/../escape", "p/a/../../escape", "p//double", "p/./dot"])
async def test_a_key_outside_the_directory_is_refused(tmp_path: Path, key: str) -> None:
    store = Listed(tmp_path / "bucket", [key])
    await store.put("p/ok", b"fine")
    with pytest.raises(errors.StorageRefused, match="not a path inside") as caught:
        await transfer.download_prefix(store, "p", tmp_path / "out", backoff_s=())
    assert not caught.value.retryable
    assert not (tmp_path / "out" / "ok").exists()
    assert not (tmp_path / "escape").exists()


async def test_a_folder_key_becomes_a_directory(tmp_path: Path) -> None:
    store = Listed(tmp_path / "bucket", ["p/empty-folder/"])
    await store.put("p/ok", b"fine")
    done = await transfer.download_prefix(store, "p", tmp_path / "out", backoff_s=())
    assert done.files == 1
    assert (tmp_path / "out" / "empty-folder").is_dir()
    assert (tmp_path / "out" / "ok").read_bytes() == b"fine"
