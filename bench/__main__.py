"""`make bench`: the benchmarks, on a local stack of their own (not tests).

    python -m bench [--n 1000] [--sections burst,replicas,stages] [--out PATH]
    BENCH_N=10000 make bench          # the burst at 10,000 Models
    BENCH=replicas make bench         # one section alone

Sections (env ``BENCH``, comma-separated; default all three):

- ``burst``: N Models (env ``BENCH_N``, default 1,000) created 32 at a time with every service
  running, until every Job exists and every Model is ready; then, on the same stack with the
  services stopped, the bare-client floor doing only the necessary writes. Ratios, API requests
  per Model by verb, peak RSS per service, and a PNG of Models ready over time.
- ``replicas``: with the ``slow-reconcile`` failpoint (1 s per reconcile pass), one trainer
  replica against three on ``BENCH_REPLICA_MODELS`` (300) Models; the ratio, one Job per Model.
- ``stages``: the watcher and the status-writer alone (steady and burst latencies, bus only).

Starts a stack of its own for each section (free ports, a temporary directory, stopped at the end), prints the tables,
and writes the figures as JSON (and the plot) to ``.dev/bench/``. Targets are printed beside the
figures; missing one does not fail the run. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import burst, figures, plot, replicas, stages
from substratus_local import stack as stack_mod

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT_DIR = REPO_ROOT / ".dev" / "bench"
SECTIONS = ("burst", "replicas", "stages")


def _commit() -> str:
    """The commit measured (env BENCH_COMMIT when run from an exported tree), "+changes" if dirty."""
    if os.environ.get("BENCH_COMMIT"):
        return os.environ["BENCH_COMMIT"]
    result = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    )
    commit = result.stdout.strip() or "unknown"
    return commit + ("+changes" if dirty.stdout.strip() else "")


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").split("\n\n")[0])
    env = os.environ.get
    parser.add_argument("--n", type=int, default=int(env("BENCH_N", "1000")), help="burst Models (env BENCH_N)")
    parser.add_argument(
        "--sections",
        default=env("BENCH", ",".join(SECTIONS)),
        help=f"comma-separated, of {', '.join(SECTIONS)} (env BENCH)",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight while creating")
    parser.add_argument(
        "--replica-models", type=int, default=int(env("BENCH_REPLICA_MODELS", "300")), help="env BENCH_REPLICA_MODELS"
    )
    parser.add_argument("--reconcile-delay", type=float, default=float(env("SUBSTRATUS_RECONCILE_DELAY_S", "1")))
    parser.add_argument(
        "--replica-workers",
        type=int,
        default=int(env("BENCH_REPLICA_WORKERS", "8")),
        help="reconciles at once per trainer replica in the replica section, few enough that one replica"
        " is the bottleneck (env BENCH_REPLICA_WORKERS)",
    )
    parser.add_argument(
        "--steady", type=int, default=int(env("BENCH_STEADY", "100")), help="stages: one-at-a-time Models"
    )
    out = env("BENCH_OUT")
    parser.add_argument("--out", type=Path, default=Path(out) if out else None, help="JSON file (env BENCH_OUT)")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in str(args.sections).split(",") if s.strip()]
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown or not args.sections:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    if args.n < 1 or args.replica_models < 1 or args.concurrency < 1 or args.replica_workers < 1 or args.steady < 0:
        parser.error("--n, --replica-models and --concurrency must be at least 1, --steady at least 0")
    return args


async def _section(stack: stack_mod.Stack, section: str, args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    if section == "burst":
        return {"burst": await burst.run(stack, args.n, args.concurrency, log_dir)}
    if section == "replicas":
        return {
            "replicas": await replicas.run(
                stack, args.replica_models, args.reconcile_delay, log_dir, workers=args.replica_workers
            )
        }
    results = await stages.run(stack, args.n, args.steady, args.concurrency, log_dir)
    return {"stages": results.figures, "stages_table": stages.table(results)}


def _sections(args: argparse.Namespace, log_dir: Path, save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Each section on a stack of its own (a trainer started for one section would otherwise
    reconcile the Models an earlier one left); the results so far are saved after each, and a
    failed section is recorded while the next one runs, so a long run keeps what it measured."""
    out: dict[str, Any] = {}
    for section in args.sections:
        load_before = _load()
        with tempfile.TemporaryDirectory(prefix=f"substratus-bench-{section}-") as tmp:
            stack = stack_mod.Stack(Path(tmp) / "stack")
            try:
                burst.progress(f"{section}: starting a stack")
                stack.up(log=burst.progress)
                stack.apply_crds()
                out.update(asyncio.run(_section(stack, section, args, log_dir)))
            except Exception as error:  # a figure that could not be taken is reported, not fatal to the others
                burst.progress(f"{section} failed: {error!r}")
                out.setdefault("failed", {})[section] = repr(error)
            finally:
                stack.down()
        out.setdefault("load_average", {})[section] = {"before": load_before, "after": _load()}
        save(out)
    return out


def main(argv: list[str] | None = None) -> int:
    args = _options(argv)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = args.out or DEFAULT_OUT_DIR / f"bench-{stamp}.json"
    meta = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": _commit(),
        "sections": args.sections,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "targets": figures.TARGETS,
    }

    def save(results: dict[str, Any]) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        kept = {k: v for k, v in results.items() if k != "stages_table"}
        out.write_text(json.dumps({"meta": meta, **kept}, indent=2) + "\n")

    results = _sections(args, out.parent / f"logs-{stamp}", save)
    stages_table = results.pop("stages_table", None)
    print(f"\ncommit {meta['commit']}, load average (1/5/15 min) {json.dumps(results.get('load_average'))}")
    if "burst" in results:
        print("\n" + figures.burst_table(results["burst"]))
        print("\n" + figures.requests_by_service_table(results["burst"]))
        png = plot.burst_png(
            results["burst"],
            out.with_suffix(".png"),
            f"{args.n} Models, {args.concurrency} in flight (commit {meta['commit']})",
        )
        print(f"\nplot: {png}")
    if "replicas" in results:
        print("\n" + figures.replicas_table(results["replicas"]))
    if stages_table:
        print("\n" + stages_table)
    for section, error in results.get("failed", {}).items():
        print(f"\n{section}: FAILED ({error})")
    save(results)
    print(f"\nwritten to {out}")
    return 1 if results.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
