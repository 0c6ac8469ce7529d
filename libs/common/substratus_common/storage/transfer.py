"""Moving a directory to and from a prefix of a bucket (the portable storage helper's work).

- :func:`storage_for`: a bucket URL with a path (``s3://bucket/a/b``, ``gs://bucket/a/b``,
  ``file:///dir/a/b``) → the backend for that bucket and the key prefix ``a/b``. The settings give
  the endpoint, region and emulator; the bucket is the URL's, so it may be another bucket than
  ``settings.bucket_url``.
- :func:`upload_dir`: every file under a directory to ``<prefix>/<relative path>``.
- :func:`download_prefix`: every object under ``<prefix>/`` to ``<dir>/<relative path>``.

Both run at most ``concurrency`` transfers at once, retry a file whose transfer failed with a
retryable error (``backoff_s``), go on with the other files when one fails for good, and then
raise :class:`TransferFailed` naming how many failed. Nothing is skipped silently: what cannot be
uploaded (a broken link, a socket, an empty directory, which object stores do not keep) is in
:attr:`Transferred.skipped` and logged. An empty directory uploads nothing; an empty prefix
downloads nothing (an input with no artifacts is empty, not an error).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from substratus_common import config
from substratus_common.storage import backends, base, errors

log = logging.getLogger(__name__)

T = TypeVar("T")

CONCURRENCY = 8
"""Files moved at once (each S3 multipart upload moves up to 4 parts at once on top of that)."""
BACKOFF_S: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Delays before each retry of a file after a retryable error; one retry per entry."""


@dataclass
class Transferred:
    """What a transfer moved."""

    files: int = 0
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)
    """Entries that were not moved, each ``<path>: <why>`` (uploads only)."""


