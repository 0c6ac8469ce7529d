"""A directory as a bucket (``file:///path``), for tests and single-machine setups.

Signed PUT URLs are ``file://`` URLs carrying an HMAC over method, key, Content-Type, Content-MD5
and expiry, keyed by a secret kept in the directory (``.signing-key``), so every process sharing
the directory can check them. :meth:`LocalStorage.accept_put` plays the storage server: it
refuses a wrong signature, a late upload or a body whose MD5 is not the signed one.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
import shutil
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from substratus_common.storage import base, errors

KEY_FILE = ".signing-key"
_TEMP = re.compile(r"^\..+\.[0-9a-f]{8}\.(tmp|part)$")
"""Files this backend writes before renaming them into place; not objects."""


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not key or key.startswith("/") or not path.is_relative_to(self.root) or path == self.root / KEY_FILE:
            raise errors.StorageRefused(f"not a key inside the bucket: {key!r}")
        return path

    async def stat(self, key: str) -> base.ObjectInfo | None:
        path = self._path(key)
        try:
            size = await asyncio.to_thread(lambda: path.stat().st_size if path.is_file() else None)
        except OSError as error:
            raise errors.StorageUnavailable(f"stat {key}: {error}") from error
        return None if size is None else base.ObjectInfo(key=key, size=size, md5_hex=None)

    async def exists(self, key: str) -> bool:
        return await self.stat(key) is not None

    async def read(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as error:
            raise errors.StorageRefused(f"read {key}: no such object", status=404) from error
        except OSError as error:
            raise errors.StorageUnavailable(f"read {key}: {error}") from error
        try:
            while chunk := await asyncio.to_thread(handle.read, base.CHUNK_BYTES):
                yield chunk
        finally:
            handle.close()

    async def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            await asyncio.to_thread(_write_atomically, path, data)
        except OSError as error:
            raise errors.StorageUnavailable(f"put {key}: {error}") from error

    async def list_objects(self, prefix: str) -> AsyncIterator[base.ObjectInfo]:
        try:
            found = await asyncio.to_thread(self._list, prefix)
        except OSError as error:
            raise errors.StorageUnavailable(f"list {prefix}: {error}") from error
        for info in found:
            yield info

    def _list(self, prefix: str) -> list[base.ObjectInfo]:
        # Walk only below the deepest directory the prefix names.
        start = self.root / prefix.rpartition("/")[0]
        if not start.resolve().is_relative_to(self.root) or not start.is_dir():
            return []
        found = []
        for dirpath, _, filenames in os.walk(start):
            for filename in filenames:
                path = Path(dirpath) / filename
                key = path.relative_to(self.root).as_posix()
                if key == KEY_FILE or _TEMP.match(filename) or not key.startswith(prefix):
                    continue
                found.append(base.ObjectInfo(key=key, size=path.stat().st_size, md5_hex=None))
        return sorted(found, key=lambda info: info.key)

    async def upload_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        await asyncio.to_thread(base.check_readable, key, path)
        try:
            await asyncio.to_thread(_copy_atomically, path, target)
        except OSError as error:
            raise errors.StorageUnavailable(f"upload {key}: {error}") from error

    async def download_file(self, key: str, path: Path) -> None:
        await base.download_via_read(self, key, path)

    async def sign_put(self, key: str, md5_hex: str, expires_s: int) -> base.SignedPut:
        base.check_expiry(expires_s)
        self._path(key)
        headers = base.put_headers(md5_hex)
        expiration = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=expires_s)
        expires = str(int(expiration.timestamp()))
        signature = await self._signature("PUT", key, headers, expires)
        query = urlencode({"X-Local-Expires": expires, "X-Local-Signature": signature})
        url = f"{self.url}/{quote(key)}?{query}"
        return base.SignedPut(url=url, method="PUT", headers=headers, expiration=expiration, key=key)

    async def accept_put(
        self, url: str, body: bytes, headers: Mapping[str, str], *, now: dt.datetime | None = None
    ) -> None:
        """Store ``body`` as a storage server would for a signed PUT (at ``now``), or raise UploadRefused."""
        parts = urlsplit(url)
        root = urlsplit(self.url).path.rstrip("/") + "/"
        path = unquote(parts.path)
        if not path.startswith(root):
            raise errors.UploadRefused("the URL is not for this bucket", status=403)
        key = path[len(root) :]
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        sent = {k.lower(): v for k, v in headers.items()}
        expected = {"Content-Type": sent.get("content-type", ""), "Content-MD5": sent.get("content-md5", "")}
        expires = query.get("X-Local-Expires", "")
        signature = await self._signature("PUT", key, expected, expires)
        if not hmac.compare_digest(signature, query.get("X-Local-Signature", "")):
            raise errors.UploadRefused("SignatureDoesNotMatch", status=403)
        if (now or dt.datetime.now(dt.UTC)).timestamp() > int(expires):
            raise errors.UploadRefused("the signed URL expired", status=403)
        if base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode() != expected["Content-MD5"]:
            raise errors.UploadRefused("BadDigest: the body's MD5 is not Content-MD5", status=400)
        await self.put(key, body)

    async def _signature(self, method: str, key: str, headers: Mapping[str, str], expires: str) -> str:
        secret = await asyncio.to_thread(self._secret)
        text = "\n".join([method, key, headers["Content-Type"], headers["Content-MD5"], expires])
        return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()

    def _secret(self) -> bytes:
        path = self.root / KEY_FILE
        try:
            return path.read_bytes()
        except FileNotFoundError:
            _write_atomically(path, secrets.token_bytes(32), exclusive=True)
            return path.read_bytes()

    async def close(self) -> None:
        return None


def _write_atomically(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    temp.write_bytes(data)
    if exclusive:
        try:
            os.link(temp, path)  # the first writer's key wins
        except FileExistsError:
            pass
        finally:
            temp.unlink()
    else:
        os.replace(temp, path)


def _copy_atomically(source: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        shutil.copyfile(source, temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
