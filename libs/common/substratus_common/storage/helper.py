"""``substratus-storage``: the portable storage helper of workload Pods (docs/adr/053).

On clusters without a CSI driver for the bucket, a workload Pod runs this program (the image
``settings.storage_image``, see ``workloads/storage_mounts.py``) twice:

``substratus-storage download <url> <dir> [<url> <dir> ...]``
    As an init container: every object under each ``<url>`` (``s3://bucket/prefix``,
    ``gs://bucket/prefix`` or ``file:///dir``) is written to ``<dir>``, keeping relative paths.
    An empty prefix gives an empty directory. Exit 0 when everything arrived, 1 when a transfer
    failed (after bounded retries of retryable errors), 2 for bad arguments.

``substratus-storage upload-on-exit <dir> <url>``
    As a native sidecar: waits for SIGTERM or SIGINT (the kubelet sends SIGTERM once the workload
    container has exited), then stores every file under ``<dir>`` at ``<url>/<relative path>``
    and exits 0, or 1 when an upload failed. Further signals during the upload are ignored; the
    Pod's termination grace bounds it.

Settings come from ``SUBSTRATUS_*`` env (``SUBSTRATUS_BUCKET_URL``, ``SUBSTRATUS_S3_ENDPOINT_URL``,
``SUBSTRATUS_S3_REGION``, ``SUBSTRATUS_GCS_ENDPOINT_URL``, ``SUBSTRATUS_LOG_LEVEL``), credentials
from the standard AWS or Google variables. Logs are JSON lines on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from substratus_common import config, logs
from substratus_common.storage import errors, transfer

log = logging.getLogger("substratus_common.storage.helper")

EXIT_FAILED = 1
EXIT_USAGE = 2
WAITING = "waiting for SIGTERM or SIGINT to upload"
"""Logged once ``upload-on-exit`` handles the signals (tests wait for it)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="substratus-storage",
        description="The portable storage helper of workload Pods: download inputs, upload artifacts on exit.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    download = commands.add_parser("download", help="download bucket prefixes into directories, then exit")
    download.add_argument("pairs", nargs="+", metavar="URL DIR", help="a bucket URL and the directory it goes to")
    upload = commands.add_parser("upload-on-exit", help="on SIGTERM or SIGINT, upload a directory, then exit")
    upload.add_argument("directory", type=Path)
    upload.add_argument("url")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settings = config.Settings(service="storage")
    logs.setup(settings.log_level, service="storage")
    if args.command == "download" and len(args.pairs) % 2:
        parser.error("download takes pairs: <url> <dir> [<url> <dir> ...]")
    pairs = (
        [(url, Path(d)) for url, d in zip(args.pairs[::2], args.pairs[1::2], strict=True)]
        if args.command == "download"
        else [(args.url, args.directory)]
    )
    for url, _ in pairs:
        try:
            transfer.split_url(url, settings)  # a bad URL fails now, not after the workload ran
        except ValueError as error:
            parser.error(str(error))
    if args.command == "download":
        return asyncio.run(_download(pairs, settings))
    return asyncio.run(_upload_on_exit(args.directory, args.url, settings))


async def _download(pairs: Sequence[tuple[str, Path]], settings: config.Settings) -> int:
    for url, directory in pairs:
        storage, prefix = transfer.storage_for(url, settings)
        try:
            done = await transfer.download_prefix(storage, prefix, directory)
        except errors.StorageError as error:
            log.error("download %s to %s failed: %s", url, directory, error.message)
            return EXIT_FAILED
        finally:
            await storage.close()
        if done.files == 0:
            log.info("nothing stored under %s: %s stays empty", url, directory)
        else:
            log.info("downloaded %s to %s: %d files, %d bytes", url, directory, done.files, done.bytes)
    return 0


def _mark_ready() -> None:
    """For the sidecar's startup probe (workloads.storage_mounts.READY_FILE): the workload may start."""
    with contextlib.suppress(OSError):
        Path(os.environ.get("SUBSTRATUS_STORAGE_READY_FILE", "/tmp/substratus-storage-ready")).touch()


async def _upload_on_exit(directory: Path, url: str, settings: config.Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("%s during the upload: ignored, the upload goes on", name)
        else:
            log.info("%s: uploading %s to %s", name, directory, url)
            stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    _mark_ready()
    log.info("%s %s to %s", WAITING, directory, url)
    await stop.wait()
    storage, prefix = transfer.storage_for(url, settings)
    try:
        done = await transfer.upload_dir(storage, directory, prefix)
    except errors.StorageError as error:
        log.error("upload %s to %s failed: %s", directory, url, error.message)
        return EXIT_FAILED
    finally:
        await storage.close()
    log.info(
        "uploaded %s to %s: %d files, %d bytes, %d not uploaded",
        directory,
        url,
        done.files,
        done.bytes,
        len(done.skipped),
    )
    return 0


def run() -> None:
    """The console script."""
    sys.exit(main())


if __name__ == "__main__":
    run()
