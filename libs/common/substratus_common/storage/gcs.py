"""GCS backend (gcloud-aio-storage), with our own V4 signer for PUT URLs.

Objects are read and written through gcloud-aio-storage's JSON API client. URLs are signed here
(:func:`v4_signed_put`) because gcloud-aio-storage's ``Blob.get_signed_url`` lowercases header
values, which breaks a base64 ``Content-MD5`` (ADR 050). The string to sign is signed with the
service account's private key when the credentials carry one, else with IAM ``signBlob``
(Workload Identity on GKE).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from gcloud.aio.auth import IamClient, Token, decode
from gcloud.aio.storage import Storage as _GCSClient

from substratus_common.storage import base, errors

GOOGLE_HOST = "storage.googleapis.com"
ALGORITHM = "GOOG4-RSA-SHA256"
SCOPES = ["https://www.googleapis.com/auth/devstorage.read_write"]
UPLOAD_TIMEOUT_S = 3600
"""One file's upload may take this long (gcloud-aio-storage's default is 30 s for the whole body)."""
METADATA_EMAIL_URL = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/email"

Signer = Callable[[bytes], Awaitable[bytes]]
"""Signs a V4 string-to-sign with RSA-SHA256 as the service account."""


def signed_header_names(headers: dict[str, str]) -> str:
    """``X-Goog-SignedHeaders``: the lowercased header names, sorted, joined by ``;``."""
    return ";".join(sorted(name.lower() for name in headers))


def canonical_request(
    method: str, path: str, query: dict[str, str], headers: dict[str, str], payload: str = "UNSIGNED-PAYLOAD"
) -> str:
    """The V4 canonical request: header names are lowercased, values kept as they are (base64 is case-sensitive)."""
    lowered = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    canonical_headers = "".join(f"{name}:{lowered[name]}\n" for name in sorted(lowered))
    return "\n".join([method, path, canonical_query(query), canonical_headers, signed_header_names(headers), payload])


def canonical_query(query: dict[str, str]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(query.items()))


async def v4_signed_put(
    *,
    endpoint: str,
    bucket: str,
    key: str,
    md5_hex: str,
    expires_s: int,
    email: str,
    sign: Signer,
    now: dt.datetime | None = None,
) -> base.SignedPut:
    """A V4-signed PUT URL (path style) binding Content-MD5, Content-Type, host and the expiry."""
    base.check_expiry(expires_s)
    parts = urlsplit(endpoint)
    signed_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    timestamp = signed_at.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{signed_at:%Y%m%d}/auto/storage/goog4_request"
    headers = base.put_headers(md5_hex)
    path = f"/{bucket}/{quote(key, safe='/~')}"
    query = {
        "X-Goog-Algorithm": ALGORITHM,
        "X-Goog-Credential": f"{email}/{scope}",
        "X-Goog-Date": timestamp,
        "X-Goog-Expires": str(expires_s),
    }
    signed = {**headers, "host": parts.netloc}
    query["X-Goog-SignedHeaders"] = signed_header_names(signed)
    request = canonical_request("PUT", path, query, signed)
    string_to_sign = "\n".join([ALGORITHM, timestamp, scope, hashlib.sha256(request.encode()).hexdigest()])
    signature = (await sign(string_to_sign.encode())).hex()
    url = f"{parts.scheme}://{parts.netloc}{path}?{canonical_query(query)}&X-Goog-Signature={signature}"
    return base.SignedPut(
        url=url,
        method="PUT",
        headers=headers,
        expiration=signed_at + dt.timedelta(seconds=expires_s),
        key=key,
    )


def pem_signer(private_key_pem: str) -> Signer:
    """Sign locally with a service account's RSA private key."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise errors.StorageRefused("the GCS service account key is not an RSA key")

    async def sign(data: bytes) -> bytes:
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    return sign


