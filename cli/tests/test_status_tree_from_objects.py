"""How ``substratus status`` reads objects (no I/O): ages as kubectl writes them, each child's state,
Pods under the Job or Deployment that owns them, the failure named first, and plain text and JSON."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from rich.console import Console

from substratus_cli import tree

NOW = dt.datetime(2026, 12, 2, 6, 30, tzinfo=dt.UTC)


def meta(name: str, uid: str, owners: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"name": name, "uid": uid, "creationTimestamp": "2026-12-02T06:29:00Z", "ownerReferences": owners or []}


MODEL = {
    "apiVersion": "substratus.ai/v1",
    "kind": "Model",
    "metadata": {**meta("tuned", "m1"), "namespace": "ns", "generation": 1},
    "spec": {"image": "trainer"},
    "status": {
        "ready": False,
        "conditions": [
            {
                "type": "Complete",
                "status": "False",
                "reason": "JobNotComplete",
                "message": "Job tuned-modeller running",
                "lastTransitionTime": "2026-12-02T06:28:00Z",
            },
            {
                "type": "Ready",
                "status": "False",
                "reason": "JobNotComplete",
                "message": "Job tuned-modeller running",
                "lastTransitionTime": "2026-12-02T06:28:00Z",
            },
        ],
    },
}
JOB = {"kind": "Job", "metadata": meta("tuned-modeller", "j1"), "status": {"active": 1}}
POD = {
    "kind": "Pod",
    "metadata": meta("tuned-modeller-x7k2p", "p1", [{"kind": "Job", "name": "tuned-modeller", "uid": "j1"}]),
    "status": {"phase": "Running", "containerStatuses": [{"name": "model", "ready": True, "state": {"running": {}}}]},
}
CONFIGMAP = {"kind": "ConfigMap", "metadata": meta("tuned-model-params", "c1"), "data": {"params.json": "{}"}}


def plain(node: tree.Node) -> str:
    out = io.StringIO()
    Console(file=out, width=200, no_color=True).print(tree.to_rich(node))
    return out.getvalue()


def test_ages_read_like_kubectl() -> None:
    assert tree.age("2026-12-02T06:29:15Z", NOW) == "45s"
    assert tree.age("2026-12-02T06:18:00Z", NOW) == "12m"
    assert tree.age("2026-12-02T03:00:00Z", NOW) == "3h"
    assert tree.age("2026-11-27T06:30:00Z", NOW) == "5d"
    assert tree.age(None, NOW) == "?"


def test_pod_hangs_under_its_job_and_each_child_has_its_state() -> None:
    root = tree.build(MODEL, [POD, JOB, CONFIGMAP], ["line 1", "line 2"], NOW)
    text = plain(root)
    assert text.splitlines()[0].startswith("Model ns/tuned  Not ready  JobNotComplete: Job tuned-modeller running")
    assert "ConfigMap tuned-model-params  1 key (params.json)" in text
    assert "Job tuned-modeller  Running (1 active)" in text
    job_line = next(i for i, line in enumerate(text.splitlines()) if "── Job tuned-modeller " in line)
    pod_line = text.splitlines()[job_line + 1]
    assert "Pod tuned-modeller-x7k2p  Running, ready 1/1" in pod_line
    assert pod_line.index("Pod") > text.splitlines()[job_line].index("Job")  # nested one level deeper
    assert "Complete  False JobNotComplete  2m  Job tuned-modeller running" in text
    assert "Ready     False JobNotComplete" in text
    assert "Events (bus, last 2)" in text


def test_a_deployments_pod_goes_under_the_deployment() -> None:
    deployment = {
        "kind": "Deployment",
        "metadata": meta("s-server", "d1"),
        "spec": {"replicas": 1},
        "status": {"readyReplicas": 1},
    }
    pod = {
        "kind": "Pod",
        "metadata": meta("s-server-5d8f-abcde", "p2", [{"kind": "ReplicaSet", "name": "s-server-5d8f"}]),
        "status": {"phase": "Pending"},
    }
    (node,) = tree.children([pod, deployment], NOW)
    assert (node.label, node.state) == ("Deployment s-server", "ready 1/1")
    assert [c.label for c in node.children] == ["Pod s-server-5d8f-abcde"]


def test_failures_are_marked_bad() -> None:
    failed_job = {
        "kind": "Job",
        "metadata": meta("b-dataset-bld", "j2"),
        "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]},
    }
    assert tree.job_state(failed_job) == ("Failed (BackoffLimitExceeded)", "bad")
    crashing = {
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {"name": "model", "ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ],
        }
    }
    assert tree.pod_state(crashing) == ("Running, model: CrashLoopBackOff", "bad")
    assert tree.condition_health({"status": "False", "reason": "JobFailed"}) == "bad"
    assert tree.condition_health({"status": "False", "reason": "DatasetNotReady"}) == "progress"


def test_json_has_the_resource_conditions_children_and_events() -> None:
    doc = tree.to_json(tree.build(MODEL, [JOB, POD], ["e1"], NOW))
    assert (doc["kind"], doc["namespace"], doc["name"], doc["ready"]) == ("Model", "ns", "tuned", False)
    assert [c["type"] for c in doc["conditions"]] == ["Complete", "Ready"]
    assert doc["conditions"][0]["age"] == "2m"
    (job,) = doc["children"]
    assert (job["kind"], job["state"]) == ("Job", "Running (1 active)")
    assert [(p["kind"], p["state"]) for p in job["children"]] == [("Pod", "Running, ready 1/1")]
    assert doc["events"] == ["e1"]
