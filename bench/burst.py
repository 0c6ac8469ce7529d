"""The end-to-end burst: N Models with every service running, then the bare-client floor.

One stack, one run: the services start (each as its own ServiceAccount, so its API requests are
counted apart, see ``bench/requests.py``); N Models (``spec.image`` set: plain import Jobs) are
created with ``concurrency`` requests in flight; the times until every Job exists and until every
Model is ready are taken from the benchmark's own watches. The services then stop, and the bare
client (``bench/floor.py``) does the same N Models in another namespace on the same stack.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import figures, floor, measure, requests, services, timeline
from substratus_common.kube import client
from substratus_local import stack as stack_mod

FLOOR_CLIENT = "floor"


def progress(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def create_namespace(stack: stack_mod.Stack, name: str) -> None:
    stack.kubectl("create", "namespace", name)
    # Pods (and so Jobs) wait for the namespace's default ServiceAccount; neither run should.
    stack_mod.wait_for(
        f"default ServiceAccount in {name}",
        lambda: stack.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
        60,
    )


def model_manifests(namespace: str, n: int, prefix: str = "model") -> list[dict[str, Any]]:
    return [measure.manifest(namespace, f"{prefix}-{i:05d}") for i in range(n)]


async def create_models(kube: client.Kube, manifests: list[dict[str, Any]], concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(manifest: dict[str, Any]) -> None:
        async with gate:
            await kube.create(manifest)

    await asyncio.gather(*(one(m) for m in manifests))


def _during(now: dict[str, float], at_start: dict[str, float]) -> dict[str, float]:
    """Usage at the end, with what the burst itself used: CPU seconds and passes since the services
    were ready (start-up, which imports and loads the view, is not part of the burst)."""
    return {
        **now,
        "burst_cpu_s": round(now["cpu_s"] - at_start["cpu_s"], 2),
        "burst_passes": now["passes"] - at_start["passes"],
    }


def timeout_for(n: int) -> float:
    """Generous (the point is a figure, not a verdict), but bounded: 10 min plus 1 s per Model."""
    return 600.0 + n


def run_figures(line: timeline.Timeline, names: list[str], started: float) -> figures.Run:
    return figures.Run.of(
        started=started,
        job_seen={n: line.job_seen[n] for n in names if n in line.job_seen},
        ready_at={n: line.ready_at[n] for n in names},
        job_uids={n: sorted(line.job_uids.get(n, ())) for n in names},
        job_done_at={n: line.job_done_at[n] for n in names if n in line.job_done_at},
    )


async def _ours(
    stack: stack_mod.Stack, kube: client.Kube, n: int, concurrency: int, alive: Callable[[], None]
) -> tuple[figures.Run, requests.Requests]:
    ns = "bench-ours"
    create_namespace(stack, ns)
    manifests = model_manifests(ns, n)
    names = [m["metadata"]["name"] for m in manifests]
    line = timeline.Timeline(kube, ns)
    await line.start()
    try:
        before = await asyncio.to_thread(requests.snapshot, stack)
        progress(f"ours: creating {n} Models, {concurrency} requests in flight")
        started = time.time()
        await create_models(kube, manifests, concurrency)
        progress(f"ours: created in {time.time() - started:.1f}s; waiting for every Model to be ready")
        await line.wait(names, timeout_for(n), alive, "ours", progress)
        after = await asyncio.to_thread(requests.snapshot, stack)
    finally:
        await line.stop()
    return run_figures(line, names, started), requests.Requests.between(before, after, stack_mod.SERVICES)


async def _floor(
    stack: stack_mod.Stack, kube: client.Kube, floor_kubeconfig: Path, n: int, concurrency: int
) -> tuple[figures.Run, requests.Requests]:
    ns = "bench-floor"
    create_namespace(stack, ns)
    manifests = model_manifests(ns, n)
    names = [m["metadata"]["name"] for m in manifests]
    bare_kube = await client.connect(str(floor_kubeconfig), qps_connections=max(concurrency, 8))
    bare = floor.Floor(bare_kube, concurrency)
    line = timeline.Timeline(kube, ns, on_job=bare.on_job)
    await line.start()
    try:
        before = await asyncio.to_thread(requests.snapshot, stack)
        progress(f"floor: {n} Models by the bare client, services stopped")
        started = time.time()
        await bare.create_all(manifests)
        await line.wait(names, timeout_for(n), bare.check, "floor", progress)
        after = await asyncio.to_thread(requests.snapshot, stack)
    finally:
        await line.stop()
        await bare_kube.close()
    return run_figures(line, names, started), requests.Requests.between(before, after, [FLOOR_CLIENT])


async def run(stack: stack_mod.Stack, n: int, concurrency: int, log_dir: Path) -> dict[str, Any]:
    kubeconfigs = requests.setup(stack, [*stack_mod.SERVICES, FLOOR_CLIENT], stack.root / "bench-identities")
    running = [
        services.Service(stack, name, log_dir, {"KUBECONFIG": str(kubeconfigs[name])}) for name in stack_mod.SERVICES
    ]
    kube = await client.connect(str(stack.kubeconfig), qps_connections=max(concurrency, 8))

    def alive() -> None:
        for svc in running:
            if not svc.alive():
                raise services.ServiceError(f"{svc.label} died during the burst; see {svc.log_path}")

    try:
        progress("starting the seven services")
        services.start_all(running)
        at_start = {svc.name: svc.usage() for svc in running}
        ours, ours_requests = await _ours(stack, kube, n, concurrency, alive)
        usage = {svc.name: _during(svc.usage(), at_start[svc.name]) for svc in running}
        services.stop_all(running)
        bare, floor_requests = await _floor(stack, kube, kubeconfigs[FLOOR_CLIENT], n, concurrency)
    finally:
        services.stop_all(running)
        await kube.close()
    return figures.burst(n, concurrency, ours, bare, ours_requests, floor_requests, usage, stack_mod.SERVICES)
