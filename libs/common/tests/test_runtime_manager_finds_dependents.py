"""The manager loop's pure parts: the subjects it consumes, which resources a ready dependency
wakes, and when a report would say nothing new."""

from __future__ import annotations

from typing import Any, cast

from substratus_common import config
from substratus_common.bus import connection
from substratus_common.kube import client
from substratus_common.runtime import manager, report

SPEC = manager.Spec(durable="trainer", owned=("models", "datasets"), child_kinds=("job",), depends_on=("models",))


def _model(name: str, base: str | None = None, ns: str = "ns") -> dict[str, Any]:
    spec: dict[str, Any] = {"image": "i"}
    if base:
        spec["model"] = {"name": base}
    return {
        "kind": "Model",
        "metadata": {"name": name, "namespace": ns, "uid": f"u-{name}", "generation": 1},
        "spec": spec,
    }


def _deps(obj: dict[str, Any]) -> list[manager.Key]:
    key = manager.ref_key(obj, "models", (obj.get("spec") or {}).get("model"))
    return [key] if key else []


async def _noop(obj: dict[str, Any]) -> manager.Outcome:
    return manager.Outcome(())


def _manager() -> manager.Manager:
    # No I/O happens before run(): the bus and the API client are not touched here.
    return manager.Manager(
        cast(connection.Bus, None),
        cast(client.Kube, None),
        config.Settings(service="trainer"),
        SPEC,
        _noop,
        dependencies=_deps,
    )


def test_owned_kinds_are_consumed_with_their_jobs_and_dependencies_without_children() -> None:
    assert SPEC.filter_subjects() == [
        "substratus.change.models.*.*",
        "substratus.change.models.*.*.job.*",
        "substratus.change.datasets.*.*",
        "substratus.change.datasets.*.*.job.*",
    ]
    server_like = manager.Spec(
        durable="server-manager", owned=("servers",), child_kinds=("deployment",), depends_on=("models",)
    )
    assert server_like.filter_subjects() == [
        "substratus.change.servers.*.*",
        "substratus.change.servers.*.*.deployment.*",
        "substratus.change.models.*.*",
    ]


def test_dependents_come_from_the_view_and_from_what_was_reconciled() -> None:
    m = _manager()
    m.view.objects[("models", "ns", "tuned")] = _model("tuned", base="base")
    m.view.objects[("models", "ns", "other")] = _model("other", base="else")
    m.view.objects[("models", "other-ns", "tuned")] = _model("tuned", base="base", ns="other-ns")
    assert m.dependents(("models", "ns", "base")) == [("models", "ns", "tuned")]

    # Reconciled here since: what it depends on now wins over the view's older copy.
    m._depends[("models", "ns", "tuned")] = frozenset()
    m._depends[("models", "ns", "new")] = frozenset({("models", "ns", "base")})
    assert m.dependents(("models", "ns", "base")) == [("models", "ns", "new")]


def test_a_report_the_status_already_holds_is_not_new() -> None:
    outcome = manager.Outcome([report.condition("Complete", True, "JobComplete", "done")], "s3://b/x/artifacts")
    written = {
        **_model("m"),
        "status": {
            "artifacts": {"url": "s3://b/x/artifacts"},
            "conditions": [
                {
                    "type": "Complete",
                    "status": "True",
                    "reason": "JobComplete",
                    "message": "done",
                    "observedGeneration": 1,
                }
            ],
        },
    }
    assert manager._status_says(written, outcome, 1)
    assert not manager._status_says(written, outcome, 2)  # a newer generation needs its own report
    assert not manager._status_says(_model("m"), outcome, 1)
    other_url = manager.Outcome(outcome.conditions, "s3://b/y/artifacts")
    assert not manager._status_says(written, other_url, 1)
