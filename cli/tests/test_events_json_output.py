"""``--json`` prints each event's CloudEvent JSON on one line; what is not a CloudEvent is skipped with a warning."""

import json

import msgspec

from substratus_cli import render
from substratus_common.events import envelope


def stored(data: bytes) -> render.Stored:
    import datetime as dt

    return render.Stored("SUBSTRATUS_STATUS", "substratus.status.models.ns.m.trainer", 3, dt.datetime.now(dt.UTC), data)


def test_the_cloudevent_is_printed_whole_on_one_line() -> None:
    event = envelope.make(
        id="u/1/trainer/abc",
        source="substratus/trainer",
        type=envelope.STATUS_TYPE,
        subject="models/ns/m",
        data={"message": "two\nlines"},
    )
    # A foreign publisher may store pretty-printed JSON; the output is still one line.
    pretty = json.dumps(json.loads(envelope.encode(event)), indent=2).encode()
    text, warning = render.render(stored(pretty), as_json=True)
    assert warning is None
    assert text is not None
    assert "\n" not in text
    decoded = json.loads(text)
    assert decoded["specversion"] == "1.0"
    assert decoded["id"] == "u/1/trainer/abc"
    assert decoded["type"] == envelope.STATUS_TYPE
    assert decoded["data"] == {"message": "two\nlines"}


def test_a_message_that_is_not_a_cloudevent_is_skipped_with_a_warning() -> None:
    text, warning = render.render(stored(msgspec.json.encode({"hello": "world"})), as_json=True)
    assert text is None
    assert warning is not None
    assert "SUBSTRATUS_STATUS#3" in warning
    assert "not a CloudEvent" in warning
