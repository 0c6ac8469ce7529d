"""What the uploader reports for one resource: pure functions of its spec, status and storage.

A resource asks for an upload with ``spec.build.upload`` (``md5Checksum``, ``requestID``). The
uploader answers in ``status.buildUpload`` and the ``Uploaded`` condition:

==========================  ==================================================================
state                       report
==========================  ==================================================================
found                       ``requestID``, ``storedMD5Checksum``; ``Uploaded=True/UploadFound``
awaiting                    ``signedURL``, ``requestID``, ``expiration``; ``Uploaded=False/AwaitingUpload``
expired                     ``requestID``, ``expiration``; ``Uploaded=False/UploadExpired``
stale request               ``requestID``; ``Uploaded=False/UploadExpired`` (the MD5 changed under
                            the same request ID: the URL answers another tarball)
==========================  ==================================================================

A new signed URL is made only when ``requestID`` differs from ``status.buildUpload.requestID``
and storage does not already hold the tarball. Messages never contain the URL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from substratus_common.api import artifacts, resources
from substratus_common.api.types import ConditionType, Reason
from substratus_common.events import payloads
from substratus_common.runtime import report
from substratus_common.storage import base

Object = dict[str, Any]

UPLOAD_EXPIRED = Reason.UPLOAD_EXPIRED
"""Reason: the signed URL expired (or answers another MD5); the user must set a new requestID."""

UPLOADED = str(ConditionType.UPLOADED)


@dataclass(frozen=True)
class Request:
    """What ``spec.build.upload`` of one resource asks for."""

    plural: str
    namespace: str
    name: str
    uid: str
    request_id: str
    md5: str
    """Lowercase hex."""
    key: str
    """Where the tarball goes in the bucket: ``<prefix>/uploads/<md5>.tar.gz``."""


@dataclass(frozen=True)
class Answer:
    """What ``status.buildUpload`` says about the request it answered."""

    request_id: str | None
    signed_url: str | None
    expiration: dt.datetime | None
    stored_md5: str | None

    @classmethod
    def of(cls, obj: Object) -> Answer:
        status = obj.get("status") or {}
        upload = status.get("buildUpload") or {}
        return cls(
            request_id=upload.get("requestID") or None,
            signed_url=upload.get("signedURL") or None,
            expiration=parse_time(upload.get("expiration")),
            stored_md5=(upload.get("storedMD5Checksum") or "").lower() or None,
        )


@dataclass(frozen=True)
class Report:
    """The uploader's whole view of one resource: its condition and ``status.buildUpload``."""

    condition: payloads.ConditionReport | None
    build_upload: dict[str, str] | None


def request_of(obj: Object, cluster: str) -> Request | None:
    """The upload ``obj`` asks for, or None without ``spec.build.upload``; ValueError for a bad MD5."""
    upload = ((obj.get("spec") or {}).get("build") or {}).get("upload")
    if not isinstance(upload, dict):
        return None
    meta = obj["metadata"]
    plural = resources.kind_info(str(obj["kind"])).plural
    md5 = base.check_md5_hex(str(upload.get("md5Checksum") or ""))
    namespace, name = str(meta["namespace"]), str(meta["name"])
    return Request(
        plural=plural,
        namespace=namespace,
        name=name,
        uid=str(meta.get("uid")),
        request_id=str(upload.get("requestID") or ""),
        md5=md5,
        key=artifacts.upload_key(cluster, namespace, plural, name, md5),
    )


def asks_for_upload(obj: Object) -> bool:
    """Whether ``spec.build.upload`` is set (without checking it)."""
    return isinstance(((obj.get("spec") or {}).get("build") or {}).get("upload"), dict)


def has_upload_status(obj: Object) -> bool:
    """Whether the uploader has written anything on ``obj`` (to clear once the upload is gone)."""
    status = obj.get("status") or {}
    return bool(status.get("buildUpload")) or any(
        c.get("type") == UPLOADED for c in status.get("conditions") or [] if isinstance(c, dict)
    )


def format_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def url_is_for(url: str, key: str) -> bool:
    """Whether a signed URL writes ``key`` (path style ``/bucket/key``, virtual host ``/key``, ``file://``)."""
    return unquote(urlsplit(url).path).endswith("/" + key)


def found(request: Request) -> Report:
    return Report(
        report.condition(
            UPLOADED, True, Reason.UPLOAD_FOUND, f"storage holds the build context with MD5 {request.md5}"
        ),
        {"requestID": request.request_id, "storedMD5Checksum": request.md5},
    )


def awaiting(request: Request, url: str, expiration: dt.datetime) -> Report:
    when = format_time(expiration)
    return Report(
        report.condition(
            UPLOADED,
            False,
            Reason.AWAITING_UPLOAD,
            f"PUT the tar'd build context (MD5 {request.md5}) to status.buildUpload.signedURL with "
            f"Content-Type application/octet-stream and its Content-MD5 before {when} (requestID {request.request_id})",
        ),
        {"signedURL": url, "requestID": request.request_id, "expiration": when},
    )


def expired(request: Request, expiration: dt.datetime | None) -> Report:
    upload = {"requestID": request.request_id}
    when = ""
    if expiration is not None:
        upload["expiration"] = format_time(expiration)
        when = f" at {upload['expiration']}"
    return Report(
        report.condition(
            UPLOADED,
            False,
            UPLOAD_EXPIRED,
            f"the signed URL for requestID {request.request_id} expired{when} before storage held a build context "
            f"with MD5 {request.md5}; set a new spec.build.upload.requestID to get a new URL "
            "(kubectl applybuild does)",
        ),
        upload,
    )


def stale_request(request: Request) -> Report:
    return Report(
        report.condition(
            UPLOADED,
            False,
            UPLOAD_EXPIRED,
            f"spec.build.upload.md5Checksum changed to {request.md5} but requestID {request.request_id} was "
            "answered for another MD5; set a new spec.build.upload.requestID to get a URL for this one",
        ),
        {"requestID": request.request_id},
    )


def cleared() -> Report:
    """No upload asked for any more: the uploader owns nothing on the resource."""
    return Report(None, None)


def status_says(obj: Object, made: Report) -> bool:
    """Whether the resource's status already holds ``made`` at its current generation."""
    status = obj.get("status") or {}
    generation = int((obj.get("metadata") or {}).get("generation") or 0)
    if (status.get("buildUpload") or None) != made.build_upload:
        return False
    written = next((c for c in status.get("conditions") or [] if c.get("type") == UPLOADED), None)
    if made.condition is None:
        return written is None
    return (
        written is not None
        and int(written.get("observedGeneration") or 0) == generation
        and (written.get("status"), written.get("reason"), written.get("message", ""))
        == (made.condition.status, made.condition.reason, made.condition.message)
    )
