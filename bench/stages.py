"""The stages of the watcher and the status-writer alone (``BENCH=stages``).

Runs the watcher and the status-writer as processes against the benchmark's stack, and measures:

- steady state: Models applied one at a time, reports published one at a time — apply → change
  event stored, and status report → status written;
- burst: N Models applied with ``concurrency`` requests in flight, then N status reports —
  the same latencies under load, change events stored per second, statuses written per second;
- bus only: N events published with no service involved;
- peak RSS (VmHWM) of the watcher and the status-writer after all of it;
- applies per second with the services stopped.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import measure, services, stats
from substratus_common import config
from substratus_common.bus import connection
from substratus_common.kube import client
from substratus_local import stack as stack_mod

SERVICES = ("watcher", "status-writer")
TARGETS = {"change_p99_ms": 20.0, "status_writes_per_s": 300.0, "rss_mib": 150.0}


@dataclass
class Options:
    n: int
    steady: int
    concurrency: int


@dataclass
class Results:
    options: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)

    def put(self, section: str, **values: Any) -> None:
        self.figures.setdefault(section, {}).update(values)


async def run(stack: stack_mod.Stack, n: int, steady: int, concurrency: int, log_dir: Path) -> Results:
    opts = Options(n=n, steady=steady, concurrency=concurrency)
    results = Results(options={"n": n, "steady": steady, "concurrency": concurrency, "targets": TARGETS})
    await _run(stack, opts, results, log_dir)
    return results


def _progress(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _latencies(applied: list[measure.Applied], stored: dict[str, float]) -> dict[str, Any]:
    missing = [a.name for a in applied if a.event_id not in stored]
    if missing:
        raise RuntimeError(f"{len(missing)} Models have no change event for the applied version, e.g. {missing[:3]}")
    from_reply = stats.Latency.of_seconds([stored[a.event_id] - a.returned for a in applied])
    from_send = stats.Latency.of_seconds([stored[a.event_id] - a.sent for a in applied])
    return {"from_reply": from_reply.as_dict(), "from_send": from_send.as_dict()}


async def _run(stack: stack_mod.Stack, opts: Options, results: Results, log_dir: Path) -> None:
    kube = await client.connect(str(stack.kubeconfig), qps_connections=max(opts.concurrency, 8))
    bus = await connection.connect(config.Settings(service="bench", nats_url=stack.nats_url))
    running = [services.Service(stack, name, log_dir) for name in SERVICES]
    try:
        for svc in running:
            svc.start()
            _progress(f"{svc.label} ready (pid {svc.pid})")
        await _steady(stack, kube, bus, opts, results)
        await _burst(stack, kube, bus, opts, results)
        _progress(f"bus only: {opts.n} events")
        first, last = await measure.bus_only(bus, opts.n, opts.concurrency)
        results.put("bus_only", events=opts.n, events_per_s=round(stats.rate(opts.n, first, last), 1))
        for svc in running:
            if not svc.alive():
                raise RuntimeError(f"{svc.name} died during the run; see {svc.log_path}")
            results.put("services", **{svc.name: svc.usage()})
    finally:
        for svc in running:
            svc.stop()
    try:
        await _floor(stack, kube, opts, results)
    finally:
        await bus.close()
        await kube.close()


async def _steady(
    stack: stack_mod.Stack, kube: client.Kube, bus: connection.Bus, opts: Options, results: Results
) -> None:
    if opts.steady <= 0:
        return
    ns = "bench-steady"
    stack.kubectl("create", "namespace", ns)
    names = [f"steady-{i:05d}" for i in range(opts.steady)]
    _progress(f"steady: {len(names)} Models, one at a time")
    watch = measure.StatusWatch(kube, ns)
    await watch.start()
    try:
        started = time.time()
        applied = await measure.apply_all(kube, ns, names, concurrency=1)
        await measure.wait_change_subjects(bus, ns, len(names), timeout_s=60 + len(names) * 0.1)
        stored = await measure.stored_times(bus, ns, started)
        status_latency = []
        for a in applied:
            published = await measure.publish_report(bus, a)
            await watch.wait([a.name], timeout_s=30)
            status_latency.append(watch.seen[a.name] - published)
    finally:
        await watch.stop()
    results.put(
        "steady",
        models=len(names),
        apply_to_change_stored_ms=_latencies(applied, stored),
        report_to_status_written_ms=stats.Latency.of_seconds(status_latency).as_dict(),
    )


async def _burst(
    stack: stack_mod.Stack, kube: client.Kube, bus: connection.Bus, opts: Options, results: Results
) -> None:
    ns = "bench-burst"
    stack.kubectl("create", "namespace", ns)
    names = [f"model-{i:05d}" for i in range(opts.n)]
    _progress(f"burst: {opts.n} Models, {opts.concurrency} applies in flight")
    started = time.time()
    applied = await measure.apply_all(kube, ns, names, opts.concurrency)
    applied_at = time.time()
    await measure.wait_change_subjects(bus, ns, opts.n, timeout_s=120 + opts.n * 0.1)
    stored = await measure.stored_times(bus, ns, started)
    firsts = sorted(stored[a.event_id] for a in applied if a.event_id in stored)
    results.put(
        "burst",
        models=opts.n,
        concurrency=opts.concurrency,
        apply_per_s=round(stats.rate(opts.n, started, applied_at), 1),
        apply_to_change_stored_ms=_latencies(applied, stored),
        change_events_stored_per_s=round(stats.rate(len(firsts), firsts[0], firsts[-1]), 1) if firsts else None,
        all_stored_after_s=round(firsts[-1] - started, 3) if firsts else None,
    )
    _progress(f"burst: {opts.n} status reports")
    watch = measure.StatusWatch(kube, ns)
    await watch.start()
    requests_before = await _api_requests(stack)
    try:
        first_publish = time.time()
        published = await measure.publish_reports(bus, applied, opts.concurrency)
        published_at = time.time()
        await watch.wait(names, timeout_s=120 + opts.n * 0.2)
    finally:
        await watch.stop()
    last_written = max(watch.seen[n] for n in names)
    # Mostly the status writer's: the benchmark only watches, and nothing else writes Models now.
    requests = await _api_requests(stack) - requests_before
    results.put(
        "burst",
        reports_published_per_s=round(stats.rate(opts.n, first_publish, published_at), 1),
        report_to_status_written_ms=stats.Latency.of_seconds([watch.seen[n] - published[n] for n in names]).as_dict(),
        status_writes_per_s=round(stats.rate(opts.n, first_publish, last_written), 1),
        api_requests_per_report={verb: round(count / opts.n, 2) for verb, count in sorted(requests.items())},
    )


async def _api_requests(stack: stack_mod.Stack) -> Counter[str]:
    return await asyncio.to_thread(measure.api_requests, stack.pki_dir, stack.apiserver_url, "models")


async def _floor(stack: stack_mod.Stack, kube: client.Kube, opts: Options, results: Results) -> None:
    ns = "bench-floor"
    stack.kubectl("create", "namespace", ns)
    _progress(f"floor: {opts.n} Models, services stopped")
    started = time.time()
    await measure.apply_all(kube, ns, [f"model-{i:05d}" for i in range(opts.n)], opts.concurrency)
    results.put("floor", models=opts.n, apply_per_s=round(stats.rate(opts.n, started, time.time()), 1))


def _ms(section: dict[str, Any], *path: str) -> str:
    value: Any = section
    for key in path:
        value = value.get(key, {}) if isinstance(value, dict) else {}
    return f"{value:.1f}" if isinstance(value, int | float) else "-"


def table(results: Results) -> str:
    f = results.figures
    steady, burst = f.get("steady", {}), f.get("burst", {})
    change, status = "apply_to_change_stored_ms", "report_to_status_written_ms"

    def both(*path: str) -> tuple[str, str]:
        return _ms(steady, *path), _ms(burst, *path)

    rows: list[tuple[str, str, str]] = [
        ("stage (watcher, status-writer)", "steady", f"burst of {results.options['n']}"),
        ("apply -> change stored p50 ms (from reply)", *both(change, "from_reply", "p50_ms")),
        ("apply -> change stored p99 ms (from reply)", *both(change, "from_reply", "p99_ms")),
        ("apply -> change stored p99 ms (from send)", *both(change, "from_send", "p99_ms")),
        ("report -> status written p50 ms", *both(status, "p50_ms")),
        ("report -> status written p99 ms", *both(status, "p99_ms")),
        ("applies/s (services running)", "-", _ms(burst, "apply_per_s")),
        ("applies/s (bare-client floor, services stopped)", "-", _ms(f.get("floor", {}), "apply_per_s")),
        ("change events stored/s", "-", _ms(burst, "change_events_stored_per_s")),
        ("status writes/s", "-", _ms(burst, "status_writes_per_s")),
        ("bus-only events/s", "-", _ms(f.get("bus_only", {}), "events_per_s")),
    ]
    for verb, per_report in burst.get("api_requests_per_report", {}).items():
        rows.append((f"API {verb} requests per status report", "-", f"{per_report:.2f}"))
    for name, usage in f.get("services", {}).items():
        rows.append((f"{name} peak RSS MiB (VmHWM)", "-", _ms(usage, "peak_rss_mib")))
        rows.append((f"{name} CPU seconds, whole run", "-", _ms(usage, "cpu_s")))
    width = max(len(r[0]) for r in rows)
    lines = [f"{a:<{width}}  {b:>10}  {c:>16}" for a, b, c in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
