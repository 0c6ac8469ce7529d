"""The S3 backend against the stack's SeaweedFS: stat, read, put, signed PUTs and error translation."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from substratus_common.storage import base, errors, s3
from substratus_local.stack import BUCKET, Stack


@pytest.fixture
async def store(stack: Stack) -> AsyncIterator[s3.S3Storage]:
    storage = s3.S3Storage(
        BUCKET,
        endpoint_url=stack.s3_endpoint,
        access_key=stack.state.s3_access_key,
        secret_key=stack.state.s3_secret_key,
    )
    yield storage
    await storage.close()


def _key() -> str:
    return f"{secrets.token_hex(8)}/uploads/{secrets.token_hex(16)}.tar.gz"


async def test_stat_read_and_md5_of_a_stored_object(store: s3.S3Storage) -> None:
    key = _key()
    assert await store.stat(key) is None
    assert await base.md5_of(store, key) is None
    body = secrets.token_bytes(base.CHUNK_BYTES + 1)
    await store.put(key, body)
    info = await store.stat(key)
    assert info is not None
    assert info.size == len(body)
    assert info.md5_hex in (None, hashlib.md5(body).hexdigest())
    assert b"".join([c async for c in store.read(key)]) == body
    assert await base.md5_of(store, key) == hashlib.md5(body).hexdigest()


async def test_a_signed_put_binds_the_body_and_reports_the_signers_expiry(store: s3.S3Storage) -> None:
    key = _key()
    body = b"build context " + secrets.token_bytes(128)
    md5 = hashlib.md5(body).hexdigest()
    signed = await store.sign_put(key, md5, 300)
    query = parse_qs(urlsplit(signed.url).query)
    assert set(query["X-Amz-SignedHeaders"][0].split(";")) >= {"content-md5", "content-type", "host"}
    signed_at = dt.datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    assert signed.expiration == signed_at + dt.timedelta(seconds=300)
    assert signed.url not in repr(signed)
    async with httpx.AsyncClient() as client:
        refused = await client.put(signed.url, content=b"another body", headers=signed.headers)
        assert refused.status_code in (400, 403), refused.text
        assert await store.exists(key) is False
        accepted = await client.put(signed.url, content=body, headers=signed.headers)
        assert accepted.status_code == 200, accepted.text
    assert await base.md5_of(store, key) == md5


async def test_wrong_credentials_are_a_permanent_error(stack: Stack) -> None:
    storage = s3.S3Storage(BUCKET, endpoint_url=stack.s3_endpoint, access_key="nobody", secret_key="wrong")
    try:
        with pytest.raises(errors.StorageRefused) as caught:
            await storage.put(_key(), b"x")
    finally:
        await storage.close()
    assert not caught.value.retryable
    assert caught.value.status == 403


async def test_an_unreachable_endpoint_is_a_retryable_error() -> None:
    storage = s3.S3Storage(BUCKET, endpoint_url="http://127.0.0.1:9", access_key="a", secret_key="b")
    try:
        with pytest.raises(errors.StorageUnavailable) as caught:
            await storage.stat("k")
    finally:
        await storage.close()
    assert caught.value.retryable


async def test_signed_urls_can_point_at_a_public_endpoint(stack: Stack) -> None:
    """Services reach S3 at one address, clients at another: the URL names the clients' one."""
    public = stack.s3_endpoint.replace("127.0.0.1", "localhost")
    storage = s3.S3Storage(
        BUCKET,
        endpoint_url=stack.s3_endpoint,
        access_key=stack.state.s3_access_key,
        secret_key=stack.state.s3_secret_key,
        public_endpoint_url=public,
    )
    try:
        body = b"via the public name"
        signed = await storage.sign_put(_key(), hashlib.md5(body).hexdigest(), 60)
        assert signed.url.startswith(f"{public}/{BUCKET}/")
        async with httpx.AsyncClient() as client:
            response = await client.put(signed.url, content=body, headers=signed.headers)
        assert response.status_code == 200, response.text
        assert await base.md5_of(storage, signed.key) == hashlib.md5(body).hexdigest()
    finally:
        await storage.close()
