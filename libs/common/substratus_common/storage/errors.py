"""Storage errors, translated once from botocore, aiohttp and the file system.

``retryable`` tells the runtime whether to try again later (5xx, 429, timeouts, lost
connections) or to report a condition and stop (forbidden, missing bucket, bad request). Messages
name the operation and the key, never a signed URL.
"""

from __future__ import annotations


class StorageError(Exception):
    """Storage could not be reached or answered with an error; retrying later may help."""

    retryable = True

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class StorageUnavailable(StorageError):
    """A connection failed, timed out, or storage answered 5xx/429/408."""


class StorageRefused(StorageError):
    """Storage refused the request (403, missing bucket, bad request): an operator must fix it."""

    retryable = False


class UploadRefused(StorageError):
    """A signed PUT was refused by storage (wrong body, wrong MD5, expired, bad signature)."""

    retryable = False


def from_status(operation: str, status: int, code: str = "", detail: str = "") -> StorageError:
    """An error for an HTTP answer ``status`` (with the service's error ``code``) to ``operation``."""
    text = f"{operation}: {status}{' ' + code if code else ''}{': ' + detail if detail else ''}"
    if status in (408, 429) or status >= 500 or status == 0:
        return StorageUnavailable(text, status=status, code=code)
    return StorageRefused(text, status=status, code=code)
