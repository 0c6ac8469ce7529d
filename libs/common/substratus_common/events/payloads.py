"""The payloads inside ``data``: a changed object, a service's status report, a dead letter."""

from __future__ import annotations

import hashlib
from typing import Any, TypeVar

import msgspec

from substratus_common.events import envelope

Object = dict[str, Any]

# Past this size the change event carries only the object's identity; readers fetch the rest.
MAX_OBJECT_BYTES = 512 * 1024


class ConditionReport(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    status: str
    """``True``, ``False`` or ``Unknown``."""
    reason: str
    message: str = ""


class StatusReport(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One service's view of the status fields it owns, for one generation of one resource.

    The status writer applies it under ``substratus-<service>``; reports from an older
    generation than what is already written are dropped.
    """

    kind: str
    namespace: str
    name: str
    uid: str
    generation: int
    service: str
    conditions: list[ConditionReport] = []
    artifacts_url: str | None = None
    build_upload: dict[str, str] | None = None
    """``status.buildUpload`` fields (wire names) the uploader owns."""
    image: str | None = None
    """``spec.image`` after a successful build (builder only)."""
    observed: str = ""
    """Id of the event the report answers; a condition that flips back later is a new report."""

    def digest(self) -> str:
        """Short hash of the report; part of the event id so an identical report is deduplicated."""
        return hashlib.sha256(msgspec.json.encode(self)).hexdigest()[:16]

    def event_id(self) -> str:
        """``<uid>/<generation>/<service>/<hash of report>``."""
        return f"{self.uid}/{self.generation}/{self.service}/{self.digest()}"


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A message a service gave up on, with why, for an operator to inspect or replay."""

    service: str
    reason: str
    """``undecodable``, ``unknown-type``, ``max-deliveries`` or ``permanent``."""
    error: str
    stream: str
    original_subject: str
    stream_sequence: int
    deliveries: int
    original: str
    """The original message as text (undecodable bytes replaced)."""


def identity(obj: Object) -> Object:
    """What is kept of an object too large for the bus: enough to fetch it."""
    meta = obj.get("metadata", {})
    keep = ("name", "namespace", "uid", "resourceVersion", "generation", "labels", "ownerReferences")
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {k: meta[k] for k in keep if k in meta},
    }


def without_managed_fields(obj: Object) -> Object:
    """The object without managedFields: they are large, change often and nobody downstream reads them."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def change_data(obj: Object) -> tuple[Object, bool]:
    """The object for a change event, and whether it was cut down to its identity."""
    if len(msgspec.json.encode(obj)) > MAX_OBJECT_BYTES:
        return identity(obj), True
    return obj, False


T = TypeVar("T")


def decode_data(event: envelope.CloudEvent, type_: type[T]) -> T:
    """The event's ``data`` as ``type_``; msgspec.ValidationError when it is not one."""
    return msgspec.json.decode(event.data, type=type_)


def change_object(event: envelope.CloudEvent) -> Object:
    obj = msgspec.json.decode(event.data)
    if not isinstance(obj, dict):
        raise msgspec.ValidationError("a change event's data must be an object")
    return obj
