"""The CloudEvents envelope and payloads as they travel on the bus."""

import json

import msgspec
import pytest

from substratus_common.events import envelope, payloads


def test_a_change_event_is_structured_mode_cloudevents_json() -> None:
    obj = {
        "apiVersion": "substratus.ai/v1",
        "kind": "Model",
        "metadata": {"name": "m", "uid": "u", "resourceVersion": "7"},
    }
    event = envelope.make(
        id="u/7",
        source="substratus/watcher",
        type=envelope.change_type("Model", False),
        subject="models/ns/m",
        data=obj,
    )
    doc = json.loads(envelope.encode(event))
    assert doc["specversion"] == "1.0"
    assert doc["type"] == "ai.substratus.model.changed.v1"
    assert doc["datacontenttype"] == "application/json"
    assert doc["time"].endswith("Z")
    assert doc["data"] == obj
    assert "substratustruncated" not in doc
    assert payloads.change_object(envelope.decode(envelope.encode(event))) == obj


def test_an_object_past_the_size_limit_travels_as_its_identity() -> None:
    big = {"kind": "Model", "metadata": {"name": "m", "uid": "u"}, "spec": {"params": {"x": "y" * 600_000}}}
    data, truncated = payloads.change_data(big)
    assert truncated
    assert data == {"apiVersion": None, "kind": "Model", "metadata": {"name": "m", "uid": "u"}}


def test_a_status_report_id_changes_with_its_content_only() -> None:
    def report(reason: str) -> payloads.StatusReport:
        c = payloads.ConditionReport(type="Complete", status="False", reason=reason)
        return payloads.StatusReport(
            kind="Model", namespace="ns", name="m", uid="u", generation=2, service="trainer", conditions=[c]
        )

    assert report("JobNotComplete").event_id() == report("JobNotComplete").event_id()
    assert report("JobNotComplete").event_id() != report("JobFailed").event_id()
    assert report("JobFailed").event_id().startswith("u/2/trainer/")


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"[]",
        b'{"id": "x"}',
        b'{"specversion": "0.3", "id": "x", "source": "s", "type": "t", "subject": "s", "time": "t"}',
    ],
)
def test_something_that_is_not_an_envelope_is_refused(payload: bytes) -> None:
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        envelope.decode(payload)
