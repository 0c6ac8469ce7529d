"""Apply one status report: the service's conditions under its own field manager, then ready.

Reads the resource, drops a report about another incarnation (uid) or an older generation than
what is written, applies only what changes, and sets ``spec.image`` after a build.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from substratus_common import errors
from substratus_common.api import resources
from substratus_common.events import payloads, subjects
from substratus_common.kube import client
from substratus_common.kube.resources import SUBSTRATUS_KINDS
from substratus_common.metrics import RuntimeMetrics
from substratus_status_writer import events, patches

log = logging.getLogger(__name__)

_TYPES = {rt.kind: rt for rt in SUBSTRATUS_KINDS}
BUILDER = "builder"


class Writer:
    def __init__(self, kube: client.Kube, metrics: RuntimeMetrics | None = None) -> None:
        self.kube = kube
        self.metrics = metrics
        self.writes = 0
        self.stale = 0
        self.events = events.Recorder(kube, metrics)  # Kubernetes Events of transitions (events.py)

    async def apply(self, report: payloads.StatusReport) -> None:
        rt = _TYPES.get(report.kind)
        if rt is None:
            raise errors.PermanentError(f"status report for unknown kind {report.kind!r}", reason="Invalid")
        current = await self.kube.get(rt, report.namespace, report.name)
        if current is None or current.get("metadata", {}).get("uid") != report.uid:
            return  # deleted, or a report about an earlier object of the same name
        before = current
        extra: dict[str, Any] = {}
        if report.artifacts_url:
            extra["artifacts"] = {"url": report.artifacts_url}
        if report.build_upload is not None:
            extra["buildUpload"] = dict(report.build_upload)
        reported = [patches.ReportedCondition(c.type, c.status, c.reason, c.message) for c in report.conditions]
        body = patches.status_body(current, reported, report.generation, extra, dt.datetime.now(dt.UTC))
        if body is None:
            self.stale += 1
            log.info("dropped a stale report", extra=_fields(report))
            return
        body = patches.with_readiness(current, body)
        if not patches.unchanged(current, body):
            current = await self.kube.apply_status(body, patches.manager(report.service))
            self.writes += 1
        if report.image and report.service == BUILDER:
            image = patches.image_body(current, report.image)
            if image is not None:
                current = await self.kube.apply(image, patches.manager(report.service))
                self.writes += 1
        ready = patches.readiness_body(current)
        if ready is not None:
            current = await self.kube.apply_status(ready, patches.STATUS_WRITER_MANAGER)
            self.writes += 1
        self.events.observe(before, current)  # queues only: never fails or delays the write


def check_origin(report: payloads.StatusReport, subject: subjects.Subject) -> None:
    """Refuse a report that claims another service or resource than the subject it came on.

    NATS permissions let each service publish only on its own status subjects; the report's
    ``service`` picks the field manager (and only ``builder`` may set ``spec.image``), so a body
    that disagrees with its subject would let one service write as another.
    """
    plural = resources.kind_info(report.kind).plural if report.kind in _TYPES else None
    if subject.service != report.service or (plural, report.namespace, report.name) != subject.key:
        raise errors.PermanentError(
            f"a report from {report.service!r} about {report.kind} {report.namespace}/{report.name} "
            f"arrived on {subject.service!r}'s subject for {'/'.join(subject.key)}",
            reason="Forbidden",
        )


def _fields(report: payloads.StatusReport) -> dict[str, object]:
    return {
        "kind": report.kind,
        "namespace": report.namespace,
        "object": report.name,
        "reporter": report.service,
        "generation": report.generation,
    }
