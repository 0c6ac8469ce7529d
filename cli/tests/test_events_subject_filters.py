"""The flags select subjects in each stream: the resource, its children, its status reports, its dead letters."""

import pytest

from substratus_cli import query
from substratus_common.events import streams, subjects


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, ``>`` one or more at the end."""
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


def selected(q: query.Query, subject: str) -> bool:
    return any(matches(f, subject) for filters in q.filters().values() for f in filters)


MINE = [
    subjects.change("models", "team.a", "opt.125m"),
    subjects.child_change("models", "team.a", "opt.125m", "Job", "opt.125m-modeller"),
    subjects.status("models", "team.a", "opt.125m", "trainer"),
    subjects.dead("status-writer", "models", "team.a", "opt.125m"),
]
OTHERS = [
    subjects.change("models", "team.a", "opt.350m"),
    subjects.change("datasets", "team.a", "opt.125m"),
    subjects.change("models", "team-b", "opt.125m"),
    subjects.status("servers", "team.a", "opt.125m", "server-manager"),
    subjects.dead("trainer", "models", "team-b", "opt.125m"),
]


def test_kind_namespace_and_name_select_one_resource_in_every_stream() -> None:
    # "team.a" is not a valid namespace, but escaping must still hold for dotted names.
    q = query.Query(plural="models", namespace="team.a", name="opt.125m")
    assert all(selected(q, s) for s in MINE)
    assert not any(selected(q, s) for s in OTHERS)


def test_kind_alone_selects_that_kind_everywhere() -> None:
    q = query.Query(plural="models")
    assert all(selected(q, s) for s in MINE)
    assert selected(q, subjects.change("models", "team-b", "x"))
    assert not selected(q, subjects.change("datasets", "team.a", "opt.125m"))
    assert not selected(q, subjects.status("servers", "team.a", "opt.125m", "server-manager"))


def test_no_flags_select_everything() -> None:
    q = query.Query()
    assert all(selected(q, s) for s in MINE + OTHERS)


@pytest.mark.parametrize("name", [None, "m"])
def test_filters_of_one_stream_never_overlap(name: str | None) -> None:
    filters = query.Query(plural="models", name=name).filters()
    assert set(filters) == {streams.CHANGES, streams.STATUS, streams.DEAD}
    for stream_filters in filters.values():
        for a in stream_filters:
            for b in stream_filters:
                if a != b:
                    assert not matches(a, b.replace(">", "x")), (a, b)
