"""The benchmark's figures from what the watches saw, its targets, and its tables (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench import requests, stats

# Issue 15's targets; informational: printed beside the figures, never a failing exit.
TARGETS = {
    "jobs_ratio_max": 1.5,
    "ready_ratio_max": 1.25,
    "requests_per_model_max": 4.0,
    "rss_mib_max": 200.0,  # at N = 10,000
    "replicas_ratio_max": 0.45,
}


@dataclass(frozen=True)
class Run:
    """One burst: seconds from the first create until each Model's first Job and readiness."""

    models: int
    every_job_s: float
    every_ready_s: float
    every_job_done_s: float  # Kubernetes' part: the Job controller and kwok completing every Job
    job_s: list[float]  # sorted, one per Model that had a Job
    ready_s: list[float]  # sorted, one per Model
    models_without_job: int
    models_with_several_jobs: int

    @classmethod
    def of(
        cls,
        started: float,
        job_seen: Mapping[str, float],
        ready_at: Mapping[str, float],
        job_uids: Mapping[str, Sequence[str]],
        job_done_at: Mapping[str, float] | None = None,
    ) -> Run:
        job_s = sorted(t - started for t in job_seen.values())
        done_s = sorted(t - started for t in (job_done_at or {}).values())
        ready_s = sorted(t - started for t in ready_at.values())
        return cls(
            models=len(ready_at),
            every_job_s=job_s[-1] if job_s else math.nan,
            every_ready_s=ready_s[-1] if ready_s else math.nan,
            every_job_done_s=done_s[-1] if len(done_s) == len(ready_at) and done_s else math.nan,
            job_s=job_s,
            ready_s=ready_s,
            models_without_job=sum(1 for uids in job_uids.values() if not uids),
            models_with_several_jobs=sum(1 for uids in job_uids.values() if len(uids) > 1),
        )

    def summary(self) -> dict[str, Any]:
        return {
            "models": self.models,
            "every_job_exists_s": round(self.every_job_s, 2),
            "every_model_ready_s": round(self.every_ready_s, 2),
            "every_job_complete_s": round(self.every_job_done_s, 2),
            "job_p50_s": round(stats.percentile(self.job_s, 50), 2),
            "ready_p50_s": round(stats.percentile(self.ready_s, 50), 2),
            "ready_per_s": round(stats.rate(self.models, 0.0, self.every_ready_s), 1),
            "models_without_job": self.models_without_job,
            "models_with_several_jobs": self.models_with_several_jobs,
        }


def ratio(ours: float, floor: float) -> float:
    return ours / floor if floor > 0 and not math.isnan(floor) else math.nan


def per_model(counts: Mapping[str, int], n: int) -> dict[str, float]:
    return {verb: round(count / n, 2) for verb, count in sorted(counts.items())}


def burst(  # noqa: PLR0917  (called once, with every part of the burst)
    n: int,
    concurrency: int,
    ours: Run,
    floor: Run,
    ours_requests: requests.Requests,
    floor_requests: requests.Requests,
    usage: Mapping[str, Mapping[str, float]],
    service_names: Iterable[str],
) -> dict[str, Any]:
    names = list(service_names)
    counted = ours_requests.counted(names)
    floor_counted = floor_requests.counted(["floor"])
    rss = {name: float(usage.get(name, {}).get("peak_rss_mib", math.nan)) for name in names}
    return {
        "models": n,
        "concurrency": concurrency,
        "ours": ours.summary(),
        "floor": floor.summary(),
        "jobs_ratio": round(ratio(ours.every_job_s, floor.every_job_s), 2),
        "ready_ratio": round(ratio(ours.every_ready_s, floor.every_ready_s), 2),
        "requests_per_model": round(counted / n, 2),
        "requests_per_model_by_verb": per_model(ours_requests.by_verb(names), n),
        "requests_per_model_by_service": {
            name: per_model(ours_requests.by_client.get(name, {}), n)
            for name in names
            if ours_requests.by_client.get(name)
        },
        "floor_requests_per_model": round(floor_counted / n, 2),
        "floor_requests_per_model_by_verb": per_model(floor_requests.by_verb(["floor"]), n),
        "services": {name: dict(usage.get(name, {})) for name in names},
        "peak_rss_mib_max": max(rss.values()) if rss else math.nan,
        "series": {
            "ours": {"job_s": _rounded(ours.job_s), "ready_s": _rounded(ours.ready_s)},
            "floor": {"job_s": _rounded(floor.job_s), "ready_s": _rounded(floor.ready_s)},
        },
    }


def replicas(one: Run, three: Run, delay_s: float) -> dict[str, Any]:
    return {
        "models": one.models,
        "reconcile_delay_s": delay_s,
        "one_replica": one.summary(),
        "three_replicas": three.summary(),
        "ratio": round(ratio(three.every_ready_s, one.every_ready_s), 2),
        "one_job_per_model": all(r.models_without_job == 0 and r.models_with_several_jobs == 0 for r in (one, three)),
    }


def _rounded(values: Iterable[float]) -> list[float]:
    return [round(v, 3) for v in values]


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "NOT met")


