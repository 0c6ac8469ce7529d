"""How a report becomes a status: transitions, staleness, readiness and the builder's image."""

from __future__ import annotations

import datetime as dt
from typing import Any

from substratus_status_writer import patches
from substratus_status_writer.patches import ReportedCondition

T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)


def model(generation: int = 1, conditions: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "substratus.ai/v1",
        "kind": "Model",
        "metadata": {"name": "m", "namespace": "ns", "generation": generation, "uid": "u1"},
        "spec": {"image": "img", **spec},
        "status": {"conditions": conditions or []},
    }


def complete(status: str, generation: int, time: str = "2026-11-24T09:00:00Z") -> dict[str, Any]:
    return {
        "type": "Complete",
        "status": status,
        "reason": "JobComplete" if status == "True" else "JobNotComplete",
        "message": "",
        "lastTransitionTime": time,
        "observedGeneration": generation,
    }


def test_report_becomes_conditions_with_generation_and_transition_time() -> None:
    body = patches.status_body(
        model(), [ReportedCondition("Complete", "False", "JobNotComplete", "running")], 1, {}, T0
    )
    assert body is not None
    assert body["metadata"] == {"name": "m", "namespace": "ns"}
    assert body["status"]["conditions"] == [
        {
            "type": "Complete",
            "status": "False",
            "reason": "JobNotComplete",
            "message": "running",
            "lastTransitionTime": "2026-11-24T09:00:00Z",
            "observedGeneration": 1,
        }
    ]


def test_transition_time_moves_only_when_the_status_changes() -> None:
    current = model(conditions=[complete("False", 1)])
    same = patches.status_body(current, [ReportedCondition("Complete", "False", "JobNotComplete", "still")], 1, {}, T1)
    assert same is not None
    assert same["status"]["conditions"][0]["lastTransitionTime"] == "2026-11-24T09:00:00Z"
    flipped = patches.status_body(current, [ReportedCondition("Complete", "True", "JobComplete")], 1, {}, T1)
    assert flipped is not None
    assert flipped["status"]["conditions"][0]["lastTransitionTime"] == "2026-11-24T09:05:00Z"


def test_report_from_an_older_generation_is_dropped() -> None:
    current = model(generation=2, conditions=[complete("False", 2)])
    assert patches.status_body(current, [ReportedCondition("Complete", "True", "JobComplete")], 1, {}, T1) is None


def test_extra_fields_travel_with_the_report() -> None:
    extra = {"artifacts": {"url": "s3://bucket/abc/artifacts"}}
    body = patches.status_body(model(), [ReportedCondition("Complete", "False", "JobNotComplete")], 1, extra, T0)
    assert body is not None
    assert body["status"]["artifacts"] == {"url": "s3://bucket/abc/artifacts"}


def test_unchanged_report_needs_no_write() -> None:
    current = model(conditions=[complete("True", 1)])
    body = patches.status_body(current, [ReportedCondition("Complete", "True", "JobComplete")], 1, {}, T1)
    assert body is not None
    assert patches.unchanged(current, body)


def test_ready_needs_the_main_condition_at_the_current_generation() -> None:
    assert patches.readiness(model(conditions=[complete("True", 1)])) == (True, 1)
    assert patches.readiness(model(generation=2, conditions=[complete("True", 1)])) == (False, 1)
    assert patches.readiness(model(conditions=[complete("False", 1)])) == (False, 1)
    assert patches.readiness(model()) == (False, None)


def test_ready_with_a_build_needs_built_too() -> None:
    built = {**complete("True", 1), "type": "Built", "reason": "JobComplete"}
    with_build = model(conditions=[complete("True", 1)], build={"git": {"url": "https://example.com/r.git"}})
    assert patches.readiness(with_build) == (False, 1)
    with_build["status"]["conditions"].append(built)
    assert patches.readiness(with_build) == (True, 1)


