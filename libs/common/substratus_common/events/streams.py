"""The three streams and their settings (provisioned idempotently by the bus layer).

Every stream is bounded three ways: by age, by messages per subject, and by bytes. When a stream
is full the oldest messages go (discard old), never the newest: a publish is not refused, and
what was dropped is stored again by the watcher's next resync, which compares the live objects
with the last message per subject (docs/adr/130).
"""

from __future__ import annotations

from dataclasses import dataclass

from substratus_common import config
from substratus_common.events import subjects

CHANGES = "SUBSTRATUS_CHANGES"
STATUS = "SUBSTRATUS_STATUS"
DEAD = "SUBSTRATUS_DEAD"
NAMES = (CHANGES, STATUS, DEAD)


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    replicas: int
    max_age_s: float
    max_msgs_per_subject: int
    duplicate_window_s: float
    max_bytes: int
    """Size of the stream on disk at most; -1 for no bound. Full: the oldest messages go."""
    max_msg_size: int
    """Largest message the stream stores (the watcher cuts larger objects to their identity)."""
    discard_old: bool = True
    file_storage: bool = True


def all_streams(settings: config.Settings) -> tuple[StreamSpec, ...]:
    def spec(name: str, stream: str) -> StreamSpec:
        return StreamSpec(
            name=name,
            subjects=(f"{subjects.PREFIX}.{stream}.>",),
            replicas=settings.stream_replicas,
            max_age_s=settings.stream_max_age_s,
            max_msgs_per_subject=settings.stream_max_msgs_per_subject,
            duplicate_window_s=settings.stream_duplicate_window_s,
            max_bytes=settings.stream_max_bytes,
            max_msg_size=settings.stream_max_msg_size,
        )

    return (spec(CHANGES, subjects.CHANGE), spec(STATUS, subjects.STATUS), spec(DEAD, subjects.DEAD))
