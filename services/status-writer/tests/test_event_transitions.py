"""Which Events an apply records: one per condition whose status or reason changed, Warnings for
failures, Ready only when readiness flips, and repeats that share one series key (no I/O)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from substratus_status_writer import events

T0 = dt.datetime(2026, 12, 2, 6, 0, tzinfo=dt.UTC)


def dataset(*conditions: tuple[str, str, str, str], generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "substratus.ai/v1",
        "kind": "Dataset",
        "metadata": {"name": "d", "namespace": "ns", "uid": "u1", "generation": generation},
        "status": {
            "conditions": [
                {
                    "type": t,
                    "status": s,
                    "reason": r,
                    "message": m,
                    "lastTransitionTime": "2026-12-02T06:00:00Z",
                    "observedGeneration": generation,
                }
                for t, s, r, m in conditions
            ]
        },
    }


def summary(found: list[events.Transition]) -> list[tuple[str, str, str, str]]:
    return [(t.type, t.action, t.reason, t.note) for t in found]


def test_a_failed_build_is_a_warning_with_its_message() -> None:
    before = dataset(("Built", "False", "JobNotComplete", "building"), ("Ready", "False", "JobNotComplete", "building"))
    after = dataset(
        ("Built", "False", "JobFailed", "git clone failed"), ("Ready", "False", "JobFailed", "git clone failed")
    )
    assert summary(events.transitions(before, after, T0)) == [
        ("Warning", "Built", "JobFailed", "Built: git clone failed"),
    ]


def test_a_message_change_alone_is_no_transition() -> None:
    before = dataset(("Complete", "False", "JobNotComplete", "0/1 pods"))
    after = dataset(("Complete", "False", "JobNotComplete", "1/1 pods"))
    assert events.transitions(before, after, T0) == []


def test_a_newer_generation_failing_again_is_told_even_without_the_building_between() -> None:
    # The writer coalesced the "building v2" report away: v1's failure becomes v2's at once.
    before = dataset(("Built", "False", "JobFailed", "tag v1 not found"), ("Ready", "False", "JobFailed", "v1"))
    after = dataset(
        ("Built", "False", "JobFailed", "tag v2 not found"), ("Ready", "False", "JobFailed", "v2"), generation=2
    )
    found = events.transitions(before, after, T0)
    assert summary(found) == [("Warning", "Built", "JobFailed", "Built: tag v2 not found")]
    assert found[0].key == events.transitions(None, before, T0)[0].key  # counted in the same series


def test_a_failure_reported_again_for_the_same_generation_is_no_transition() -> None:
    before = dataset(("Built", "False", "JobFailed", "attempt 1"))
    after = dataset(("Built", "False", "JobFailed", "attempt 1, told again"))
    assert events.transitions(before, after, T0) == []


def test_progress_at_a_newer_generation_is_no_transition() -> None:
    before = dataset(("Complete", "False", "JobNotComplete", "0/1 pods"))
    after = dataset(("Complete", "False", "JobNotComplete", "0/1 pods"), generation=2)
    assert events.transitions(before, after, T0) == []


def test_first_report_and_ready_in_work_order_with_increasing_times() -> None:
    after = dataset(
        ("Complete", "True", "JobComplete", "Job d-data-loader complete"),
        ("Built", "True", "JobComplete", "built img"),
        ("Ready", "True", "JobComplete", "Job d-data-loader complete"),
    )
    found = events.transitions(dataset(), after, T0)
    assert summary(found) == [
        ("Normal", "Built", "JobComplete", "Built: built img"),
        ("Normal", "Complete", "JobComplete", "Complete: Job d-data-loader complete"),
        ("Normal", "Ready", "Ready", "Dataset is ready"),
    ]
    assert [t.at for t in found] == sorted({t.at for t in found})


def test_losing_readiness_is_told_once_with_the_blocking_reason() -> None:
    before = dataset(("Complete", "True", "JobComplete", ""), ("Ready", "True", "JobComplete", ""))
    after = dataset(("Complete", "False", "JobFailed", "OOMKilled"), ("Ready", "False", "JobFailed", "OOMKilled"))
    assert summary(events.transitions(before, after, T0)) == [
        ("Warning", "Complete", "JobFailed", "Complete: OOMKilled"),
        ("Warning", "Ready", "NotReady", "no longer ready: JobFailed: OOMKilled"),
    ]


def test_a_repeated_failure_has_the_same_series_key() -> None:
    first = events.transitions(None, dataset(("Built", "False", "JobFailed", "attempt 1")), T0)[0]
    again = events.transitions(None, dataset(("Built", "False", "JobFailed", "attempt 2")), T0)[0]
    other = events.transitions(None, dataset(("Built", "False", "JobNotComplete", "x")), T0)[0]
    assert first.key == again.key
    assert first.key != other.key


def test_event_names_sort_in_the_order_events_began() -> None:
    # kubectl describe lists new-style Events in name order.
    before = dataset(("Built", "False", "JobNotComplete", "building"))
    after = dataset(("Built", "False", "JobFailed", "failed"))
    early = events.transitions(None, before, T0)[0]
    late = events.transitions(before, after, T0 + dt.timedelta(seconds=1))[0]
    assert early.name.startswith("d.")
    assert early.name < late.name
    assert len(early.name) == len(late.name)


def test_a_long_message_is_cut_to_what_the_api_accepts() -> None:
    found = events.transitions(None, dataset(("Built", "False", "JobFailed", "é" * 2000)), T0)
    assert len(found[0].note.encode()) <= events.NOTE_MAX_BYTES


def test_the_rate_limit_allows_a_burst_then_one_per_refill() -> None:
    bucket = events._Bucket(burst=3, refill_s=10.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(5.0) is False
    assert bucket.take(10.5) is True


def test_micro_time_is_utc_with_microseconds() -> None:
    assert events.micro_time(T0 + dt.timedelta(microseconds=7)) == "2026-12-02T06:00:00.000007Z"
