"""The storage interface every backend implements, and the values it returns.

A key is a path inside the bucket (``<prefix>/uploads/<md5>.tar.gz``); MD5s are 32 lowercase hex
characters. A :class:`SignedPut` lets a client without credentials PUT exactly one body: the
signature binds the method, the key, ``Content-Type: application/octet-stream``, the body's
Content-MD5 and the expiry, so storage refuses another body or a late upload.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from substratus_common.storage import errors

UPLOAD_CONTENT_TYPE = "application/octet-stream"
MAX_EXPIRY_S = 15 * 60
"""Signed URLs live at most 15 minutes."""

_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")
CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    """What storage says about a stored object."""

    key: str
    size: int
    md5_hex: str | None
    """The MD5 storage reports (GCS ``md5Hash``, a plain S3 ETag), or None when it reports none."""


@dataclass(frozen=True)
class SignedPut:
    """A signed PUT request; ``repr`` hides the URL, which grants write access until ``expiration``."""

    url: str = field(repr=False)
    method: str
    headers: dict[str, str]
    """Headers the client must send exactly (they are part of the signature)."""
    expiration: dt.datetime
    """When the signer says the URL stops working (UTC)."""
    key: str


class Storage(Protocol):
    """One bucket. Every method raises :class:`~substratus_common.storage.errors.StorageError`s only."""

    url: str
    """The bucket URL, e.g. ``s3://substratus``."""

    async def stat(self, key: str) -> ObjectInfo | None:
        """What storage reports about ``key``, or None when there is no such object."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""
        ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes of ``key`` in chunks; StorageRefused(404) when it is absent."""
        ...

    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` at ``key`` with the service's own credentials (tests and tooling)."""
        ...

    def list_objects(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every stored object whose key starts with ``prefix`` (a plain string prefix: pass
        ``a/b/`` for the "directory" ``a/b``), in key order where storage lists in order."""
        ...

    async def upload_file(self, key: str, path: Path) -> None:
        """Store the file at ``path`` as ``key``, streamed from disk (multipart or resumable when large).

        StorageRefused when ``path`` cannot be read."""
        ...

    async def download_file(self, key: str, path: Path) -> None:
        """Write the object ``key`` to ``path`` (parents created), streamed; ``path`` appears only
        once complete. StorageRefused(404) when it is absent, or when ``path`` cannot be written."""
        ...

    async def sign_put(self, key: str, md5_hex: str, expires_s: int) -> SignedPut:
        """A URL a client can PUT exactly the body with MD5 ``md5_hex`` to, for ``expires_s`` seconds."""
        ...

    async def close(self) -> None: ...


async def md5_of(storage: Storage, key: str) -> str | None:
    """MD5 (hex) of the bytes stored at ``key``, computed here by reading them; None when absent.

    The uploader trusts this, not a checksum the storage reports, before saying Uploaded=True.
    """
    if not await storage.exists(key):
        return None
    digest = hashlib.md5(usedforsecurity=False)
    async for chunk in storage.read(key):
        digest.update(chunk)
    return digest.hexdigest()


def check_md5_hex(md5_hex: str) -> str:
    """``md5_hex`` lowercased, or ValueError when it is not 32 hex characters."""
    value = md5_hex.lower()
    if not _MD5_HEX.match(value):
        raise ValueError(f"an MD5 is 32 hex characters, not {md5_hex!r}")
    return value


def md5_base64(md5_hex: str) -> str:
    """The ``Content-MD5`` header value (base64 of the 16 bytes) for a hex MD5."""
    return base64.b64encode(bytes.fromhex(check_md5_hex(md5_hex))).decode()


def md5_hex_from_base64(value: str) -> str | None:
    """A hex MD5 from a base64 one (GCS ``md5Hash``), or None when it is not one."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 16 else None


def check_expiry(expires_s: int) -> int:
    """``expires_s`` when it is between 1 second and 15 minutes, else ValueError."""
    if not 1 <= expires_s <= MAX_EXPIRY_S:
        raise ValueError(f"a signed URL lives 1 to {MAX_EXPIRY_S} seconds, not {expires_s}")
    return expires_s


def put_headers(md5_hex: str) -> dict[str, str]:
    """The headers a signed upload binds: Content-Type and Content-MD5."""
    return {"Content-Type": UPLOAD_CONTENT_TYPE, "Content-MD5": md5_base64(md5_hex)}


def check_readable(key: str, path: Path) -> None:
    """StorageRefused unless ``path`` is a file this process can open (before an upload of ``key``)."""
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        raise errors.StorageRefused(f"upload {key}: cannot read {path}: {error.strerror or error}") from error


async def download_via_read(storage: Storage, key: str, path: Path) -> None:
    """:meth:`Storage.download_file` on top of :meth:`Storage.read`: chunks go to a temporary file
    beside ``path``, renamed to ``path`` once the object is complete, removed on failure."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        handle = await asyncio.to_thread(_open_for_write, temp)
    except OSError as error:
        raise errors.StorageRefused(f"download {key}: cannot write {path}: {error.strerror or error}") from error
    try:
        try:
            async for chunk in storage.read(key):
                await asyncio.to_thread(handle.write, chunk)
        finally:
            await asyncio.to_thread(handle.close)
        await asyncio.to_thread(os.replace, temp, path)
    except OSError as error:
        raise errors.StorageRefused(f"download {key}: cannot write {path}: {error.strerror or error}") from error
    finally:
        await asyncio.to_thread(temp.unlink, missing_ok=True)


def _open_for_write(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb")
