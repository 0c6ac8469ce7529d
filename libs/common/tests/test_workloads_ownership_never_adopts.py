"""A child found by its deterministic name is used only when this resource controls it."""

from __future__ import annotations

from typing import Any

import pytest

from substratus_common import errors
from substratus_common.workloads import ownership

MODEL = {"kind": "Model", "metadata": {"name": "opt", "namespace": "ns", "uid": "now"}}


def _job(owner: dict[str, Any] | None, **meta: Any) -> dict[str, Any]:
    return {"kind": "Job", "metadata": {"name": "opt-modeller", "ownerReferences": [owner] if owner else [], **meta}}


def _ref(uid: str, kind: str = "Model", name: str = "opt", controller: bool = True) -> dict[str, Any]:
    return {"kind": kind, "name": name, "uid": uid, "controller": controller}


def test_a_child_this_resource_controls_passes() -> None:
    ownership.check(_job(_ref("now")), MODEL, "Job")


@pytest.mark.parametrize(
    ("owner", "held_by"),
    [
        (None, "no controller"),
        (_ref("x", kind="Notebook"), "Notebook opt"),
        (_ref("x", name="other"), "Model other"),
        (_ref("now", controller=False), "no controller"),
    ],
)
def test_someone_elses_child_is_a_condition_not_adopted(owner: dict[str, Any] | None, held_by: str) -> None:
    with pytest.raises(errors.PermanentError) as raised:
        ownership.check(_job(owner), MODEL, "Job")
    assert raised.value.reason == "Invalid"
    assert raised.value.message == (
        f"Job opt-modeller exists and does not belong to this Model ({held_by}); delete or rename it"
    )


def test_the_child_of_an_earlier_resource_of_that_name_is_waited_for() -> None:
    with pytest.raises(errors.TemporaryError, match="of a deleted Model of the same name"):
        ownership.check(_job(_ref("before")), MODEL, "Job")


def test_a_child_being_deleted_is_waited_for() -> None:
    with pytest.raises(errors.TemporaryError, match="to be deleted"):
        ownership.check(_job(_ref("now"), deletionTimestamp="2026-01-01T00:00:00Z"), MODEL, "Job")
