"""Publishing a service's status report: the only way a service changes a resource's status."""

from __future__ import annotations

from collections.abc import Sequence

from substratus_common.bus import connection
from substratus_common.events import envelope, payloads, subjects


async def publish(bus: connection.Bus, report: payloads.StatusReport, plural: str) -> bool:
    """Store the report on ``substratus.status.<plural>.<ns>.<name>.<service>``; False if a duplicate."""
    event = envelope.make(
        id=report.event_id(),
        source=bus.source,
        type=envelope.STATUS_TYPE,
        subject=f"{plural}/{report.namespace}/{report.name}",
        data=report,
    )
    return await bus.publish(subjects.status(plural, report.namespace, report.name, report.service), event)


def conditions(*items: tuple[str, str, str, str]) -> list[payloads.ConditionReport]:
    """``(type, status, reason, message)`` tuples as condition reports."""
    return [payloads.ConditionReport(type=t, status=s, reason=r, message=m) for t, s, r, m in items]


def condition(type_: str, status: bool | str, reason: str, message: str = "") -> payloads.ConditionReport:
    text = status if isinstance(status, str) else ("True" if status else "False")
    return payloads.ConditionReport(type=type_, status=text, reason=reason, message=message)


def report_for(
    obj: dict[str, object],
    service: str,
    reported: Sequence[payloads.ConditionReport],
    *,
    observed: str = "",
    artifacts_url: str | None = None,
    build_upload: dict[str, str] | None = None,
    image: str | None = None,
) -> payloads.StatusReport:
    """A report about ``obj`` (as read from the API) at its current generation."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise ValueError("object has no metadata")
    return payloads.StatusReport(
        kind=str(obj.get("kind")),
        namespace=str(meta.get("namespace")),
        name=str(meta.get("name")),
        uid=str(meta.get("uid")),
        generation=int(meta.get("generation") or 0),
        service=service,
        conditions=list(reported),
        artifacts_url=artifacts_url,
        build_upload=build_upload,
        image=image,
        observed=observed,
    )
