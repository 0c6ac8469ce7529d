"""S3 backend (aioboto3): AWS or any S3 endpoint (SeaweedFS, MinIO).

Credentials come from the standard AWS variables and files unless passed explicitly; requests are
signed with SigV4. A signed PUT binds ``content-md5``, ``content-type`` and ``host`` (see
``X-Amz-SignedHeaders``), so S3 refuses another body, and ``X-Amz-Expires`` bounds its life.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aioboto3
import aiohttp
from botocore import exceptions as boto_errors
from botocore.config import Config

from substratus_common.storage import base, errors

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
MULTIPART_BYTES = 16 * 1024 * 1024
"""Files from this size up are uploaded in parts of at least this size."""
MAX_PARTS = 10_000
"""S3's limit on parts per upload: past 160 GiB the parts grow."""
PART_CONCURRENCY = 4
"""Parts of one file sent at once."""
PARTS_IN_FLIGHT = 8
"""Parts (and small files) sent at once across all uploads of this storage: each is in memory
while it is sent, so uploads hold at most this many parts (128 MiB for parts of 16 MiB)."""


class S3Storage:
    """One S3 bucket through one long-lived client (opened on first use, closed by :meth:`close`)."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        public_endpoint_url: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.url = f"s3://{bucket}"
        self._endpoint_url = endpoint_url
        self._public_endpoint_url = public_endpoint_url or endpoint_url
        self._region = region
        self._session = aioboto3.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key)
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[str | None, Any] = {}
        self._lock = asyncio.Lock()
        self._parts = asyncio.Semaphore(PARTS_IN_FLIGHT)

    async def _s3(self, *, public: bool = False) -> Any:
        """The client for ``endpoint_url``, or (``public``) the one whose URLs clients can reach."""
        endpoint = self._public_endpoint_url if public else self._endpoint_url
        async with self._lock:
            if endpoint not in self._clients:
                config = Config(
                    signature_version="s3v4",
                    connect_timeout=5,
                    read_timeout=30,
                    retries={"max_attempts": 3, "mode": "standard"},
                )
                try:
                    self._clients[endpoint] = await self._stack.enter_async_context(
                        self._session.client("s3", endpoint_url=endpoint, region_name=self._region, config=config)
                    )
                except Exception as error:
                    raise _translate("opening the S3 client", "", error) from error
            return self._clients[endpoint]

    async def stat(self, key: str) -> base.ObjectInfo | None:
        s3 = await self._s3()
        try:
            head = await s3.head_object(Bucket=self.bucket, Key=key)
        except Exception as error:
            if _code(error) in _NOT_FOUND:
                return None
            raise _translate("stat", key, error) from error
        return base.ObjectInfo(key=key, size=int(head.get("ContentLength") or 0), md5_hex=_etag_md5(head.get("ETag")))

    async def exists(self, key: str) -> bool:
        return await self.stat(key) is not None

    async def read(self, key: str) -> AsyncIterator[bytes]:
        s3 = await self._s3()
        try:
            response = await s3.get_object(Bucket=self.bucket, Key=key)
            body = response["Body"]
            async with body:  # releases the connection
                while chunk := await body.read(base.CHUNK_BYTES):
                    yield chunk
        except Exception as error:
            raise _translate("read", key, error) from error

    async def put(self, key: str, data: bytes) -> None:
        s3 = await self._s3()
        try:
            await s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=base.UPLOAD_CONTENT_TYPE)
        except Exception as error:
            raise _translate("put", key, error) from error

    async def list_objects(self, prefix: str) -> AsyncIterator[base.ObjectInfo]:
        s3 = await self._s3()
        try:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            async for page in pages:
                for item in page.get("Contents", []):
                    yield base.ObjectInfo(
                        key=str(item["Key"]), size=int(item.get("Size") or 0), md5_hex=_etag_md5(item.get("ETag"))
                    )
        except Exception as error:
            raise _translate("list", prefix, error) from error

    async def upload_file(self, key: str, path: Path) -> None:
        await asyncio.to_thread(base.check_readable, key, path)
        s3 = await self._s3()
        try:
            size = (await asyncio.to_thread(path.stat)).st_size
            if size < MULTIPART_BYTES:
                async with self._parts:
                    body = io.BytesIO(await asyncio.to_thread(path.read_bytes))
                    await s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=base.UPLOAD_CONTENT_TYPE)
            else:
                await self._upload_parts(s3, key, path, size)
        except Exception as error:
            raise _translate("upload", key, error) from error

    async def _upload_parts(self, s3: Any, key: str, path: Path, size: int) -> None:
        """A multipart upload of ``size`` bytes, ``PART_CONCURRENCY`` parts in flight (and in memory)
        at once; aborted when a part fails, so no orphaned parts are billed."""
        part_bytes = max(MULTIPART_BYTES, -(-size // MAX_PARTS))
        offsets = iter(enumerate(range(0, size, part_bytes), start=1))
        created = await s3.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=base.UPLOAD_CONTENT_TYPE)
        upload_id = created["UploadId"]
        etags: dict[int, str] = {}
        failed: list[BaseException] = []

        async def send_parts() -> None:
            for number, offset in offsets:  # shared by the senders: each part is sent once
                if failed:
                    return
                try:
                    async with self._parts:
                        data = await asyncio.to_thread(_read_part, path, offset, part_bytes)
                        answer = await s3.upload_part(
                            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=io.BytesIO(data)
                        )
                    etags[number] = answer["ETag"]
                except Exception as error:
                    failed.append(error)
                    return

        try:
            await asyncio.gather(*(send_parts() for _ in range(PART_CONCURRENCY)))
            if failed:
                raise failed[0]
            parts = [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
            await s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    async def download_file(self, key: str, path: Path) -> None:
        await base.download_via_read(self, key, path)

    async def sign_put(self, key: str, md5_hex: str, expires_s: int) -> base.SignedPut:
        base.check_expiry(expires_s)
        headers = base.put_headers(md5_hex)
        s3 = await self._s3(public=True)  # presigning is local: no request reaches this endpoint
        try:
            url: str = await s3.generate_presigned_url(
                "put_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "ContentMD5": headers["Content-MD5"],
                    "ContentType": headers["Content-Type"],
                },
                ExpiresIn=expires_s,
                HttpMethod="PUT",
            )
        except Exception as error:
            raise _translate("sign", key, error) from error
        query = parse_qs(urlsplit(url).query)
        signed = set((query.get("X-Amz-SignedHeaders") or [""])[0].split(";"))
        if not {"content-md5", "content-type", "host"} <= signed:
            raise errors.StorageRefused(f"sign {key}: the S3 signer did not bind Content-MD5 and Content-Type")
        return base.SignedPut(url=url, method="PUT", headers=headers, expiration=_expiration(query), key=key)

    async def close(self) -> None:
        async with self._lock:
            self._clients.clear()
            await self._stack.aclose()


def _read_part(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(length)


def _expiration(query: dict[str, list[str]]) -> dt.datetime:
    """When a SigV4 presigned URL stops working: ``X-Amz-Date`` + ``X-Amz-Expires``."""
    signed_at = dt.datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    return signed_at + dt.timedelta(seconds=int(query["X-Amz-Expires"][0]))


def _etag_md5(etag: object) -> str | None:
    """A single-part upload's ETag is the body's MD5; a multipart one (``…-N``) is not."""
    if not isinstance(etag, str):
        return None
    value = etag.strip('"').lower()
    try:
        return base.check_md5_hex(value)
    except ValueError:
        return None


def _code(error: BaseException) -> str:
    if isinstance(error, boto_errors.ClientError):
        return str(error.response.get("Error", {}).get("Code") or "")
    return ""


def _translate(operation: str, key: str, error: BaseException) -> errors.StorageError:
    what = f"{operation} {key}".strip()
    if isinstance(error, errors.StorageError):
        return error
    if isinstance(error, boto_errors.ClientError):
        response = error.response
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        detail = response.get("Error", {})
        return errors.from_status(what, status, str(detail.get("Code") or ""), str(detail.get("Message") or ""))
    if isinstance(
        error,
        (boto_errors.NoCredentialsError, boto_errors.PartialCredentialsError, boto_errors.ParamValidationError),
    ):
        return errors.StorageRefused(f"{what}: {error}")
    if isinstance(error, (boto_errors.BotoCoreError, aiohttp.ClientError, TimeoutError, OSError)):
        return errors.StorageUnavailable(f"{what}: {error}")
    return errors.StorageUnavailable(f"{what}: unexpected {type(error).__name__}: {error}")
