"""A transfer retries a file after a retryable error, stops retrying a permanent one, and tries every
other file before it reports how many failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from substratus_common.storage import errors, local, transfer


class Flaky(local.LocalStorage):
    """A local bucket whose uploads of some keys fail: ``failures[key]`` errors first, in order."""

    def __init__(self, root: Path, failures: dict[str, list[errors.StorageError]]) -> None:
        super().__init__(root)
        self.failures = failures
        self.attempts: dict[str, int] = {}

    async def upload_file(self, key: str, path: Path) -> None:
        self.attempts[key] = self.attempts.get(key, 0) + 1
        pending = self.failures.get(key) or []
        if pending:
            raise pending.pop(0)
        await super().upload_file(key, path)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "artifacts"
    path.mkdir()
    for name in ("a", "b", "c"):
        (path / name).write_text(name)
    return path


async def test_a_retryable_error_is_retried(tmp_path: Path, source: Path) -> None:
    store = Flaky(tmp_path / "bucket", {"p/b": [errors.StorageUnavailable("503"), errors.StorageUnavailable("503")]})
    done = await transfer.upload_dir(store, source, "p", backoff_s=(0, 0))
    assert done.files == 3
    assert store.attempts == {"p/a": 1, "p/b": 3, "p/c": 1}
    assert (tmp_path / "bucket/p/b").read_text() == "b"


async def test_retries_are_bounded_and_the_other_files_still_go_up(tmp_path: Path, source: Path) -> None:
    store = Flaky(tmp_path / "bucket", {"p/b": [errors.StorageUnavailable("503")] * 5})
    with pytest.raises(transfer.TransferFailed) as caught:
        await transfer.upload_dir(store, source, "p", backoff_s=(0, 0), concurrency=1)
    assert store.attempts["p/b"] == 3
    assert caught.value.retryable
    assert "1 of 3 files failed" in caught.value.message
    assert sorted(p.name for p in (tmp_path / "bucket/p").iterdir()) == ["a", "c"]


async def test_a_permanent_error_is_not_retried(tmp_path: Path, source: Path) -> None:
    store = Flaky(tmp_path / "bucket", {"p/a": [errors.StorageRefused("403 AccessDenied", status=403)]})
    with pytest.raises(transfer.TransferFailed) as caught:
        await transfer.upload_dir(store, source, "p", backoff_s=(0, 0))
    assert store.attempts["p/a"] == 1
    assert not caught.value.retryable
    assert "403 AccessDenied" in caught.value.message
