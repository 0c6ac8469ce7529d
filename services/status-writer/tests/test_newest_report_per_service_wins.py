"""Reports queued for one resource coalesce: per reporting service only the newest is applied."""

from __future__ import annotations

from substratus_common.events import payloads
from substratus_common.runtime import report
from substratus_status_writer import writer


def _report(service: str, message: str, generation: int = 1, uid: str = "u1") -> payloads.StatusReport:
    return payloads.StatusReport(
        kind="Model",
        namespace="ns",
        name="opt",
        uid=uid,
        generation=generation,
        service=service,
        conditions=report.conditions(("Complete", "False", "JobNotComplete", message)),
    )


def _messages(reports: list[payloads.StatusReport]) -> list[tuple[str, str]]:
    return [(r.service, r.conditions[0].message) for r in reports]


def test_the_last_report_of_each_service_wins_in_stream_order() -> None:
    queued = [_report("trainer", "t1"), _report("builder", "b1"), _report("trainer", "t2"), _report("trainer", "t3")]
    assert _messages(writer.newest_per_service(queued)) == [("builder", "b1"), ("trainer", "t3")]


def test_a_late_report_about_an_older_generation_does_not_win() -> None:
    queued = [_report("trainer", "generation 2", generation=2), _report("trainer", "generation 1", generation=1)]
    assert _messages(writer.newest_per_service(queued)) == [("trainer", "generation 2")]


def test_a_report_about_a_recreated_object_beats_one_about_the_old_one() -> None:
    queued = [_report("trainer", "old object", generation=5, uid="u1"), _report("trainer", "new object", uid="u2")]
    assert _messages(writer.newest_per_service(queued)) == [("trainer", "new object")]


def test_one_report_is_applied_as_it_is() -> None:
    only = [_report("trainer", "t1")]
    assert writer.newest_per_service(only) == only
    assert writer.newest_per_service([]) == []
