"""The three streams and their settings (provisioned idempotently by the bus layer)."""

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
        )

    return (spec(CHANGES, subjects.CHANGE), spec(STATUS, subjects.STATUS), spec(DEAD, subjects.DEAD))
