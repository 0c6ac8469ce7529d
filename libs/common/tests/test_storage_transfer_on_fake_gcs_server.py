"""A directory with a file past gcloud-aio-storage's simple-upload limit (a resumable upload) goes to
fake-gcs-server and comes back byte-identical."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from substratus_common import config
from substratus_common.storage import gcs, transfer
from substratus_local.testing import fake_gcs_server

BUCKET = "substratus-transfer"


@pytest.fixture(scope="module")
def fake_gcs() -> Iterator[str]:
    """fake-gcs-server on a free port with the bucket; its URL."""
    with fake_gcs_server(BUCKET) as url:
        yield url


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


async def test_a_large_file_goes_up_resumably_and_comes_back_identical(fake_gcs: str, tmp_path: Path) -> None:
    source = tmp_path / "artifacts"
    (source / "model").mkdir(parents=True)
    (source / "model" / "weights.bin").write_bytes(secrets.token_bytes(6 * 1024 * 1024 + 3))  # > 5 MB: resumable
    (source / "config.json").write_text("{}")
    settings = config.Settings(bucket_url="s3://substratus", gcs_endpoint_url=fake_gcs)
    store, prefix = transfer.storage_for(f"gs://{BUCKET}/{secrets.token_hex(8)}/artifacts", settings)
    assert isinstance(store, gcs.GCSStorage)
    try:
        up = await transfer.upload_dir(store, source, prefix, backoff_s=())
        assert up.files == 2
        down = await transfer.download_prefix(store, prefix, tmp_path / "back", backoff_s=())
        assert down.files == 2
    finally:
        await store.close()
    assert _digests(tmp_path / "back") == _digests(source)
