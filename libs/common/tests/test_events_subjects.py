"""Subjects of the three streams: built, parsed back, and dotted names escaped."""

import pytest

from substratus_common.events import subjects


def test_a_dotted_name_round_trips_through_a_change_subject() -> None:
    subject = subjects.change("models", "team.a", "llama-3.1-8b")
    assert subject == "substratus.change.models.team_a.llama-3_1-8b"
    parsed = subjects.parse(subject)
    assert (parsed.stream, parsed.key) == ("change", ("models", "team.a", "llama-3.1-8b"))


def test_child_status_and_dead_subjects_name_their_resource() -> None:
    child = subjects.parse(subjects.child_change("models", "ns", "m.1", "Job", "m.1-modeller"))
    assert (child.key, child.child_kind, child.child) == (("models", "ns", "m.1"), "job", "m.1-modeller")
    status = subjects.parse(subjects.status("servers", "ns", "s", "server-manager"))
    assert (status.stream, status.key, status.service) == ("status", ("servers", "ns", "s"), "server-manager")
    dead = subjects.parse(subjects.dead("trainer", "datasets", "ns", "d"))
    assert (dead.stream, dead.key, dead.service) == ("dead", ("datasets", "ns", "d"), "trainer")


def test_a_change_filter_selects_one_namespace_and_all_children() -> None:
    assert subjects.change_filter("models", "a.b") == "substratus.change.models.a_b.>"
    assert subjects.change_filter() == "substratus.change.*.*.>"


@pytest.mark.parametrize("bad", ["", "a_b", "a b", "*", ">"])
def test_names_that_cannot_be_one_token_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes name"):
        subjects.change("models", "ns", bad)


@pytest.mark.parametrize("bad", ["foo.bar", "substratus.change.models.ns", "substratus.other.a.b.c", "x.change.a.b.c"])
def test_foreign_subjects_are_refused_by_the_parser(bad: str) -> None:
    with pytest.raises(ValueError, match="not a Substratus subject"):
        subjects.parse(bad)
