"""Logs are JSON lines that carry the service and the extra fields; no field name breaks a log call."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from substratus_common import logs


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    logs.setup("INFO", service="trainer", stream=out)
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_record_is_one_json_line_with_service_and_extra(stream: io.StringIO) -> None:
    logging.getLogger("x").info("job created", extra={"namespace": "ns", "object": "opt", "event_id": "u/1"})
    (line,) = stream.getvalue().splitlines()
    doc = json.loads(line)
    assert doc["msg"] == "job created"
    assert doc["service"] == "trainer"
    assert (doc["namespace"], doc["object"], doc["event_id"]) == ("ns", "opt", "u/1")


def test_an_extra_field_named_service_does_not_raise(stream: io.StringIO) -> None:
    logging.getLogger("x").info("report dropped", extra={"service": "builder"})
    doc = json.loads(stream.getvalue())
    assert doc["msg"] == "report dropped"
    assert doc["service"] == "builder"
