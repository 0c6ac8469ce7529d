"""The local-directory backend: stat, read, and signed PUTs it refuses like a storage server would."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from pathlib import Path

import pytest

from substratus_common import config
from substratus_common.storage import backends, base, errors, gcs, local, s3


def _md5(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> local.LocalStorage:
    return local.LocalStorage(tmp_path / "bucket")


async def test_a_missing_object_has_no_stat_and_no_md5(store: local.LocalStorage) -> None:
    assert await store.stat("a/b.tar.gz") is None
    assert await store.exists("a/b.tar.gz") is False
    assert await base.md5_of(store, "a/b.tar.gz") is None


async def test_put_then_stat_read_and_md5(store: local.LocalStorage) -> None:
    body = b"x" * (base.CHUNK_BYTES + 10)
    await store.put("p/uploads/one.tar.gz", body)
    info = await store.stat("p/uploads/one.tar.gz")
    assert info == base.ObjectInfo(key="p/uploads/one.tar.gz", size=len(body), md5_hex=None)
    assert b"".join([chunk async for chunk in store.read("p/uploads/one.tar.gz")]) == body
    assert await base.md5_of(store, "p/uploads/one.tar.gz") == _md5(body)


async def test_signed_put_accepts_exactly_the_signed_body(store: local.LocalStorage) -> None:
    body = b"a tarball"
    signed = await store.sign_put("p/uploads/x.tar.gz", _md5(body), 60)
    assert signed.method == "PUT"
    assert signed.headers == {
        "Content-Type": "application/octet-stream",
        "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
    }
    now = dt.datetime.now(dt.UTC)
    assert now < signed.expiration <= now + dt.timedelta(seconds=61)
    with pytest.raises(errors.UploadRefused, match="BadDigest"):
        await store.accept_put(signed.url, b"another body", signed.headers)
    other = {**signed.headers, "Content-MD5": base64.b64encode(hashlib.md5(b"x").digest()).decode()}
    with pytest.raises(errors.UploadRefused, match="SignatureDoesNotMatch"):
        await store.accept_put(signed.url, b"x", other)
    assert await store.exists("p/uploads/x.tar.gz") is False
    await store.accept_put(signed.url, body, signed.headers)
    assert await base.md5_of(store, "p/uploads/x.tar.gz") == _md5(body)


async def test_a_second_process_on_the_same_directory_checks_the_signature(tmp_path: Path) -> None:
    signer, server = local.LocalStorage(tmp_path), local.LocalStorage(tmp_path)
    signed = await signer.sign_put("k.tar.gz", _md5(b"b"), 60)
    await server.accept_put(signed.url, b"b", signed.headers)
    assert await server.exists("k.tar.gz")


async def test_an_expired_url_is_refused(store: local.LocalStorage) -> None:
    signed = await store.sign_put("late.tar.gz", _md5(b"late"), 1)
    later = signed.expiration + dt.timedelta(seconds=1)
    with pytest.raises(errors.UploadRefused, match="expired"):
        await store.accept_put(signed.url, b"late", signed.headers, now=later)
    assert await store.exists("late.tar.gz") is False


async def test_keys_outside_the_bucket_and_long_expiries_are_refused(store: local.LocalStorage) -> None:
    with pytest.raises(errors.StorageRefused):
        await store.stat("../escape")
    with pytest.raises(errors.StorageRefused):
        await store.put(local.KEY_FILE, b"x")
    with pytest.raises(ValueError, match="900"):
        await store.sign_put("k", _md5(b""), 16 * 60)
    with pytest.raises(ValueError, match="MD5"):
        await store.sign_put("k", "not-an-md5", 60)


def test_the_signed_url_is_not_in_repr() -> None:
    signed = base.SignedPut(
        url="https://secret.example/?X-Amz-Signature=s3cr3t",
        method="PUT",
        headers={},
        expiration=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        key="k",
    )
    assert "s3cr3t" not in repr(signed)
    assert "s3cr3t" not in str(signed)


def test_the_backend_follows_the_bucket_url(tmp_path: Path) -> None:
    def pick(url: str) -> base.Storage:
        return backends.from_settings(config.Settings(bucket_url=url, s3_endpoint_url="http://127.0.0.1:1"))

    assert isinstance(pick("s3://bkt"), s3.S3Storage)
    assert isinstance(pick("gs://bkt"), gcs.GCSStorage)
    chosen = pick(tmp_path.as_uri())
    assert isinstance(chosen, local.LocalStorage)
    assert chosen.root == tmp_path.resolve()
    for bad in ("s3://", "s3://bkt/prefix", "file://relative/dir", "http://bkt"):
        with pytest.raises(ValueError, match="bucket_url"):
            pick(bad)


def test_errors_say_whether_a_retry_can_help() -> None:
    assert errors.from_status("stat k", 503).retryable
    assert errors.from_status("stat k", 429).retryable
    assert errors.from_status("stat k", 0).retryable
    assert not errors.from_status("stat k", 403, "AccessDenied").retryable
    assert not errors.from_status("stat k", 404, "NoSuchBucket").retryable
