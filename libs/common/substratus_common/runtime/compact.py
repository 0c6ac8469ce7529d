"""A mapping that keeps each object as its JSON bytes, decoded again whenever it is read.

A view holds every resource a service follows, with their children: at 10,000 Models and their
Jobs, as decoded dicts, several hundred MiB. As JSON bytes (what the bus carried) they take a
tenth of that, and decoding one with msgspec when a pass reads it costs tens of microseconds. The
uid and resourceVersion of each are kept beside the bytes, so deciding which of two versions is
newer never decodes. Each read returns a new dict: a caller may change it freely.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

Object = dict[str, Any]
K = TypeVar("K")

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class Entry:
    uid: str | None
    version: str
    raw: bytes


def identity(obj: Object) -> tuple[str | None, str]:
    """(uid, resourceVersion) of an object."""
    meta = obj.get("metadata") or {}
    uid = meta.get("uid")
    return (None if uid is None else str(uid)), str(meta.get("resourceVersion") or "")


class Objects(MutableMapping[K, Object]):
    """Objects by key, stored as JSON bytes."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[K, Entry] = {}

    def __getitem__(self, key: K) -> Object:
        decoded: Object = _decoder.decode(self._entries[key].raw)
        return decoded

    def __setitem__(self, key: K, obj: Object) -> None:
        self.put(key, obj, _encoder.encode(obj))

    def put(self, key: K, obj: Object, raw: bytes) -> None:
        """Store ``obj`` whose JSON is ``raw`` already (the bytes an event carried)."""
        uid, version = identity(obj)
        self._entries[key] = Entry(uid, version, bytes(raw))

    def entry(self, key: K) -> Entry | None:
        return self._entries.get(key)

    def __delitem__(self, key: K) -> None:
        del self._entries[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries
