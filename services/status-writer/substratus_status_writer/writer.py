"""Apply status reports: each service's conditions under its own field manager, then ready.

Reads the resource, drops a report about another incarnation (uid) or an older generation than
what is written, applies only what changes, and sets ``spec.image`` after a build. Reports queued
for one resource coalesce (:func:`newest_per_service`): per reporting service only the newest is
applied, since each report carries that service's whole view (docs/adr/103).

The resource is read from the writer's view (the change stream, and the answers to its own
writes), not from the API: the first write carries the version it was computed from, so the API
server refuses it when the resource changed since; only then is it read from the API (ADR 136).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter

from substratus_common import errors
from substratus_common.api import resources
from substratus_common.events import payloads, subjects
from substratus_common.kube import client
from substratus_common.kube import errors as kube_errors
from substratus_common.kube.resources import SUBSTRATUS_KINDS, SUBSTRATUS_PLURALS, ResourceType
from substratus_common.metrics import RuntimeMetrics
from substratus_common.runtime import view
from substratus_status_writer import events, patches

log = logging.getLogger(__name__)

_TYPES = {rt.kind: rt for rt in SUBSTRATUS_KINDS}
BUILDER = "builder"
PLURALS = SUBSTRATUS_PLURALS
"""What the writer's view follows: the four kinds, without their children."""


class Writer:
    def __init__(
        self, kube: client.Kube, metrics: RuntimeMetrics | None = None, known: view.View | None = None
    ) -> None:
        self.kube = kube
        self.metrics = metrics
        self.known = known
        """The resources as the change stream and this writer's own writes last showed them."""
        self.writes = 0
        self.stale = 0
        self.reads = 0
        self.events = events.Recorder(kube, metrics)  # Kubernetes Events of transitions (events.py)
        registry = metrics.registry if metrics is not None else None
        self.reports = Counter(
            "substratus_status_reports",
            "Status reports by outcome: applied (written or already true), stale (older than what is"
            " written, or about another incarnation) or superseded (a newer report from the same service"
            " was queued for the same resource).",
            ["outcome"],
            registry=registry,
        )

    async def apply_all(self, reports: Sequence[payloads.StatusReport]) -> None:
        """Apply the reports queued for one resource (oldest first): per service, only the newest."""
        newest = newest_per_service(reports)
        superseded = len(reports) - len(newest)
        if superseded:
            self.reports.labels("superseded").inc(superseded)
            log.info("coalesced reports", extra={**_fields(newest[-1]), "superseded": superseded})
        for report in newest:
            await self.apply(report)

    async def apply(self, report: payloads.StatusReport) -> None:
        rt = _TYPES.get(report.kind)
        if rt is None:
            raise errors.PermanentError(f"status report for unknown kind {report.kind!r}", reason="Invalid")
        try:
            known = self._from_view(rt, report)
            if known is not None:
                try:
                    await self._apply_to(report, rt, known, precondition=True)
                    return
                except kube_errors.Conflict:
                    pass  # changed since the view saw it: read it and compute the write again
            self.reads += 1
            current = await self.kube.get(rt, report.namespace, report.name)
            await self._apply_to(report, rt, current, precondition=False)
        except kube_errors.NotFound:
            # Deleted since the view (or the read) saw it: the report is about nothing any more.
            self.reports.labels("stale").inc()
            log.info("dropped a report about a deleted resource", extra=_fields(report))

    def _from_view(self, rt: ResourceType, report: payloads.StatusReport) -> client.Object | None:
        """The resource as the view holds it, when that can be what the report is about: whole,
        the same incarnation, at least the report's generation, with a version to write against."""
        if self.known is None:
            return None
        found = self.known.get(rt.plural, report.namespace, report.name)
        if found is None or not view.View.trusted(found) or "kind" not in found:
            return None
        meta = found.get("metadata") or {}
        if meta.get("uid") != report.uid or not meta.get("resourceVersion"):
            return None
        return found if int(meta.get("generation") or 0) >= report.generation else None

    async def _apply_to(
        self, report: payloads.StatusReport, rt: ResourceType, current: client.Object | None, *, precondition: bool
    ) -> None:
        """Apply ``report`` to ``current``; with ``precondition`` the first write is refused
        (``Conflict``) unless the resource is still at ``current``'s version."""
        if current is None or current.get("metadata", {}).get("uid") != report.uid:
            self.reports.labels("stale").inc()
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
            self.reports.labels("stale").inc()
            log.info("dropped a stale report", extra=_fields(report))
            return
        body = patches.with_readiness(current, body)
        if not patches.unchanged(current, body):
            if precondition:
                version = current["metadata"]["resourceVersion"]
                body = {**body, "metadata": {**body["metadata"], "resourceVersion": version}}
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
        self.reports.labels("applied").inc()
        if self.known is not None:
            self.known.remember(subjects.ResourceKey(rt.plural, report.namespace, report.name), current)
        self.events.observe(before, current)  # queues only: never fails or delays the write


def newest_per_service(reports: Sequence[payloads.StatusReport]) -> list[payloads.StatusReport]:
    """Per reporting service, the report to apply out of several queued ones (in stream order).

    The newest is the latest about the incarnation (uid) the service reported on last, at its
    highest generation: a late report about an older generation never beats a newer one, and a
    report about a deleted-and-recreated object never beats one about the new object.
    """
    chosen: dict[str, tuple[int, payloads.StatusReport]] = {}
    last_uid = {r.service: r.uid for r in reports}
    for index, report in enumerate(reports):
        if report.uid != last_uid[report.service]:
            continue
        kept = chosen.get(report.service)
        if kept is None or report.generation >= kept[1].generation:
            chosen[report.service] = (index, report)
    return [report for _, report in sorted(chosen.values(), key=lambda item: item[0])]


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
