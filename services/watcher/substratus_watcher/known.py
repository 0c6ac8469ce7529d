"""What the bus already holds: the last published version of every object, read back at start.

The watcher resumes from this state, so a restart publishes only what changed while it was away
(and tombstones for what was deleted), instead of the whole cluster again.
"""

from __future__ import annotations

import logging

import msgspec

from substratus_common.bus import connection
from substratus_common.events import envelope, payloads, streams, subjects
from substratus_common.kube.resources import SUBSTRATUS_KINDS, WATCHED_CHILDREN, ResourceType
from substratus_watcher import sync

log = logging.getLogger(__name__)

_BY_PLURAL = {rt.plural: rt for rt in SUBSTRATUS_KINDS}
_BY_CHILD_KIND = {rt.kind.lower(): rt for rt in WATCHED_CHILDREN}

Known = dict[ResourceType, dict[sync.Key, sync.Version]]


async def load(bus: connection.Bus) -> Known:
    known: Known = {rt: {} for rt in (*SUBSTRATUS_KINDS, *WATCHED_CHILDREN)}
    count = 0
    async for msg in bus.last_per_subject(streams.CHANGES, f"{subjects.PREFIX}.{subjects.CHANGE}.>"):
        count += 1
        try:
            parsed = subjects.parse(msg.subject)
            event = envelope.decode(msg.data)
            if envelope.is_deleted(event.type):
                continue
            obj = payloads.change_object(event)
        except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
            continue
        rt = _BY_PLURAL.get(parsed.plural) if parsed.child_kind is None else _BY_CHILD_KIND.get(parsed.child_kind)
        if rt is None:
            continue
        known[rt][sync.key_of(obj)] = sync.version_of(obj)
    log.info("known state read from the stream", extra={"subjects": count})
    return known
