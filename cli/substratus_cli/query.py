"""What ``substratus events`` was asked for: flag values checked and turned into stream filters (no I/O).

Every function here raises ``ValueError`` with a message a user can act on; the command line
layer names the flag in front of it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from substratus_common.events import streams, subjects
from substratus_common.kube.resources import SUBSTRATUS_KINDS, SUBSTRATUS_PLURALS

PLURALS = SUBSTRATUS_PLURALS
_KIND_NAMES = {
    **{rt.plural: rt.plural for rt in SUBSTRATUS_KINDS},
    **{rt.kind.lower(): rt.plural for rt in SUBSTRATUS_KINDS},
}

# A DNS-1123 label (namespaces) and subdomain (names of Substratus resources), as Kubernetes checks them.
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def plural(kind: str) -> str:
    """``models`` for ``models``, ``model`` or ``Model``; ValueError for anything else."""
    found = _KIND_NAMES.get(kind.strip().lower())
    if found is None:
        raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(PLURALS)} (singular works too)")
    return found


def namespace(value: str) -> str:
    if len(value) > 63 or not _LABEL.match(value):
        raise ValueError(f"{value!r} is not a namespace name (lowercase letters, digits and '-', at most 63)")
    return value


def name(value: str) -> str:
    if len(value) > 253 or not _SUBDOMAIN.match(value):
        raise ValueError(f"{value!r} is not a resource name (lowercase letters, digits, '-' and '.', at most 253)")
    return value


def duration(value: str) -> dt.timedelta:
    """``30s``, ``10m``, ``2h``, ``1d``, ``1h30m``, ``500ms``; ValueError for anything else."""
    text = value.strip()
    parts = list(_DURATION_PART.finditer(text))
    if not text or "".join(p.group(0) for p in parts) != text:
        raise ValueError(f"{value!r} is not a duration like 30s, 10m, 2h or 1h30m")
    return dt.timedelta(seconds=sum(float(p.group(1)) * _UNIT_SECONDS[p.group(2)] for p in parts))


def timestamp(value: str) -> dt.datetime:
    """An RFC 3339 time with a zone (``Z`` or ``+02:00``), as an aware datetime."""
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an RFC 3339 time like 2024-05-01T12:00:00Z") from None
    if when.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; add Z for UTC or an offset like +02:00")
    return when


def since(value: str) -> dt.timedelta | dt.datetime:
    """A duration back from now, or an RFC 3339 time."""
    if value[:1].isdigit() and ("-" in value or "T" in value):
        return timestamp(value)
    try:
        return duration(value)
    except ValueError:
        raise ValueError(f"{value!r} is neither a duration (30s, 10m, 2h) nor an RFC 3339 time") from None


@dataclass(frozen=True)
class Query:
    """Which events to show; ``None`` means any."""

    plural: str | None = None
    namespace: str | None = None
    name: str | None = None
    since: dt.timedelta | dt.datetime | None = None
    follow: bool = False
    as_json: bool = False

    def start_time(self, now: dt.datetime) -> dt.datetime | None:
        """Where replay starts: ``None`` for everything the streams hold."""
        if self.since is None:
            return None
        if isinstance(self.since, dt.timedelta):
            try:
                return now - self.since
            except OverflowError:
                return None  # further back than any clock: everything stored
        return self.since.astimezone(dt.UTC)

    def filters(self) -> dict[str, list[str]]:
        """NATS filter subjects per stream; within a stream they never overlap (JetStream refuses that)."""
        kind = self.plural or "*"
        ns = subjects.escape(self.namespace) if self.namespace else "*"
        name = subjects.escape(self.name) if self.name else "*"
        p = subjects.PREFIX
        if self.name:
            # The resource itself, and the Jobs, Pods and Deployments it owns.
            change = [f"{p}.{subjects.CHANGE}.{kind}.{ns}.{name}", f"{p}.{subjects.CHANGE}.{kind}.{ns}.{name}.>"]
        else:
            change = [f"{p}.{subjects.CHANGE}.{kind}.{ns}.>"]
        return {
            streams.CHANGES: change,
            streams.STATUS: [f"{p}.{subjects.STATUS}.{kind}.{ns}.{name}.*"],
            streams.DEAD: [f"{p}.{subjects.DEAD}.*.{kind}.{ns}.{name}"],
        }
