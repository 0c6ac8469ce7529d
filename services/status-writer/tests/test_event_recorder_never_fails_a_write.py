"""The recorder's bounds and aggregation, without a stack: ``observe`` never raises or waits, a
repeat patches one Event's series, an API error or a full queue is counted and dropped, and a
resource past its burst is rate-limited. (The real API server path is tested in
tests/test_failed_build_is_told_by_kubectl.py.)"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from substratus_common.kube import errors
from substratus_common.kube.resources import ResourceType
from substratus_status_writer import events


class RecordingKube:
    """Stands in for the client in a unit test: keeps what would be written; may fail on purpose."""

    def __init__(self, fail: errors.APIError | None = None) -> None:
        self.created: list[dict[str, Any]] = []
        self.patched: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.fail is not None:
            raise self.fail
        self.created.append(obj)
        return obj

    async def patch(self, rt: ResourceType, namespace: str | None, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patched.append((name, patch))
        return patch


def dataset(reason: str, uid: str = "u1") -> dict[str, Any]:
    status = "False"
    return {
        "apiVersion": "substratus.ai/v1",
        "kind": "Dataset",
        "metadata": {"name": "d", "namespace": "ns", "uid": uid},
        "status": {"conditions": [{"type": "Built", "status": status, "reason": reason, "message": reason}]},
    }


def outcome(recorder: events.Recorder, name: str) -> float:
    value = recorder.outcomes.labels(name)._value.get()
    return float(value)


async def test_a_repeat_patches_the_series_of_the_first_event() -> None:
    kube = RecordingKube()
    recorder = events.Recorder(kube, instance="test")  # type: ignore[arg-type]
    recorder.observe(dataset("JobNotComplete"), dataset("JobFailed"))
    recorder.observe(dataset("JobFailed"), dataset("JobNotComplete"))
    recorder.observe(dataset("JobNotComplete"), dataset("JobFailed"))
    await recorder.aclose()
    assert [(e["reason"], e["type"], e["action"]) for e in kube.created] == [
        ("JobFailed", "Warning", "Built"),
        ("JobNotComplete", "Normal", "Built"),
    ]
    first = kube.created[0]
    assert first["regarding"] == {
        "apiVersion": "substratus.ai/v1",
        "kind": "Dataset",
        "name": "d",
        "namespace": "ns",
        "uid": "u1",
    }
    assert first["reportingController"] == "substratus-status-writer"
    assert [(name, patch["series"]["count"]) for name, patch in kube.patched] == [(first["metadata"]["name"], 2)]
    assert outcome(recorder, "created") == 2
    assert outcome(recorder, "counted") == 1


async def test_api_errors_are_counted_never_raised() -> None:
    recorder = events.Recorder(RecordingKube(fail=errors.Forbidden("no")), instance="test")  # type: ignore[arg-type]
    recorder.observe(None, dataset("JobFailed"))  # returns at once, nothing raised
    await recorder.aclose()
    assert outcome(recorder, "failed") == 1


async def test_a_full_queue_drops_and_counts_without_waiting() -> None:
    kube = RecordingKube()
    recorder = events.Recorder(kube, limits=events.Limits(queue=2), instance="test")  # type: ignore[arg-type]
    for i in range(5):
        recorder.observe(None, dataset("JobFailed", uid=f"u{i}"))  # no await in between: the worker cannot run
    assert outcome(recorder, "dropped") == 3
    await recorder.aclose()
    assert len(kube.created) == 2


async def test_a_resource_past_its_burst_is_rate_limited() -> None:
    kube = RecordingKube()
    recorder = events.Recorder(kube, limits=events.Limits(burst=2, refill_s=3600), instance="test")  # type: ignore[arg-type]
    reasons = ["JobNotComplete", "JobFailed"] * 3
    for before, after in itertools.pairwise(reasons):
        recorder.observe(dataset(before), dataset(after))
        await asyncio.sleep(0)
    await recorder.aclose()
    assert len(kube.created) + len(kube.patched) == 2
    assert outcome(recorder, "dropped") == 3


def in_namespace(reason: str, namespace: str, uid: str) -> dict[str, Any]:
    obj = dataset(reason, uid=uid)
    obj["metadata"]["namespace"] = namespace
    return obj


async def test_a_burst_in_one_namespace_neither_crowds_out_nor_delays_another() -> None:
    # As after a test whose namespace is being deleted: its many Events are refused one by one.
    kube = RecordingKube()
    recorder = events.Recorder(kube, limits=events.Limits(queue=50, namespace_queue=20), instance="test")  # type: ignore[arg-type]
    for i in range(40):
        recorder.observe(None, in_namespace("JobFailed", "busy", f"b{i}"))
    recorder.observe(None, in_namespace("JobNotComplete", "quiet", "q1"))
    recorder.observe(in_namespace("JobNotComplete", "quiet", "q1"), in_namespace("JobFailed", "quiet", "q1"))
    assert outcome(recorder, "dropped") == 20  # the busy namespace past its own bound; none of quiet's
    await recorder.aclose()
    order = [(e["metadata"]["namespace"], e["regarding"]["uid"]) for e in kube.created]
    assert order[:4] == [("busy", "b0"), ("quiet", "q1"), ("busy", "b1"), ("quiet", "q1")]  # in turn
    assert [e["reason"] for e in kube.created if e["metadata"]["namespace"] == "quiet"] == [
        "JobNotComplete",
        "JobFailed",
    ]
    assert len(order) == 22


async def test_normal_events_share_a_budget_per_namespace_and_warnings_are_never_held_back() -> None:
    kube = RecordingKube()
    limits = events.Limits(namespace_burst=3, namespace_refill_s=3600)
    recorder = events.Recorder(kube, limits=limits, instance="test")  # type: ignore[arg-type]
    for i in range(10):  # a burst of ten resources in one namespace, each starting its build
        recorder.observe(None, in_namespace("JobNotComplete", "busy", f"b{i}"))
    recorder.observe(None, in_namespace("JobFailed", "busy", "b9"))  # a failure in the busy namespace
    recorder.observe(None, in_namespace("JobNotComplete", "quiet", "q1"))  # another user's namespace
    await recorder.aclose()
    told = sorted((e["metadata"]["namespace"], e["regarding"]["uid"], e["type"]) for e in kube.created)
    assert told == [
        ("busy", "b0", "Normal"),
        ("busy", "b1", "Normal"),
        ("busy", "b2", "Normal"),
        ("busy", "b9", "Warning"),
        ("quiet", "q1", "Normal"),
    ]
    assert outcome(recorder, "dropped") == 7
