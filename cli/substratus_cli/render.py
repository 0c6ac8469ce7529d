"""One readable line per stored event: time, short type, subject and what changed (no I/O).

2024-05-01T12:00:00.123Z  model.changed   models/team-a/opt-125m   rv=5012 gen=1
2024-05-01T12:00:00.201Z  status          models/team-a/opt-125m   trainer gen=1 Complete=False/JobNotComplete
2024-05-01T12:00:09.734Z  job.changed     models/team-a/opt-125m/jobs/opt-125m-modeller  rv=5090 succeeded=1
2024-05-01T12:01:00.002Z  dead            models/team-a/opt-125m   trainer max-deliveries after 8: ...
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import msgspec

from substratus_common.events import envelope, payloads

TYPE_WIDTH = 15
SUBJECT_WIDTH = 40
MESSAGE_CHARS = 80


@dataclass(frozen=True)
class Stored:
    """A message as the stream holds it."""

    stream: str
    subject: str
    sequence: int
    stored_at: dt.datetime
    data: bytes


def format_time(value: str | dt.datetime) -> str:
    """UTC, millisecond precision, ``Z``; text that is not a time is shown as it is."""
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        when = value
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def short_type(event_type: str) -> str:
    """``model.changed`` for ``ai.substratus.model.changed.v1``; ``status``, ``dead``."""
    if event_type == envelope.STATUS_TYPE:
        return "status"
    if event_type == envelope.DEAD_TYPE:
        return "dead"
    if event_type.startswith("ai.substratus.") and event_type.endswith(".v1"):
        return event_type.removeprefix("ai.substratus.").removesuffix(".v1")
    return event_type


def _clip(text: str, limit: int = MESSAGE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def change_summary(event: envelope.CloudEvent) -> str:
    """resourceVersion and generation, and what the object says about its progress."""
    try:
        obj = payloads.change_object(event)
    except msgspec.DecodeError:
        return "(data is not JSON)"
    except msgspec.ValidationError as error:
        return f"({error})"
    found = obj.get("metadata")
    meta: dict[str, Any] = found if isinstance(found, dict) else {}
    parts = [f"rv={meta.get('resourceVersion', '?')}"]
    if "generation" in meta:
        parts.append(f"gen={meta['generation']}")
    deleted = envelope.is_deleted(event.type)
    if deleted and "creationTimestamp" not in meta:
        parts.append("tombstone")  # deleted while the watcher was away: only its identity is known
    status = obj.get("status")
    if isinstance(status, dict) and not deleted:
        parts.extend(_status_parts(str(obj.get("kind", "")), status))
    if event.substratustruncated is True:
        parts.append("(truncated)")
    return " ".join(parts)


def _status_parts(kind: str, status: dict[str, Any]) -> list[str]:
    parts: list[str] = []
    if kind == "Pod" and status.get("phase"):
        parts.append(f"phase={status['phase']}")
    elif kind == "Job":
        parts.extend(f"{key}={status[key]}" for key in ("active", "succeeded", "failed") if status.get(key))
    elif kind == "Deployment":
        parts.append(f"ready={status.get('readyReplicas', 0)}/{status.get('replicas', 0)}")
    elif "ready" in status:
        parts.append(f"ready={str(bool(status['ready'])).lower()}")
    return parts


def status_summary(event: envelope.CloudEvent) -> str:
    """The reporting service, the generation it saw, and its conditions."""
    try:
        report = payloads.decode_data(event, payloads.StatusReport)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        return f"(not a status report: {error})"
    parts = [report.service, f"gen={report.generation}"]
    for c in report.conditions:
        text = f"{c.type}={c.status}/{c.reason}"
        if c.message:
            text += f' "{_clip(c.message)}"'
        parts.append(text)
    if report.image:
        parts.append(f"image={report.image}")
    if report.artifacts_url:
        parts.append(f"artifacts={report.artifacts_url}")
    return " ".join(parts)


def dead_summary(event: envelope.CloudEvent) -> str:
    """Who gave up, why, after how many deliveries, and on which stored message."""
    try:
        letter = payloads.decode_data(event, payloads.DeadLetter)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        return f"(not a dead letter: {error})"
    return (
        f"{letter.service} {letter.reason} after {letter.deliveries} deliveries"
        f" of {letter.stream}#{letter.stream_sequence}: {_clip(letter.error)}"
    )


def summary(event: envelope.CloudEvent) -> str:
    if event.type == envelope.STATUS_TYPE:
        return status_summary(event)
    if event.type == envelope.DEAD_TYPE:
        return dead_summary(event)
    if envelope.is_change_type(event.type):
        return change_summary(event)
    return ""


def line(event: envelope.CloudEvent) -> str:
    """The event as one line: time, short type, subject, summary."""
    text = f"{format_time(event.time)}  {short_type(event.type):<{TYPE_WIDTH}} {event.subject:<{SUBJECT_WIDTH}} "
    return (text + summary(event)).rstrip()


def undecodable_line(stored: Stored, error: str) -> str:
    """A stored message that is not a CloudEvent (it can only be in the stream by mistake)."""
    return (
        f"{format_time(stored.stored_at)}  {'undecodable':<{TYPE_WIDTH}} {stored.subject:<{SUBJECT_WIDTH}} "
        f"{stored.stream}#{stored.sequence}: {_clip(error)}"
    )


def render(stored: Stored, *, as_json: bool) -> tuple[str | None, str | None]:
    """(line for stdout, warning for stderr): ``--json`` prints the CloudEvent as stored, one per line."""
    try:
        event = envelope.decode(stored.data)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        if as_json:
            return None, f"skipped {stored.stream}#{stored.sequence} on {stored.subject}: not a CloudEvent ({error})"
        return undecodable_line(stored, str(error)), None
    if as_json:
        # Re-encoded compactly, so a payload stored with newlines still prints as one line.
        return msgspec.json.encode(msgspec.json.decode(stored.data)).decode(), None
    return line(event), None
