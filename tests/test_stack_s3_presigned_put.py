"""SeaweedFS checks what a presigned PUT URL binds: the body's MD5 and the expiry."""

from __future__ import annotations

import base64
import datetime
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import httpx
from botocore.config import Config

from substratus_local.stack import BUCKET, Stack
from substratus_local.testing import eventually


def _client(stack: Stack) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id=stack.state.s3_access_key,
        aws_secret_access_key=stack.state.s3_secret_key,
        region_name="us-east-1",
        config=Config(signature_version="s3v4"),
    )


def _presign(stack: Stack, key: str, body: bytes, expires: int) -> tuple[str, dict[str, str]]:
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    url = _client(stack).generate_presigned_url(
        "put_object",
        Params={"Bucket": BUCKET, "Key": key, "ContentMD5": md5, "ContentType": "application/octet-stream"},
        ExpiresIn=expires,
    )
    return url, {"Content-MD5": md5, "Content-Type": "application/octet-stream"}


def test_presigned_put_with_content_md5_stores_the_object(stack: Stack) -> None:
    body = b"context tarball " + secrets.token_bytes(64)
    key = f"uploads/{secrets.token_hex(8)}.tar.gz"
    url, headers = _presign(stack, key, body, 300)
    response = httpx.put(url, content=body, headers=headers)
    assert response.status_code == 200, response.text
    stored = _client(stack).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert stored == body


def test_same_url_with_a_different_body_is_refused(stack: Stack) -> None:
    body = b"the real tarball"
    key = f"uploads/{secrets.token_hex(8)}.tar.gz"
    url, headers = _presign(stack, key, body, 300)
    response = httpx.put(url, content=b"something else entirely", headers=headers)
    assert response.status_code in (400, 403), response.text
    # A client that recomputes Content-MD5 for its new body breaks the signature instead.
    other_md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    response = httpx.put(url, content=b"something else", headers={**headers, "Content-MD5": other_md5})
    assert response.status_code == 403, response.text
    assert _client(stack).list_objects_v2(Bucket=BUCKET, Prefix=key).get("KeyCount") == 0


def test_expired_url_is_refused(stack: Stack) -> None:
    body = b"late upload"
    key = f"uploads/{secrets.token_hex(8)}.tar.gz"
    url, headers = _presign(stack, key, body, 1)
    query = parse_qs(urlparse(url).query)
    signed_at = datetime.datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    expires_at = signed_at.timestamp() + int(query["X-Amz-Expires"][0])
    # Wait for the clock to pass the expiry (plus a second of skew) before the one and only PUT.
    eventually(lambda: time.time() > expires_at + 1, 10, "URL expiry passed")
    response = httpx.put(url, content=body, headers=headers)
    assert response.status_code == 403, response.text
    assert _client(stack).list_objects_v2(Bucket=BUCKET, Prefix=key).get("KeyCount") == 0
