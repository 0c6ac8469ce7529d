"""Kubernetes API errors, translated once from kubernetes_asyncio and aiohttp.

``retryable`` tells the runtime whether to try again later (5xx, 429, conflicts, lost
connections) or to report a condition and stop (invalid, forbidden).
"""

from __future__ import annotations

import json
from typing import Any

from substratus_common.kube.sdk import ApiException


class APIError(Exception):
    retryable = True
    outage = False
    """The API server is away or overloaded (see ``errors.is_outage``)."""
    retry_after_s: float | None = None
    """What the API server's ``Retry-After`` asked for (429 from API Priority and Fairness, 503)."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason


OUTAGE_STATUSES = frozenset({0, 429, 502, 503, 504})
"""No answer at all (0), throttled, or a gateway or server saying it is not available now."""


class APIUnavailable(APIError):
    """The API server could not be reached or answered 5xx/429."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message, status=status, reason=reason)
        # A 500 can be a broken webhook that stays broken: it counts towards the delivery limit.
        self.outage = status in OUTAGE_STATUSES


class NotFound(APIError):
    retryable = False


class Conflict(APIError):
    """A field-manager conflict or a stale resourceVersion: retry after reading again."""


class Gone(APIError):
    """The watched resourceVersion was compacted away: list again."""


class WatchStalled(APIError):
    """A watch stream went silent longer than allowed: watch again from the last version."""


class Forbidden(APIError):
    retryable = False


class Invalid(APIError):
    """The API server refused the object (422, or 400 for a bad request)."""

    retryable = False


def from_status(status: dict[str, Any]) -> APIError:
    """An error from a ``metav1.Status`` document (as in watch ERROR events and error bodies)."""
    code = int(status.get("code") or 0)
    message = str(status.get("message") or status.get("reason") or "Kubernetes API error")
    reason = str(status.get("reason") or "")
    cls: type[APIError]
    if code == 404:
        cls = NotFound
    elif code == 409:
        cls = Conflict
    elif code == 410 or reason in ("Expired", "Gone"):
        cls = Gone
    elif code in (401, 403):
        cls = Forbidden
    elif code in (400, 422):
        cls = Invalid
    else:
        cls = APIUnavailable
    return cls(message, status=code, reason=reason)


MAX_RETRY_AFTER_S = 300.0
"""A longer ``Retry-After`` is taken as this: a pass is never put off for longer."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (the API server sends whole seconds); None when absent
    or not a number (an HTTP date is not something the API server sends)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def from_http(status: int, reason: str, body: bytes | str | None, *, retry_after: str | None = None) -> APIError:
    """An error from an HTTP answer, using the Status document in its body when there is one."""
    doc: Any = {}
    try:
        doc = json.loads(body or b"{}")
    except (ValueError, TypeError):
        doc = {}
    if not isinstance(doc, dict) or "code" not in doc:
        doc = {"code": status, "message": f"{status} {reason}", "reason": reason}
    error = from_status(doc)
    error.retry_after_s = parse_retry_after(retry_after)
    if error.retry_after_s is None and isinstance(doc.get("details"), dict):
        # The Status body carries it too (details.retryAfterSeconds) when the header was lost.
        error.retry_after_s = parse_retry_after(str(doc["details"].get("retryAfterSeconds") or ""))
    return error


def from_api_exception(error: ApiException) -> APIError:
    return from_http(int(error.status or 0), str(error.reason or ""), error.body)