def test_readiness_body_is_none_when_already_written() -> None:
    current = model(conditions=[complete("True", 1)])
    body = patches.readiness_body(current, T0)
    assert body is not None
    assert body["status"]["ready"] is True
    assert body["status"]["observedGeneration"] == 1
    assert [(c["type"], c["status"], c["reason"]) for c in body["status"]["conditions"]] == [
        ("Ready", "True", "JobComplete")
    ]
    current["status"]["conditions"] += body["status"]["conditions"]
    current["status"].update({k: v for k, v in body["status"].items() if k != "conditions"})
    assert patches.readiness_body(current, T1) is None


def test_image_from_the_builder_sets_spec_image_once() -> None:
    current = model()
    body = patches.image_body(current, "registry/local-model-ns-m:v1")
    assert body is not None
    assert body["spec"] == {"image": "registry/local-model-ns-m:v1"}
    current["spec"]["image"] = "registry/local-model-ns-m:v1"
    assert patches.image_body(current, "registry/local-model-ns-m:v1") is None


def built(status: str, reason: str, message: str = "", generation: int = 1) -> dict[str, Any]:
    return {**complete(status, generation), "type": "Built", "reason": reason, "message": message}


def test_ready_condition_names_the_failure_not_the_condition_that_waits() -> None:
    # The build failed; Complete still waits for the image. STATUS must say JobFailed.
    obj = model(
        conditions=[complete("False", 1), built("False", "JobFailed", "the build failed: git clone exited 128")],
        build={"git": {"url": "file:///nowhere"}},
    )
    ready = patches.ready_condition(obj, T0)
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "JobFailed",
        "the build failed: git clone exited 128",
    )


def test_ready_condition_names_the_first_unmet_step_when_nothing_failed() -> None:
    waiting = model(conditions=[complete("False", 1), built("False", "JobNotComplete", "building")], build={"git": {}})
    assert patches.ready_condition(waiting, T0)["reason"] == "JobNotComplete"
    assert patches.ready_condition(waiting, T0)["message"] == "building"
    dataset_missing = model(conditions=[{**complete("False", 1), "reason": "DatasetNotReady", "message": "d"}])
    assert patches.ready_condition(dataset_missing, T0)["reason"] == "DatasetNotReady"
    nothing_yet = model()
    assert patches.ready_condition(nothing_yet, T0)["reason"] == "Pending"
    stale = model(generation=2, conditions=[complete("True", 1)])
    assert patches.ready_condition(stale, T0)["reason"] == "Reconciling"


def test_ready_condition_once_ready_carries_the_main_reason_and_keeps_its_transition_time() -> None:
    obj = model(conditions=[complete("True", 1)])
    first = patches.ready_condition(obj, T0)
    assert (first["status"], first["reason"], first["lastTransitionTime"]) == (
        "True",
        "JobComplete",
        "2026-11-24T09:00:00Z",
    )
    obj["status"]["conditions"].append(first)
    assert patches.ready_condition(obj, T1)["lastTransitionTime"] == "2026-11-24T09:00:00Z"


def test_ready_travels_in_the_reporting_services_apply() -> None:
    current = model(build={"git": {}}, conditions=[complete("False", 1)])
    body = patches.status_body(current, [ReportedCondition("Built", "False", "JobFailed", "boom")], 1, {}, T0)
    assert body is not None
    applied = patches.with_readiness(current, body, T0)
    by_type = {c["type"]: c for c in applied["status"]["conditions"]}
    assert sorted(by_type) == ["Built", "Ready"]
    assert by_type["Ready"]["reason"] == "JobFailed"
    assert applied["status"]["ready"] is False


def test_ready_condition_does_not_lower_observed_generation() -> None:
    obj = model(generation=3, conditions=[complete("True", 3)])
    obj["status"]["conditions"].append(patches.ready_condition(obj, T0))
    assert patches.readiness(obj) == (True, 3)
