"""No log line shows the userinfo of a URL: not in the message, an argument, an extra, or an error."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from substratus_common import logs

SECRET = "s3cr3t-pw"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    out = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logs.setup("INFO", service="trainer", stream=out)
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)


def test_redact_urls_keeps_scheme_and_host() -> None:
    text = f"nats://trainer:{SECRET}@nats.svc:4222, tls://u:{SECRET}@n2:4222 and https://h/p?q=a@b"
    assert logs.redact_urls(text) == "nats://***@nats.svc:4222, tls://***@n2:4222 and https://h/p?q=a@b"


def test_message_args_extras_and_exceptions_are_scrubbed(captured: io.StringIO) -> None:
    log = logging.getLogger("test.scrub")
    url = f"nats://trainer:{SECRET}@127.0.0.1:4222"
    log.warning("cannot connect to %s", url, extra={"url": url})
    try:
        raise ConnectionError(f"connect to {url} refused")
    except ConnectionError:
        log.exception("giving up")
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert SECRET not in captured.getvalue()
    assert lines[0]["msg"] == "cannot connect to nats://***@127.0.0.1:4222"
    assert lines[0]["url"] == "nats://***@127.0.0.1:4222"
    assert "nats://***@127.0.0.1:4222 refused" in lines[1]["exc"]
    assert lines[1]["service"] == "trainer"
