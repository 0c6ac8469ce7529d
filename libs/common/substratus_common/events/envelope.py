"""The CloudEvents 1.0 envelope (structured JSON mode) every message on the bus uses.

``data`` stays raw bytes in the envelope and is decoded into the payload type named by ``type``
only by whoever needs it, so a reader of the audit trail never pays for payloads it skips.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
STATUS_TYPE = "ai.substratus.status.v1"
DEAD_TYPE = "ai.substratus.dead.v1"


class CloudEvent(msgspec.Struct, kw_only=True, frozen=True):
    """One event. ``id`` is also the ``Nats-Msg-Id``, so a republished event is dropped."""

    specversion: str = SPEC_VERSION
    id: str
    source: str
    type: str
    subject: str
    time: str
    datacontenttype: str = CONTENT_TYPE
    data: msgspec.Raw = msgspec.Raw(b"null")
    substratustruncated: bool | msgspec.UnsetType = msgspec.UNSET
    """Extension attribute: the object was too large; ``data`` holds only its identity."""


def change_type(kind: str, deleted: bool) -> str:
    """``ai.substratus.<kind>.<changed|deleted>.v1`` for a resource or a child kind."""
    return f"ai.substratus.{kind.lower()}.{'deleted' if deleted else 'changed'}.v1"


def is_change_type(event_type: str) -> bool:
    return event_type.startswith("ai.substratus.") and event_type.endswith((".changed.v1", ".deleted.v1"))


def is_deleted(event_type: str) -> bool:
    return event_type.endswith(".deleted.v1")


def now() -> str:
    """RFC 3339 UTC time with microseconds."""
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


_encoder = msgspec.json.Encoder()
_envelope_decoder = msgspec.json.Decoder(CloudEvent)


def make(*, id: str, source: str, type: str, subject: str, data: Any, truncated: bool = False) -> CloudEvent:
    return CloudEvent(
        id=id,
        source=source,
        type=type,
        subject=subject,
        time=now(),
        data=msgspec.Raw(_encoder.encode(data)),
        substratustruncated=True if truncated else msgspec.UNSET,
    )


def encode(event: CloudEvent) -> bytes:
    return _encoder.encode(event)


def decode(payload: bytes) -> CloudEvent:
    """The envelope, or msgspec.DecodeError / ValidationError for something that is not one."""
    event = _envelope_decoder.decode(payload)
    if event.specversion != SPEC_VERSION:
        raise msgspec.ValidationError(f"specversion must be {SPEC_VERSION}, not {event.specversion!r}")
    return event
