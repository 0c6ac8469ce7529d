"""The GCS backend against fake-gcs-server: stat, read, put, and V4-signed PUT URLs.

fake-gcs-server accepts signed uploads without checking signatures, so the signature is checked
here against an independent computation of the V4 canonical request and the service account's
public key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from substratus_common.storage import base, errors, gcs
from substratus_local.testing import fake_gcs_server

BUCKET = "substratus-test"
EMAIL = "uploader@test-project.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def fake_gcs() -> Iterator[str]:
    """fake-gcs-server on a free port, with signed URLs addressed to it; its URL."""
    with fake_gcs_server(BUCKET) as url:
        yield url


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def service_file(tmp_path_factory: pytest.TempPathFactory, private_key: rsa.RSAPrivateKey) -> Path:
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = tmp_path_factory.mktemp("gcp") / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "test-project",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": EMAIL,
                "token_uri": "http://127.0.0.1:9/token",
            }
        )
    )
    return path


@pytest.fixture
async def store(fake_gcs: str, service_file: Path) -> AsyncIterator[gcs.GCSStorage]:
    storage = gcs.GCSStorage(BUCKET, endpoint_url=fake_gcs, service_file=str(service_file))
    yield storage
    await storage.close()


def _key() -> str:
    return f"{secrets.token_hex(8)}/uploads/{secrets.token_hex(16)}.tar.gz"


async def test_stat_read_and_md5_of_a_stored_object(store: gcs.GCSStorage) -> None:
    key = _key()
    assert await store.stat(key) is None
    body = secrets.token_bytes(3 * 1024)
    await store.put(key, body)
    info = await store.stat(key)
    assert info == base.ObjectInfo(key=key, size=len(body), md5_hex=hashlib.md5(body).hexdigest())
    assert b"".join([c async for c in store.read(key)]) == body
    assert await base.md5_of(store, key) == hashlib.md5(body).hexdigest()


async def test_a_signed_put_uploads_the_body(store: gcs.GCSStorage, fake_gcs: str) -> None:
    key = _key()
    body = b"build context " + secrets.token_bytes(256)
    md5 = hashlib.md5(body).hexdigest()
    signed = await store.sign_put(key, md5, 600)
    assert signed.url.startswith(f"{fake_gcs}/{BUCKET}/{key}?")
    query = dict(parse_qsl(urlsplit(signed.url).query))
    signed_at = dt.datetime.strptime(query["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    assert query["X-Goog-Expires"] == "600"
    assert signed.expiration == signed_at + dt.timedelta(seconds=600)
    async with httpx.AsyncClient() as client:
        response = await client.put(signed.url, content=body, headers=signed.headers)
    assert response.status_code == 200, response.text
    assert await base.md5_of(store, key) == md5


async def test_the_signature_matches_an_independent_v4_computation(
    store: gcs.GCSStorage, private_key: rsa.RSAPrivateKey
) -> None:
    key = _key()
    md5 = hashlib.md5(b"payload").hexdigest()
    signed = await store.sign_put(key, md5, 900)
    parts = urlsplit(signed.url)
    pairs = parse_qsl(parts.query)
    signature = dict(pairs)["X-Goog-Signature"]
    unsigned = sorted((k, v) for k, v in pairs if k != "X-Goog-Signature")
    query = dict(unsigned)
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert query["X-Goog-SignedHeaders"] == "content-md5;content-type;host"
    date = query["X-Goog-Date"]
    scope = f"{date[:8]}/auto/storage/goog4_request"
    assert query["X-Goog-Credential"] == f"{EMAIL}/{scope}"
    content_md5 = base64.b64encode(bytes.fromhex(md5)).decode()
    # Written out by hand from Google's V4 description: values keep their case (base64 is case-sensitive).
    canonical_query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in unsigned)
    canonical = "\n".join(
        [
            "PUT",
            f"/{BUCKET}/{key}",
            canonical_query,
            f"content-md5:{content_md5}\ncontent-type:application/octet-stream\nhost:{parts.netloc}\n",
            "content-md5;content-type;host",
            "UNSIGNED-PAYLOAD",
        ]
    )
    to_sign = f"GOOG4-RSA-SHA256\n{date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    private_key.public_key().verify(bytes.fromhex(signature), to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    # gcloud-aio-storage's signer lowercases header values: that request would not be this signature.
    lowered = canonical.replace(content_md5, content_md5.lower())
    assert lowered != canonical
    wrong = f"GOOG4-RSA-SHA256\n{date}\n{scope}\n{hashlib.sha256(lowered.encode()).hexdigest()}"
    with pytest.raises(InvalidSignature):
        private_key.public_key().verify(bytes.fromhex(signature), wrong.encode(), padding.PKCS1v15(), hashes.SHA256())
    assert signed.headers == {"Content-Type": "application/octet-stream", "Content-MD5": content_md5}


async def test_signing_for_google_uses_the_public_host(service_file: Path) -> None:
    storage = gcs.GCSStorage(BUCKET, service_file=str(service_file))
    try:
        signed = await storage.sign_put("a/b.tar.gz", hashlib.md5(b"").hexdigest(), 60)
    finally:
        await storage.close()
    assert signed.url.startswith(f"https://storage.googleapis.com/{BUCKET}/a/b.tar.gz?X-Goog-Algorithm=")


async def test_an_unreachable_endpoint_is_a_retryable_error(service_file: Path) -> None:
    storage = gcs.GCSStorage(BUCKET, endpoint_url="http://127.0.0.1:9", service_file=str(service_file))
    try:
        with pytest.raises(errors.StorageUnavailable) as caught:
            await storage.stat("k")
    finally:
        await storage.close()
    assert caught.value.retryable


async def test_a_wrong_body_the_emulator_stores_has_another_md5(store: gcs.GCSStorage) -> None:
    """fake-gcs-server does not check Content-MD5 (GCS does); the uploader's own MD5 check still catches it."""
    key = _key()
    right = hashlib.md5(b"right").hexdigest()
    signed = await store.sign_put(key, right, 60)
    async with httpx.AsyncClient() as client:
        await client.put(signed.url, content=b"wrong", headers=signed.headers)
    assert await base.md5_of(store, key) in (None, hashlib.md5(b"wrong").hexdigest())
    assert await base.md5_of(store, key) != right
