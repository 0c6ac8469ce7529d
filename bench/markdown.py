"""Markdown tables of one or more `make bench` JSON results, for docs/performance.md.

python -m bench.markdown .dev/bench/bench-<time>.json [...]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import figures


def _s(value: Any) -> str:
    return f"{value:.1f} s" if isinstance(value, int | float) else "-"


def _load(result: Mapping[str, Any], section: str) -> str:
    load = (result.get("load_average") or {}).get(section) or {}
    return f"{load.get('before', '?')} → {load.get('after', '?')}"


def burst_rows(label: str, result: Mapping[str, Any]) -> list[str]:
    b = result["burst"]
    ours, floor = b["ours"], b["floor"]
    verbs = ", ".join(f"{verb} {value:.2f}" for verb, value in b["requests_per_model_by_verb"].items())
    rss = max(usage.get("peak_rss_mib", 0.0) for usage in b["services"].values())
    return [
        f"| {label} | {b['models']} | {_s(ours['every_job_exists_s'])} / {_s(floor['every_job_exists_s'])} "
        f"(x {b['jobs_ratio']:.2f}) | {_s(ours['every_model_ready_s'])} / {_s(floor['every_model_ready_s'])} "
        f"(x {b['ready_ratio']:.2f}) | {b['requests_per_model']:.2f} ({verbs}) | {rss:.0f} MiB | "
        f"{ours['models_without_job']}/{ours['models_with_several_jobs']} | {_load(result, 'burst')} |"
    ]


def replicas_rows(label: str, result: Mapping[str, Any]) -> list[str]:
    r = result["replicas"]
    one, three = r["one_replica"], r["three_replicas"]
    return [
        f"| {label} | {r['models']} | {_s(one['every_model_ready_s'])} | {_s(three['every_model_ready_s'])} | "
        f"x {r['ratio']:.2f} | {'yes' if r['one_job_per_model'] else 'NO'} | {_load(result, 'replicas')} |"
    ]


def tables(results: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    t = figures.TARGETS
    out = []
    bursts = [(label, r) for label, r in results if "burst" in r]
    if bursts:
        out += [
            "| commit | N | every Job exists: ours / floor | every Model ready: ours / floor | "
            "requests per Model (by verb) | peak RSS (max) | no Job / several | load avg before → after |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            f"| target | | x ≤ {t['jobs_ratio_max']} | x ≤ {t['ready_ratio_max']} | "
            f"≤ {t['requests_per_model_max']:.0f} | ≤ {t['rss_mib_max']:.0f} MiB at 10,000 | 0/0 | |",
        ]
        for label, r in bursts:
            out += burst_rows(label, r)
    reps = [(label, r) for label, r in results if "replicas" in r]
    if reps:
        out += [
            "",
            "| commit | Models | 1 trainer | 3 trainers | 3 / 1 | one Job per Model (by uid) "
            "| load avg before → after |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            f"| target | | | | ≤ {t['replicas_ratio_max']} | yes | |",
        ]
        for label, r in reps:
            out += replicas_rows(label, r)
    return "\n".join(out)


def main(argv: list[str]) -> int:
    results = []
    for name in argv:
        data = json.loads(Path(name).read_text())
        results.append((str(data.get("meta", {}).get("commit", name)), data))
    print(tables(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