class GCSStorage:
    """One GCS bucket. ``endpoint_url`` points at an emulator (fake-gcs-server); Google when None."""

    def __init__(self, bucket: str, *, endpoint_url: str | None = None, service_file: str | None = None) -> None:
        self.bucket = bucket
        self.url = f"gs://{bucket}"
        self._endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        self._service_file = service_file
        self._client: _GCSClient | None = None
        self._token: Token | None = None
        self._iam: IamClient | None = None
        self._email: str | None = None
        self._lock = asyncio.Lock()

    async def _gcs(self) -> _GCSClient:
        async with self._lock:
            if self._client is None:
                self._client = _GCSClient(service_file=self._service_file, api_root=self._endpoint_url)
            return self._client

    async def stat(self, key: str) -> base.ObjectInfo | None:
        gcs = await self._gcs()
        try:
            meta = await gcs.download_metadata(self.bucket, key)
        except Exception as error:
            if _status(error) == 404:
                return None
            raise _translate("stat", key, error) from error
        md5 = meta.get("md5Hash")
        return base.ObjectInfo(
            key=key,
            size=int(meta.get("size") or 0),
            md5_hex=base.md5_hex_from_base64(md5) if isinstance(md5, str) else None,
        )

    async def exists(self, key: str) -> bool:
        return await self.stat(key) is not None

    async def read(self, key: str) -> AsyncIterator[bytes]:
        gcs = await self._gcs()
        try:
            stream = await gcs.download_stream(self.bucket, key)
            async with stream:
                while chunk := await stream.read(base.CHUNK_BYTES):
                    yield chunk
        except Exception as error:
            raise _translate("read", key, error) from error

    async def put(self, key: str, data: bytes) -> None:
        gcs = await self._gcs()
        try:
            await gcs.upload(self.bucket, key, data, content_type=base.UPLOAD_CONTENT_TYPE)
        except Exception as error:
            raise _translate("put", key, error) from error

    async def list_objects(self, prefix: str) -> AsyncIterator[base.ObjectInfo]:
        gcs = await self._gcs()
        params = {"prefix": prefix}
        while True:
            try:
                page = await gcs.list_objects(self.bucket, params=params)
            except Exception as error:
                raise _translate("list", prefix, error) from error
            for item in page.get("items") or []:
                md5 = item.get("md5Hash")
                yield base.ObjectInfo(
                    key=str(item["name"]),
                    size=int(item.get("size") or 0),
                    md5_hex=base.md5_hex_from_base64(md5) if isinstance(md5, str) else None,
                )
            token = page.get("nextPageToken")
            if not token:
                return
            params = {"prefix": prefix, "pageToken": str(token)}

    async def upload_file(self, key: str, path: Path) -> None:
        await asyncio.to_thread(base.check_readable, key, path)
        gcs = await self._gcs()
        try:
            handle = await asyncio.to_thread(path.open, "rb")
            try:
                # A file object is streamed; past 5 MB gcloud-aio-storage uses a resumable upload.
                await gcs.upload(
                    self.bucket, key, handle, content_type=base.UPLOAD_CONTENT_TYPE, timeout=UPLOAD_TIMEOUT_S
                )
            finally:
                await asyncio.to_thread(handle.close)
        except Exception as error:
            raise _translate("upload", key, error) from error

    async def download_file(self, key: str, path: Path) -> None:
        await base.download_via_read(self, key, path)

    async def sign_put(self, key: str, md5_hex: str, expires_s: int) -> base.SignedPut:
        email, sign = await self._signer()
        try:
            return await v4_signed_put(
                endpoint=self._endpoint_url or f"https://{GOOGLE_HOST}",
                bucket=self.bucket,
                key=key,
                md5_hex=md5_hex,
                expires_s=expires_s,
                email=email,
                sign=sign,
            )
        except (errors.StorageError, ValueError):
            raise
        except Exception as error:
            raise _translate("sign", key, error) from error

    async def _signer(self) -> tuple[str, Signer]:
        """The service account's email and a signer: the private key if we have it, else IAM signBlob."""
        async with self._lock:
            if self._token is None:
                self._token = Token(service_file=self._service_file, scopes=SCOPES)
            data: dict[str, Any] = self._token.service_data or {}
            if data.get("client_email") and data.get("private_key"):
                return str(data["client_email"]), pem_signer(str(data["private_key"]))
            if self._iam is None:
                try:
                    self._iam = IamClient(token=self._token)
                except TypeError as error:
                    message = f"GCS URL signing needs service account credentials: {error}"
                    raise errors.StorageRefused(message) from error
            if self._email is None:
                self._email = self._iam.service_account_email or await _metadata_email()
        iam, email = self._iam, self._email

        async def sign(payload: bytes) -> bytes:
            try:
                answer = await iam.sign_blob(payload, service_account_email=email)
            except Exception as error:
                raise _translate("signBlob", email, error) from error
            return decode(answer["signedBlob"])

        return email, sign

    async def close(self) -> None:
        async with self._lock:
            for closer in (self._client, self._iam, self._token):
                if closer is not None:
                    await closer.close()
            self._client = self._iam = self._token = None


async def _metadata_email() -> str:
    """The default service account of the node or workload (GKE metadata server)."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.get(METADATA_EMAIL_URL, headers={"Metadata-Flavor": "Google"}) as response,
        ):
            response.raise_for_status()
            return (await response.text()).strip()
    except Exception as error:
        raise _translate("reading the service account email from the metadata server", "", error) from error


def _status(error: BaseException) -> int:
    return int(getattr(error, "status", 0) or 0) if isinstance(error, aiohttp.ClientResponseError) else 0


def _translate(operation: str, key: str, error: BaseException) -> errors.StorageError:
    what = f"{operation} {key}".strip()
    if isinstance(error, errors.StorageError):
        return error
    if isinstance(error, aiohttp.ClientResponseError):
        return errors.from_status(what, error.status, "", error.message)
    if isinstance(error, (aiohttp.ClientError, TimeoutError, OSError)):
        return errors.StorageUnavailable(f"{what}: {error}")
    return errors.StorageUnavailable(f"{what}: unexpected {type(error).__name__}: {error}")
