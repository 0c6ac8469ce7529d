"""The replica figure: do three trainer replicas add capacity?

With the ``slow-reconcile`` failpoint every reconcile pass takes ``delay_s`` (1 s) longer, so the
time to get ``n`` Models ready is bound by how many passes run at once. The watcher and the
status-writer run as usual; the trainers run first one, then three replicas (each told it is one
of ``SUBSTRATUS_REPLICAS``, as the chart tells it), each on ``n`` fresh Models in its own
namespace. Every Job uid seen is kept per Model: exactly one each, or the figure says so.

Each replica runs ``workers`` reconciles at once (``SUBSTRATUS_CONSUMER_CONCURRENCY``, 8 by default):
the figure is about capacity, so one replica must be what limits the run; with 32 workers and a few
hundred Models the chain of passes each Model needs (and kwok's Job delay) would dominate instead.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench import burst, figures, services, timeline
from substratus_common import failpoints
from substratus_common.kube import client
from substratus_common.kube.resources import JOB
from substratus_local import stack as stack_mod


async def _one_run(
    stack: stack_mod.Stack,
    kube: client.Kube,
    *,
    replicas: int,
    n: int,
    delay_s: float,
    workers: int,
    log_dir: Path,
    base: list[services.Service],
) -> figures.Run:
    env = {
        failpoints.ENV: failpoints.SLOW_RECONCILE,
        failpoints.DELAY_ENV: str(delay_s),
        "SUBSTRATUS_REPLICAS": str(replicas),
        "SUBSTRATUS_CONSUMER_CONCURRENCY": str(workers),
    }
    trainers = [
        services.Service(stack, "trainer", log_dir, env, label=f"trainer-{replicas}x-{i}") for i in range(replicas)
    ]
    ns = f"bench-replicas-{replicas}"
    burst.create_namespace(stack, ns)
    manifests = burst.model_manifests(ns, n)
    names = [m["metadata"]["name"] for m in manifests]

    def alive() -> None:
        for svc in [*base, *trainers]:
            if not svc.alive():
                raise services.ServiceError(f"{svc.label} died; see {svc.log_path}")

    line = timeline.Timeline(kube, ns)
    await line.start()
    try:
        services.start_all(trainers)
        burst.progress(f"replicas: {replicas} trainer(s), {n} Models, each reconcile {delay_s}s slower")
        started = time.time()
        await burst.create_models(kube, manifests, 32)
        await line.wait(names, burst.timeout_for(n) + n * delay_s, alive, f"{replicas} trainer(s)", burst.progress)
        # The watch may have missed a Job created and deleted between two events: the list settles it.
        for job in (await kube.list(JOB, ns)).items:
            model = timeline.owner_model(job)
            if model is not None:
                line.job_uids.setdefault(model, set()).add(str(job["metadata"]["uid"]))
    finally:
        services.stop_all(trainers)
        await line.stop()
    return burst.run_figures(line, names, started)


async def run(stack: stack_mod.Stack, n: int, delay_s: float, log_dir: Path, *, workers: int = 8) -> dict[str, Any]:
    base = [services.Service(stack, name, log_dir, label=f"{name}-replicas") for name in ("watcher", "status-writer")]
    kube = await client.connect(str(stack.kubeconfig), qps_connections=32)
    try:
        services.start_all(base)
        one = await _one_run(stack, kube, replicas=1, n=n, delay_s=delay_s, workers=workers, log_dir=log_dir, base=base)
        three = await _one_run(
            stack, kube, replicas=3, n=n, delay_s=delay_s, workers=workers, log_dir=log_dir, base=base
        )
    finally:
        services.stop_all(base)
        await kube.close()
    return figures.replicas(one, three, delay_s)
