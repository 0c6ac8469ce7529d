"""Each event is one readable line: time, short type, subject, and what matters about it."""

import datetime as dt

import msgspec

from substratus_cli import render
from substratus_common.events import envelope, payloads
from substratus_common.runtime import report

TIME = "2024-05-01T12:00:00.123456Z"
MODEL: dict[str, object] = {
    "apiVersion": "substratus.ai/v1",
    "kind": "Model",
    "metadata": {
        "name": "opt.125m",
        "namespace": "ns",
        "uid": "u1",
        "resourceVersion": "5012",
        "generation": 2,
        "creationTimestamp": "2024-05-01T11:59:59Z",
    },
    "spec": {"image": "substratusai/model-loader-huggingface"},
}


def event(type_: str, data: object, subject: str = "models/ns/opt.125m") -> envelope.CloudEvent:
    made = envelope.make(id="x", source="substratus/test", type=type_, subject=subject, data=data)
    return msgspec.structs.replace(made, time=TIME)


def stored(e: envelope.CloudEvent | bytes, subject: str = "substratus.change.models.ns.opt_125m") -> render.Stored:
    data = e if isinstance(e, bytes) else envelope.encode(e)
    when = dt.datetime(2024, 5, 1, 12, 0, 1, tzinfo=dt.UTC)
    return render.Stored(stream="SUBSTRATUS_CHANGES", subject=subject, sequence=7, stored_at=when, data=data)


def test_a_change_shows_resource_version_generation_and_readiness() -> None:
    line = render.line(event("ai.substratus.model.changed.v1", {**MODEL, "status": {"ready": True}}))
    assert line.startswith("2024-05-01T12:00:00.123Z  model.changed ")
    fields = line.split()
    assert fields[1:] == ["model.changed", "models/ns/opt.125m", "rv=5012", "gen=2", "ready=true"]


def test_a_deletion_and_a_tombstone_are_told_apart() -> None:
    deleted = render.line(event("ai.substratus.model.deleted.v1", MODEL))
    assert deleted.split()[1:] == ["model.deleted", "models/ns/opt.125m", "rv=5012", "gen=2"]
    tombstone = payloads.identity(MODEL)
    del tombstone["metadata"]["generation"]
    line = render.line(event("ai.substratus.model.deleted.v1", tombstone))
    assert line.split()[-2:] == ["rv=5012", "tombstone"]


def test_a_child_change_shows_its_progress() -> None:
    job = {"kind": "Job", "metadata": {"resourceVersion": "9"}, "status": {"succeeded": 1, "active": 0}}
    line = render.line(event("ai.substratus.job.changed.v1", job, "models/ns/opt.125m/jobs/opt.125m-modeller"))
    assert line.split()[1:] == ["job.changed", "models/ns/opt.125m/jobs/opt.125m-modeller", "rv=9", "succeeded=1"]
    pod = {"kind": "Pod", "metadata": {"resourceVersion": "10"}, "status": {"phase": "Running"}}
    assert render.line(event("ai.substratus.pod.changed.v1", pod)).endswith("rv=10 phase=Running")


def test_a_status_report_shows_service_generation_and_conditions() -> None:
    r = report.report_for(
        MODEL,
        "trainer",
        [report.condition("Complete", False, "JobFailed", "the job failed:\nBackoffLimitExceeded")],
        image="registry/img:1",
    )
    line = render.line(event(envelope.STATUS_TYPE, r))
    assert line.split(maxsplit=3)[1:3] == ["status", "models/ns/opt.125m"]
    assert line.endswith(
        'trainer gen=2 Complete=False/JobFailed "the job failed: BackoffLimitExceeded" image=registry/img:1'
    )


def test_a_dead_letter_shows_who_gave_up_and_why() -> None:
    letter = payloads.DeadLetter(
        service="status-writer",
        reason="max-deliveries",
        error="API server said 500 " * 10,
        stream="SUBSTRATUS_STATUS",
        original_subject="substratus.status.models.ns.opt_125m.trainer",
        stream_sequence=42,
        deliveries=8,
        original="{}",
    )
    line = render.line(event(envelope.DEAD_TYPE, letter))
    assert line.split()[1] == "dead"
    assert "status-writer max-deliveries after 8 deliveries of SUBSTRATUS_STATUS#42: API server said 500" in line
    assert line.endswith("…")
    assert len(line) < 250


def test_a_message_that_is_not_a_cloudevent_is_shown_not_fatal() -> None:
    text, warning = render.render(stored(b"garbage"), as_json=False)
    assert warning is None
    assert text is not None
    assert text.split()[:3] == ["2024-05-01T12:00:01.000Z", "undecodable", "substratus.change.models.ns.opt_125m"]
    assert "SUBSTRATUS_CHANGES#7" in text


def test_every_line_is_a_single_line() -> None:
    r = report.report_for(MODEL, "trainer", [report.condition("Complete", False, "Invalid", "a\nb\r\nc")])
    text, _ = render.render(stored(event(envelope.STATUS_TYPE, r)), as_json=False)
    assert text is not None
    assert "\n" not in text