def _num(value: Any, unit: str = "") -> str:
    if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        return f"{value:.2f}{unit}" if isinstance(value, float) else f"{value}{unit}"
    return "-"


def _rows_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = zip(row, widths, strict=True)
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells))

    out = [line(header), "-" * len(line(header))]
    out += [line(r) for r in rows]
    return "\n".join(out)


def burst_table(f: Mapping[str, Any]) -> str:
    ours, floor, t = f["ours"], f["floor"], TARGETS
    n = f["models"]
    jobs_ratio, ready_ratio, rpm = f["jobs_ratio"], f["ready_ratio"], f["requests_per_model"]
    rows: list[tuple[str, ...]] = [
        (
            "every Job exists (s)",
            _num(ours["every_job_exists_s"]),
            _num(floor["every_job_exists_s"]),
            f"x{_num(jobs_ratio)}",
            f"<= x{t['jobs_ratio_max']}",
            _verdict(jobs_ratio <= t["jobs_ratio_max"]),
        ),
        (
            "every Model ready (s)",
            _num(ours["every_model_ready_s"]),
            _num(floor["every_model_ready_s"]),
            f"x{_num(ready_ratio)}",
            f"<= x{t['ready_ratio_max']}",
            _verdict(ready_ratio <= t["ready_ratio_max"]),
        ),
        ("median Model ready (s)", _num(ours["ready_p50_s"]), _num(floor["ready_p50_s"]), "", "", ""),
        (
            "every Job complete (s, Kubernetes' part)",
            _num(ours.get("every_job_complete_s", math.nan)),
            _num(floor.get("every_job_complete_s", math.nan)),
            "",
            "",
            "",
        ),
        (
            "API requests per Model (watches aside)",
            _num(rpm),
            _num(f["floor_requests_per_model"]),
            "",
            f"<= {t['requests_per_model_max']:.0f}",
            _verdict(rpm <= t["requests_per_model_max"]),
        ),
    ]
    floor_by_verb = f.get("floor_requests_per_model_by_verb", {})
    for verb, value in f["requests_per_model_by_verb"].items():
        aside = " (aside)" if verb in requests.ASIDE else ""
        rows.append((f"  {verb}{aside}", _num(value), _num(floor_by_verb.get(verb, 0.0)), "", "", ""))
    for name, usage in f["services"].items():
        rows.append(
            (
                f"peak RSS MiB: {name}",
                _num(usage.get("peak_rss_mib")),
                "",
                "",
                f"<= {t['rss_mib_max']:.0f}" + ("" if n >= 10_000 else " at 10k"),
                _verdict(usage.get("peak_rss_mib", math.inf) <= t["rss_mib_max"]),
            )
        )
    for name, usage in f["services"].items():  # where the machine's time went (no target)
        rows.append((f"CPU s: {name} (in the burst)", _num(usage.get("burst_cpu_s", math.nan)), "", "", "", ""))
    for name, usage in f["services"].items():
        passes = usage.get("burst_passes", math.nan)
        rows.append((f"passes per Model: {name}", _num(passes / n if n else math.nan), "", "", "", ""))
    rows.append(
        (
            "Models with no Job / several Jobs",
            f"{ours['models_without_job']}/{ours['models_with_several_jobs']}",
            f"{floor['models_without_job']}/{floor['models_with_several_jobs']}",
            "",
            "0/0",
            _verdict(ours["models_without_job"] == 0 and ours["models_with_several_jobs"] == 0),
        )
    )
    header = (f"burst of {n} Models ({f['concurrency']} in flight)", "ours", "floor", "ratio", "target", "")
    return _rows_table(header, rows)


def requests_by_service_table(f: Mapping[str, Any]) -> str:
    by_service: Mapping[str, Mapping[str, float]] = f.get("requests_per_model_by_service", {})
    verbs = sorted({v for counts in by_service.values() for v in counts})
    rows = [(name, *(_num(counts.get(v, 0.0)) for v in verbs)) for name, counts in by_service.items()]
    return _rows_table(("requests per Model by service", *verbs), rows) if rows else ""


def replicas_table(f: Mapping[str, Any]) -> str:
    one, three = f["one_replica"], f["three_replicas"]
    target = TARGETS["replicas_ratio_max"]
    rows: list[tuple[str, ...]] = [
        ("every Model ready (s)", _num(one["every_model_ready_s"]), _num(three["every_model_ready_s"])),
        ("every Job exists (s)", _num(one["every_job_exists_s"]), _num(three["every_job_exists_s"])),
        ("3 replicas / 1", "", f"x{_num(f['ratio'])} (target <= x{target}: {_verdict(f['ratio'] <= target)})"),
        (
            "Models with no Job / several Jobs (by uid)",
            f"{one['models_without_job']}/{one['models_with_several_jobs']}",
            f"{three['models_without_job']}/{three['models_with_several_jobs']}",
        ),
    ]
    header = (f"{f['models']} Models, slow-reconcile {f['reconcile_delay_s']}s", "1 trainer", "3 trainers")
    return _rows_table(header, rows)
