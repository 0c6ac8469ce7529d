"""``--since`` takes a duration back from now or an RFC 3339 time; anything else names the flag."""

import datetime as dt

import pytest

from substratus_cli import query, substratus

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("30s", dt.timedelta(seconds=30)),
        ("10m", dt.timedelta(minutes=10)),
        ("2h", dt.timedelta(hours=2)),
        ("1d", dt.timedelta(days=1)),
        ("1h30m", dt.timedelta(minutes=90)),
        ("500ms", dt.timedelta(milliseconds=500)),
        ("0s", dt.timedelta(0)),
    ],
)
def test_a_duration_starts_that_long_before_now(text: str, back: dt.timedelta) -> None:
    q = query.Query(since=query.since(text))
    assert q.start_time(NOW) == NOW - back


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2024-05-01T10:00:00Z", dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)),
        ("2024-05-01T12:00:00.250+02:00", dt.datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=dt.UTC)),
    ],
)
def test_an_rfc3339_time_starts_there_in_utc(text: str, utc: dt.datetime) -> None:
    start = query.Query(since=query.since(text)).start_time(NOW)
    assert start == utc
    assert start is not None
    assert start.utcoffset() == dt.timedelta(0)


def test_without_since_or_further_back_than_time_everything_stored_is_replayed() -> None:
    assert query.Query().start_time(NOW) is None
    assert query.Query(since=query.since("99999999d")).start_time(NOW) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10x", "neither a duration"),
        ("ten minutes", "neither a duration"),
        ("-5m", "neither a duration"),
        ("", "neither a duration"),
        ("2024-05-01T10:00:00", "has no time zone"),
        ("2024-13-01T10:00:00Z", "not an RFC 3339 time"),
    ],
)
def test_bad_input_is_refused_naming_the_flag(text: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        substratus.main(["events", f"--since={text}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --since:" in err
    assert message in err
