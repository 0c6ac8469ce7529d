"""Fetching inputs named in params: one URL into a file, with bounded time and retries."""

from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

TIMEOUT_S = 60
ATTEMPTS = 4


class FetchError(RuntimeError):
    """The URL could not be fetched after the retries; the message names it and why."""


def file_name(url: str, default: str) -> str:
    """The last path segment of ``url`` (``…/corpus.txt`` → ``corpus.txt``), else ``default``."""
    name = PurePosixPath(urlsplit(url).path).name
    return name if name not in ("", ".", "..") else default


def download(url: str, target: Path) -> int:
    """Write the body of ``url`` to ``target`` (via a partial file); returns the bytes written.

    A 4xx is final; connection errors and 5xx are retried after 1, 2 and 4 s.
    """
    if urlsplit(url).scheme not in ("http", "https", "file"):
        raise FetchError(f"{url}: only http, https and file URLs are fetched")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    last = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(2 ** (attempt - 1))
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, partial.open("wb") as out:
                shutil.copyfileobj(response, out)
            partial.replace(target)
            return target.stat().st_size
        except urllib.error.HTTPError as error:
            if error.code < 500:
                raise FetchError(f"{url}: HTTP {error.code} {error.reason}") from None
            last = f"HTTP {error.code} {error.reason}"
        except (urllib.error.URLError, OSError) as error:
            last = str(getattr(error, "reason", error))
    partial.unlink(missing_ok=True)
    raise FetchError(f"{url}: {last} (after {ATTEMPTS} attempts)")
