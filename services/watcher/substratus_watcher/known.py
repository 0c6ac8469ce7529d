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
Labels = dict[ResourceType, dict[sync.Key, dict[str, str]]]


def subject_filter(rt: ResourceType | None = None) -> str:
    """The change subjects of one watched type (all of them when ``rt`` is None)."""
    base = f"{subjects.PREFIX}.{subjects.CHANGE}"
    if rt is None:
        return f"{base}.>"
    if rt in SUBSTRATUS_KINDS:
        return f"{base}.{rt.plural}.*.*"
    return f"{base}.*.*.*.{rt.kind.lower()}.*"


async def load(bus: connection.Bus, rt: ResourceType | None = None) -> tuple[Known, Labels]:
    """The last stored version (and labels, which children's tombstones need) of every live object,
    of one type or of all.

    The key comes from the subject, not from the payload: a foreign or malformed event on one of
    our subjects (no metadata, no uid) is skipped instead of becoming a nameless tombstone later.
    """
    known: Known = {rt: {} for rt in (*SUBSTRATUS_KINDS, *WATCHED_CHILDREN)}
    labels: Labels = {rt: {} for rt in known}
    count = skipped = 0
    async for msg in bus.last_per_subject(streams.CHANGES, subject_filter(rt)):
        count += 1
        try:
            parsed = subjects.parse(msg.subject)
            event = envelope.decode(msg.data)
            if envelope.is_deleted(event.type):
                continue
            obj = payloads.change_object(event)
        except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
            skipped += 1
            continue
        rt = _BY_PLURAL.get(parsed.plural) if parsed.child_kind is None else _BY_CHILD_KIND.get(parsed.child_kind)
        version = sync.version_of(obj)
        if rt is None or not version.uid or not version.resource_version:
            skipped += 1
            continue
        name = parsed.name if parsed.child is None else parsed.child
        key = (parsed.namespace, name)
        known[rt][key] = version
        meta_labels = (obj.get("metadata") or {}).get("labels")
        if isinstance(meta_labels, dict):
            labels[rt][key] = {str(k): str(v) for k, v in meta_labels.items()}
    log.info(
        "known state read from the stream",
        extra={"resource": rt.plural if rt else "all", "subjects": count, "skipped": skipped},
    )
    return known, labels


async def stored(
    bus: connection.Bus, rt: ResourceType
) -> tuple[dict[sync.Key, sync.Version], dict[sync.Key, dict[str, str]]]:
    """What the stream holds now for one type: what a resync compares the live list with."""
    known, labels = await load(bus, rt)
    return known[rt], labels[rt]