class TransferFailed(errors.StorageError):
    """Some files were not moved after their retries; the others were."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def split_url(url: str, settings: config.Settings) -> tuple[config.Settings, str]:
    """Settings whose ``bucket_url`` is the bucket of ``url``, and the key prefix in it (no slashes
    at either end; empty for the whole bucket). ValueError for a URL that names no bucket.

    A ``file://`` URL inside the settings' own ``file://`` bucket is a prefix of that bucket; any
    other ``file://`` URL is a bucket of its own (its directory) with an empty prefix.
    """
    parts = urlsplit(url)
    if parts.scheme in ("s3", "gs"):
        if not parts.netloc:
            raise ValueError(f"not a bucket URL: {url!r} (expected {parts.scheme}://<bucket>/<prefix>)")
        prefix = parts.path.strip("/")  # as the AWS and gcloud CLIs: keys are not percent-decoded
        bucket_url = f"{parts.scheme}://{parts.netloc}"
    elif parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(f"not a bucket URL: {url!r} (expected file:///<absolute dir>)")
        path = PurePosixPath(os.path.normpath(unquote(parts.path)))
        own = urlsplit(settings.bucket_url)
        root = PurePosixPath(os.path.normpath(unquote(own.path))) if own.scheme == "file" and own.path else None
        if root is not None and path.is_relative_to(root):
            relative = path.relative_to(root).as_posix()
            bucket_url, prefix = root.as_uri(), "" if relative == "." else relative
        else:
            bucket_url, prefix = path.as_uri(), ""
    else:
        raise ValueError(f"not a bucket URL: {url!r} (expected s3://, gs:// or file://)")
    if bucket_url != settings.bucket_url.rstrip("/"):
        settings = settings.model_copy(update={"bucket_url": bucket_url})
    return settings, prefix


def storage_for(url: str, settings: config.Settings) -> tuple[base.Storage, str]:
    """The backend for the bucket of ``url`` and the key prefix in it (see :func:`split_url`)."""
    bucket_settings, prefix = split_url(url, settings)
    return backends.from_settings(bucket_settings), prefix


async def upload_dir(
    storage: base.Storage,
    directory: Path,
    prefix: str,
    *,
    concurrency: int = CONCURRENCY,
    backoff_s: Sequence[float] = BACKOFF_S,
) -> Transferred:
    """Store every file under ``directory`` at ``<prefix>/<path relative to directory>``.

    Links are followed (a directory reached twice is skipped); objects already under the prefix
    that have no file here are left alone.
    """
    prefix = prefix.strip("/")
    if not await asyncio.to_thread(directory.is_dir):
        raise errors.StorageRefused(f"upload: {directory} is not a directory")
    files, skipped = await asyncio.to_thread(_walk, directory)
    for entry in skipped:
        log.warning("not uploaded: %s", entry, extra={"directory": str(directory)})
    done = Transferred(skipped=skipped)

    async def upload(item: tuple[str, Path, int]) -> None:
        relative, path, size = item
        key = f"{prefix}/{relative}" if prefix else relative
        await _retrying(f"upload {key}", lambda: storage.upload_file(key, path), backoff_s)
        done.files += 1
        done.bytes += size

    await _run_all(files, upload, concurrency, what=f"upload {directory} to {storage.url}/{prefix}")
    return done


async def download_prefix(
    storage: base.Storage,
    prefix: str,
    directory: Path,
    *,
    concurrency: int = CONCURRENCY,
    backoff_s: Sequence[float] = BACKOFF_S,
) -> Transferred:
    """Write every object under ``<prefix>/`` to ``<directory>/<key relative to the prefix>``.

    ``directory`` is created; files already there are overwritten. A key ending in ``/`` (a
    "folder" made by a console) becomes a directory. A key that would land outside ``directory``
    (``..``, empty segments) fails the transfer (StorageRefused) before anything is written.
    """
    prefix = prefix.strip("/")
    listed = f"{prefix}/" if prefix else ""
    what = f"download {storage.url}/{prefix}"

    async def collect() -> list[base.ObjectInfo]:
        return [info async for info in storage.list_objects(listed)]

    objects = await _retrying(f"list {storage.url}/{listed}", collect, backoff_s)
    targets: list[tuple[str, Path, int]] = []
    folders: list[Path] = [directory]
    for info in objects:
        relative = info.key[len(listed) :]
        segments = relative.split("/")
        if relative.endswith("/"):
            segments.pop()
        if not segments or any(s in ("", ".", "..") for s in segments):
            raise errors.StorageRefused(f"{what}: the key {info.key!r} is not a path inside {directory}")
        if relative.endswith("/"):
            folders.append(directory.joinpath(*segments))
        else:
            targets.append((info.key, directory.joinpath(*segments), info.size))
    for folder in folders:
        try:
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        except OSError as error:
            raise errors.StorageRefused(f"{what}: cannot create {folder}: {error.strerror or error}") from error
    done = Transferred()

    async def download(item: tuple[str, Path, int]) -> None:
        key, path, size = item
        await _retrying(f"download {key}", lambda: storage.download_file(key, path), backoff_s)
        done.files += 1
        done.bytes += size

    await _run_all(targets, download, concurrency, what=what)
    return done


def _walk(directory: Path) -> tuple[list[tuple[str, Path, int]], list[str]]:
    """Files under ``directory`` as (relative POSIX path, path, size), and what cannot be uploaded."""
    files: list[tuple[str, Path, int]] = []
    skipped: list[str] = []
    seen: set[str] = set()

    def unreadable(error: OSError) -> None:
        skipped.append(f"{error.filename}: cannot list: {error.strerror or error}")

    for dirpath, dirnames, filenames in os.walk(directory, followlinks=True, onerror=unreadable):
        real = os.path.realpath(dirpath)
        here = Path(dirpath)
        if real in seen:
            skipped.append(f"{here}: a link to a directory already uploaded")
            dirnames.clear()
            continue
        seen.add(real)
        dirnames.sort()
        if not dirnames and not filenames and here != directory:
            skipped.append(f"{here}: an empty directory (object stores keep no directories)")
        for name in sorted(filenames):
            path = here / name
            try:
                info = path.stat()  # follows links
            except OSError as error:
                skipped.append(f"{path}: {error.strerror or error} (a broken link?)")
                continue
            if not path.is_file():
                skipped.append(f"{path}: not a regular file")
                continue
            files.append((path.relative_to(directory).as_posix(), path, info.st_size))
    return files, skipped


async def _retrying(what: str, operation: Callable[[], Awaitable[T]], backoff_s: Sequence[float]) -> T:
    """``operation()``, again after each delay of ``backoff_s`` while it fails with a retryable error."""
    for delay in backoff_s:
        try:
            return await operation()
        except errors.StorageError as error:
            if not error.retryable:
                raise
            log.warning("%s failed, retrying in %.0fs: %s", what, delay, error.message)
        await asyncio.sleep(delay)
    return await operation()


async def _run_all(items: Iterable[T], job: Callable[[T], Awaitable[None]], concurrency: int, *, what: str) -> None:
    """``job(item)`` for every item, at most ``concurrency`` at once; every item is tried, then
    TransferFailed when any failed with a StorageError (other errors stop everything)."""
    pending = list(items)
    queue = iter(pending)
    failures: list[errors.StorageError] = []

    async def worker() -> None:
        for item in queue:  # one shared iterator: each item goes to exactly one worker
            try:
                await job(item)
            except errors.StorageError as error:
                log.error("%s: %s", what, error.message)
                failures.append(error)

    async with asyncio.TaskGroup() as group:
        for _ in range(max(1, min(concurrency, len(pending)))):
            group.create_task(worker())
    if failures:
        raise TransferFailed(
            f"{what}: {len(failures)} of {len(pending)} files failed; first: {failures[0].message}",
            retryable=all(f.retryable for f in failures),
        )
