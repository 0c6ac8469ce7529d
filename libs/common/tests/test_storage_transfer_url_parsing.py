"""Bucket URLs with a path name the bucket's backend and a key prefix, for any bucket."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from substratus_common import config
from substratus_common.storage import gcs, local, s3, transfer


def test_an_s3_url_in_the_configured_bucket_keeps_the_settings() -> None:
    settings = config.Settings(bucket_url="s3://substratus", s3_endpoint_url="http://s3.local:8333")
    bucket_settings, prefix = transfer.split_url("s3://substratus/ab12/artifacts/", settings)
    assert prefix == "ab12/artifacts"
    assert bucket_settings is settings


def test_another_bucket_keeps_endpoint_and_region() -> None:
    settings = config.Settings(bucket_url="s3://substratus", s3_endpoint_url="http://s3.local:8333", s3_region="eu")
    store, prefix = transfer.storage_for("s3://other-bucket/a/b", settings)
    assert isinstance(store, s3.S3Storage)
    assert (store.url, prefix) == ("s3://other-bucket", "a/b")
    bucket_settings, _ = transfer.split_url("s3://other-bucket/a/b", settings)
    assert (bucket_settings.s3_endpoint_url, bucket_settings.s3_region) == ("http://s3.local:8333", "eu")


def test_a_gs_url_and_a_whole_bucket() -> None:
    settings = config.Settings(bucket_url="s3://substratus")
    store, prefix = transfer.storage_for("gs://models", settings)
    assert isinstance(store, gcs.GCSStorage)
    assert (store.url, prefix) == ("gs://models", "")


def test_file_urls_inside_the_configured_directory_are_prefixes(tmp_path: Path) -> None:
    settings = config.Settings(bucket_url=(tmp_path / "bucket").as_uri())
    store, prefix = transfer.storage_for(f"{(tmp_path / 'bucket').as_uri()}/ab/artifacts", settings)
    assert isinstance(store, local.LocalStorage)
    assert (store.root, prefix) == (tmp_path / "bucket", "ab/artifacts")
    elsewhere, prefix = transfer.storage_for((tmp_path / "other").as_uri(), settings)
    assert isinstance(elsewhere, local.LocalStorage)
    assert (elsewhere.root, prefix) == (tmp_path / "other", "")


@pytest.mark.parametrize("url", ["http://x/y", "s3:///no-bucket", "file://host/dir", "bucket/key"])
def test_urls_that_name_no_bucket_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="not a bucket URL"):
        transfer.split_url(url, config.Settings())


def test_the_cli_refuses_a_bad_url_before_moving_anything(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "substratus_common.storage.helper", "download", "http://x/y", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "not a bucket URL" in result.stderr
    assert not (tmp_path / "d").exists()
