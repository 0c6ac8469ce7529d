"""NATS subjects of the three streams, built and parsed in one place.

A ``.`` inside a Kubernetes name is written ``_`` (Kubernetes names never contain ``_``), so
every name is a single subject token and ``substratus.change.models.ns.>`` means "this namespace".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

PREFIX = "substratus"
CHANGE = "change"
STATUS = "status"
DEAD = "dead"


def escape(token: str) -> str:
    """A Kubernetes name or namespace as one subject token."""
    if not token or "_" in token or any(c in token for c in " *>\t\r\n"):
        raise ValueError(f"not a Kubernetes name: {token!r}")
    return token.replace(".", "_")


def unescape(token: str) -> str:
    return token.replace("_", ".")


def change(plural: str, namespace: str, name: str) -> str:
    """``substratus.change.<plural>.<ns>.<name>``: the resource changed or was deleted."""
    return f"{PREFIX}.{CHANGE}.{plural}.{escape(namespace)}.{escape(name)}"


def child_change(plural: str, namespace: str, name: str, child_kind: str, child: str) -> str:
    """``…<name>.<childkind>.<child>``: a Job, Pod or Deployment owned by the resource changed."""
    return f"{change(plural, namespace, name)}.{child_kind.lower()}.{escape(child)}"


def status(plural: str, namespace: str, name: str, service: str) -> str:
    """``substratus.status.<plural>.<ns>.<name>.<service>``: one service's report."""
    return f"{PREFIX}.{STATUS}.{plural}.{escape(namespace)}.{escape(name)}.{service}"


def dead(service: str, plural: str, namespace: str, name: str) -> str:
    """``substratus.dead.<service>.<plural>.<ns>.<name>``: a message the service gave up on."""
    return f"{PREFIX}.{DEAD}.{service}.{plural}.{escape(namespace)}.{escape(name)}"


def change_filter(plural: str = "*", namespace: str = "*") -> str:
    """Every change (own and children's) of a kind, optionally in one namespace."""
    ns = namespace if namespace == "*" else escape(namespace)
    return f"{PREFIX}.{CHANGE}.{plural}.{ns}.>"


class ResourceKey(NamedTuple):
    """One resource, as the work queue, the view and the locks name it (a plain tuple too)."""

    plural: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.plural}/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Subject:
    """A parsed subject: which resource it is about, and what part of the lifecycle."""

    stream: str
    """``change``, ``status`` or ``dead``."""
    plural: str
    namespace: str
    name: str
    child_kind: str | None = None
    child: str | None = None
    service: str | None = None

    @property
    def key(self) -> ResourceKey:
        """The resource the subject is about; one handler at a time runs per key."""
        return ResourceKey(self.plural, self.namespace, self.name)


def parse(subject: str) -> Subject:
    """The parts of one of our subjects, or ValueError saying what is wrong with it."""
    parts = subject.split(".")
    if len(parts) < 5 or parts[0] != PREFIX:
        raise ValueError(f"not a Substratus subject: {subject!r}")
    stream = parts[1]
    if stream == CHANGE and len(parts) == 5:
        return Subject(CHANGE, parts[2], unescape(parts[3]), unescape(parts[4]))
    if stream == CHANGE and len(parts) == 7:
        return Subject(CHANGE, parts[2], unescape(parts[3]), unescape(parts[4]), parts[5], unescape(parts[6]))
    if stream == STATUS and len(parts) == 6:
        return Subject(STATUS, parts[2], unescape(parts[3]), unescape(parts[4]), service=parts[5])
    if stream == DEAD and len(parts) == 6:
        return Subject(DEAD, parts[3], unescape(parts[4]), unescape(parts[5]), service=parts[2])
    raise ValueError(f"not a Substratus subject: {subject!r}")
