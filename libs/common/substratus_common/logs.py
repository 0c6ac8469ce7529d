"""JSON-lines logging; extra fields such as kind, namespace, name and event id travel with each record."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, TextIO

# ``scheme://user:password@host`` anywhere in a text: the userinfo goes, scheme and host stay.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^\s/@'\"]+@")
REDACTED = "***"


def redact_urls(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***`` (``nats://***@host:4222``)."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)


# Attributes every LogRecord has; anything else was passed through ``extra=`` and is logged.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                doc[key] = value
        if record.exc_text:
            doc["exc"] = record.exc_text
        elif record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        # Last, over the whole line: a password in a URL reaches no log, whichever field carried it
        # (message, an extra, an exception's text). JSON escapes keep the pattern's delimiters.
        return redact_urls(json.dumps(doc, default=str))


def setup(level: str = "INFO", service: str | None = None, stream: TextIO | None = None) -> None:
    """JSON lines on ``stream`` (stderr by default) for the root logger."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if service is not None:
        handler.addFilter(_ServiceName(service))
    handler.addFilter(ScrubUrlCredentials())


class ScrubUrlCredentials(logging.Filter):
    """Removes URL userinfo from a record before any handler sees it: message, arguments, string
    extras and the exception's text (which a handler would otherwise format from the live error)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact_urls(message), None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact_urls(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_urls(record.exc_text)
        return True


class _ServiceName(logging.Filter):
    """Stamps the service's name on each record as it is written.

    A filter, not a record factory: a factory sets the attribute before ``extra`` is merged, so
    any ``extra={"service": ...}`` would raise inside the log call and fail the caller's work.
    """

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "service"):
            record.service = self.service
        return True
