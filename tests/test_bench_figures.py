"""The benchmark's pure logic: request counting per client and verb, the figures, the floor's writes.

`make bench` itself is not a test (its speed targets are informational); these check that the
numbers it prints are computed from what it measured.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from pathlib import Path

# bench/ is run from the repository root (`python -m bench`) and is no installed package; appended,
# so nothing installed is shadowed.
sys.path.append(str(Path(__file__).resolve().parents[1]))

from bench import figures, floor, markdown, plot, requests, timeline

METRICS = """\
# HELP apiserver_flowcontrol_dispatched_requests_total [BETA] Number of requests executed by APF.
# TYPE apiserver_flowcontrol_dispatched_requests_total counter
apiserver_flowcontrol_dispatched_requests_total{flow_schema="bench-trainer-get",priority_level="exempt"} 12
apiserver_flowcontrol_dispatched_requests_total{flow_schema="bench-trainer-patch",priority_level="exempt"} 7
apiserver_flowcontrol_dispatched_requests_total{flow_schema="bench-trainer-watch",priority_level="exempt"} 3
apiserver_flowcontrol_dispatched_requests_total{flow_schema="exempt",priority_level="exempt"} 900
apiserver_flowcontrol_dispatched_requests_total{flow_schema="bench-status-writer-patch-status",priority_level="x"} 2e+01
apiserver_request_total{code="200",verb="GET",resource="models"} 55
"""


def test_dispatched_counts_are_read_per_flow_schema_and_other_metrics_ignored() -> None:
    counts = requests.dispatched(METRICS)
    assert counts["bench-trainer-get"] == 12
    assert counts["bench-status-writer-patch-status"] == 20
    assert counts["exempt"] == 900
    assert "models" not in counts
    assert len(counts) == 5


def test_requests_between_snapshots_per_client_and_verb_with_watches_aside() -> None:
    before = requests.dispatched(METRICS)
    after = dict(before)
    after["bench-trainer-get"] += 10
    after["bench-trainer-create"] = 20
    after["bench-trainer-watch"] += 5
    after["bench-status-writer-patch-status"] += 10
    after["bench-floor-create"] = 99  # another client: not ours
    counted = requests.Requests.between(before, after, ["trainer", "status-writer"])
    assert counted.by_client == {
        "trainer": {"get": 10, "create": 20, "watch": 5},
        "status-writer": {"patch-status": 10},
    }
    assert counted.by_verb(["trainer", "status-writer"]) == {"create": 20, "get": 10, "patch-status": 10, "watch": 5}
    assert counted.counted(["trainer", "status-writer"]) == 40  # the 5 watches are not counted


def test_each_client_has_one_flow_schema_per_verb_class_on_the_exempt_level_in_a_fixed_order() -> None:
    docs = requests.manifests(["trainer", "floor"])
    schemas = [d for d in docs if d["kind"] == "FlowSchema"]
    classes = len(requests.VERB_CLASSES) + 1
    assert len(schemas) == 2 * classes
    names = [s["metadata"]["name"] for s in schemas]
    assert len(set(names)) == len(names)
    trainer = [s for s in schemas if s["metadata"]["name"].startswith("bench-trainer-")]
    assert {s["spec"]["priorityLevelConfiguration"]["name"] for s in trainer} == {"exempt"}
    order = {s["metadata"]["name"]: s["spec"]["matchingPrecedence"] for s in trainer}
    # A status patch must match its own schema before the catch-all patch schema does.
    assert order["bench-trainer-patch-status"] < order["bench-trainer-patch"]
    subject = trainer[0]["spec"]["rules"][0]["subjects"][0]["serviceAccount"]
    assert subject == {"name": "bench-trainer", "namespace": requests.NAMESPACE}
    binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding" and d["metadata"]["name"] == "bench-floor")
    assert binding["subjects"][0]["name"] == "bench-floor"


def test_run_figures_from_first_seen_times_and_job_uids() -> None:
    run = figures.Run.of(
        started=100.0,
        job_seen={"a": 101.0, "b": 103.5},
        ready_at={"a": 104.0, "b": 110.0, "c": 107.0},
        job_uids={"a": ["u1"], "b": ["u2", "u3"], "c": []},
    )
    assert run.models == 3
    assert run.every_job_s == 3.5
    assert run.every_ready_s == 10.0
    assert run.ready_s == [4.0, 7.0, 10.0]
    assert (run.models_without_job, run.models_with_several_jobs) == (1, 1)
    assert run.summary()["ready_p50_s"] == 7.0


def _run(every_job: float, every_ready: float, n: int = 2) -> figures.Run:
    uids = {f"m{i}": [f"u{i}"] for i in range(n)}
    return figures.Run.of(
        0.0,
        {m: every_job for m in uids},
        {m: every_ready for m in uids},
        uids,
    )


def test_burst_ratios_requests_per_model_and_verdicts_in_the_table() -> None:
    ours_requests = requests.Requests(
        {"trainer": {"get": 4, "create": 4, "watch": 2}, "status-writer": {"patch-status": 2}}
    )
    floor_requests = requests.Requests({"floor": {"create": 6, "patch-status": 2}})
    usage = {"trainer": {"peak_rss_mib": 150.0}, "status-writer": {"peak_rss_mib": 250.0}}
    result = figures.burst(
        2, 32, _run(3.0, 12.0), _run(2.0, 10.0), ours_requests, floor_requests, usage, ["trainer", "status-writer"]
    )
    assert result["jobs_ratio"] == 1.5
    assert result["ready_ratio"] == 1.2
    assert result["requests_per_model"] == 5.0  # (4 + 4 + 2) / 2, the watches aside
    assert result["requests_per_model_by_verb"] == {"create": 2.0, "get": 2.0, "patch-status": 1.0, "watch": 1.0}
    assert result["floor_requests_per_model"] == 4.0
    assert result["peak_rss_mib_max"] == 250.0
    table = figures.burst_table(result)
    lines = {line.split("  ")[0]: line for line in table.splitlines()}
    assert lines["every Job exists (s)"].endswith(" met")
    assert lines["every Model ready (s)"].endswith(" met")
    assert lines["API requests per Model (watches aside)"].endswith("NOT met")
    assert lines["peak RSS MiB: status-writer"].endswith("NOT met")
    assert "watch (aside)" in table


def test_ratio_of_a_missing_floor_is_not_a_number() -> None:
    assert math.isnan(figures.ratio(5.0, math.nan))
    assert math.isnan(figures.ratio(5.0, 0.0))


def test_replica_figure_needs_exactly_one_job_per_model_in_both_runs() -> None:
    one, three = _run(50.0, 60.0), _run(15.0, 20.0)
    result = figures.replicas(one, three, 1.0)
    assert result["ratio"] == 0.33
    assert result["one_job_per_model"] is True
    replaced = figures.Run.of(0.0, {"m0": 1.0}, {"m0": 2.0}, {"m0": ["u1", "u2"]})
    assert figures.replicas(one, replaced, 1.0)["one_job_per_model"] is False
    table = figures.replicas_table(result)
    assert "x0.33 (target <= x0.45: met)" in table
    assert table.splitlines()[-1].split()[-2:] == ["0/0", "0/0"]


def test_floor_children_are_owned_by_the_model_and_the_patch_makes_it_ready() -> None:
    model = {
        "apiVersion": "substratus.ai/v1",
        "kind": "Model",
        "metadata": {"name": "m", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": {"image": "img", "params": {"name": "x"}},
    }
    job = floor.job(model)
    configmap = floor.configmap(model)
    assert timeline.owner_model(job) == "m"
    assert timeline.owner_model(configmap) == "m"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "img"
    assert configmap["data"] == {"params.json": '{"name": "x"}'}
    patched = {**model, **floor.ready_patch(1, "m-modeller", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))}
    assert timeline.is_ready(patched)
    assert not timeline.job_complete(job)
    job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    assert timeline.job_complete(job)


def test_plot_steps_count_up_from_zero() -> None:
    assert plot.steps([3.0, 1.0, 2.0]) == ([0.0, 1.0, 2.0, 3.0], [0, 1, 2, 3])
    assert plot.steps([]) == ([0.0], [0])


def test_markdown_rows_carry_both_times_the_ratios_and_the_load() -> None:
    ours_requests = requests.Requests({"trainer": {"get": 2, "watch": 1}})
    floor_requests = requests.Requests({"floor": {"create": 6, "patch-status": 2}})
    burst = figures.burst(
        2,
        32,
        _run(3.0, 12.0),
        _run(2.0, 10.0),
        ours_requests,
        floor_requests,
        {"trainer": {"peak_rss_mib": 99.0}},
        ["trainer"],
    )
    result = {
        "burst": burst,
        "replicas": figures.replicas(_run(50.0, 60.0), _run(15.0, 20.0), 1.0),
        "load_average": {"burst": {"before": "1.0", "after": "2.0"}, "replicas": {"before": "3.0", "after": "4.0"}},
    }
    text = markdown.tables([("abc123", result)])
    burst_row = next(line for line in text.splitlines() if line.startswith("| abc123 | 2 |"))
    assert "3.0 s / 2.0 s (x 1.50)" in burst_row
    assert "12.0 s / 10.0 s (x 1.20)" in burst_row
    assert "1.00 (get 1.00, watch 0.50)" in burst_row
    assert "99 MiB" in burst_row
    assert "1.0 → 2.0" in burst_row
    replica_row = next(line for line in text.splitlines() if line.startswith("| abc123 | 2 | 60.0 s"))
    assert "x 0.33 | yes | 3.0 → 4.0 |" in replica_row
