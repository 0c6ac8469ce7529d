"""The bare-client floor: only the writes a Model needs, by one async client, the services stopped.

Per Model, in one chain holding one of ``concurrency`` slots: create the Model, its params
ConfigMap and its Job (both owned by the Model). When the benchmark's Job watch shows a Job
complete (kwok completes Job Pods, the Job controller the Job), one merge patch of the Model's
status (``ready`` and the ``Complete`` condition), holding a slot of the same pool. Nothing is
read, nothing is retried: any error fails the benchmark. That is the least an implementation
can do, so its times are the floor the services are compared with.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

from bench import timeline
from substratus_common.kube import client
from substratus_common.kube.resources import MODEL

Object = dict[str, Any]
ROLE = "modeller"


def configmap(model: Object) -> Object:
    meta = model["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _child_meta(model, f"{meta['name']}-model-params"),
        "data": {"params.json": json.dumps((model.get("spec") or {}).get("params") or {}, sort_keys=True)},
    }


def job(model: Object) -> Object:
    meta, spec = model["metadata"], model.get("spec") or {}
    name = str(meta["name"])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _child_meta(model, f"{name}-{ROLE}"),
        "spec": {
            "backoffLimit": 2,
            "template": {
                "metadata": {"labels": {"substratus.ai/name": name}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": ROLE,
                            "image": spec["image"],
                            "volumeMounts": [
                                {"name": "params", "mountPath": "/content/params.json", "subPath": "params.json"}
                            ],
                        }
                    ],
                    "volumes": [{"name": "params", "configMap": {"name": f"{name}-model-params"}}],
                },
            },
        },
    }


def ready_patch(model_generation: int, job_name: str, now: dt.datetime) -> Object:
    condition = {
        "type": "Complete",
        "status": "True",
        "reason": "JobComplete",
        "message": f"Job {job_name} completed",
        "lastTransitionTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "observedGeneration": model_generation,
    }
    return {"status": {"ready": True, "observedGeneration": model_generation, "conditions": [condition]}}


def _child_meta(model: Object, name: str) -> Object:
    meta = model["metadata"]
    return {
        "name": name,
        "namespace": meta["namespace"],
        "labels": {"substratus.ai/name": meta["name"], "substratus.ai/role": ROLE},
        "ownerReferences": [
            {
                "apiVersion": MODEL.api_version,
                "kind": MODEL.kind,
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }


class Floor:
    """The bare client. :meth:`on_job` is the Job watch's callback; :meth:`create_all` the burst."""

    def __init__(self, kube: client.Kube, concurrency: int) -> None:
        self.kube = kube
        self.gate = asyncio.Semaphore(concurrency)
        self.generations: dict[str, int] = {}
        self._patched: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.errors: list[BaseException] = []

    async def _chain(self, manifest: Object) -> None:
        async with self.gate:
            created = await self.kube.create(manifest)
            self.generations[created["metadata"]["name"]] = int(created["metadata"].get("generation") or 1)
            await self.kube.create(configmap(created))
            await self.kube.create(job(created))

    async def create_all(self, manifests: list[Object]) -> None:
        await asyncio.gather(*(self._chain(m) for m in manifests))

    def on_job(self, obj: Object) -> None:
        model = timeline.owner_model(obj)
        if model is None or model in self._patched or not timeline.job_complete(obj):
            return
        self._patched.add(model)
        task = asyncio.create_task(self._patch(obj["metadata"]["namespace"], model, obj["metadata"]["name"]))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(task.exception())  # type: ignore[arg-type]

    async def _patch(self, namespace: str, model: str, job_name: str) -> None:
        async with self.gate:
            patch = ready_patch(self.generations.get(model, 1), job_name, dt.datetime.now(dt.UTC))
            await self.kube.patch(MODEL, namespace, model, patch, subresource="status")

    def check(self) -> None:
        if self.errors:
            raise RuntimeError(f"the bare client failed: {self.errors[0]!r}")
