"""What the fault tests check after a burst of Models, as a user would with kubectl.

- :func:`models`: a ``kubectl apply``-able List of plain imports (``spec.image`` set), and
  :class:`Applying` to apply it in the background;
- :class:`Jobs`: the first uid seen of every Job, so a Job re-created at any point fails the test;
- :func:`converged`: every Model ready, none ``ReconcileFailed``, exactly one Job per Model and
  owned by it;
- :func:`metric`: a counter or gauge of a service run by ``run_service``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from substratus_local import stack as stack_mod
from substratus_local.testing import ServiceProcess

Object = dict[str, Any]

IMAGE = "substratusai/model-loader-huggingface"


def models(names: Iterable[str], image: str = IMAGE) -> str:
    """A List of Models named ``names``, each a plain import of ``org/<name>``."""
    items = [
        {
            "apiVersion": "substratus.ai/v1",
            "kind": "Model",
            "metadata": {"name": name},
            "spec": {"image": image, "params": {"name": f"org/{name}"}},
        }
        for name in names
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


class Applying:
    """``kubectl apply --server-side`` of a manifest in a thread, so a test can act mid-burst."""

    def __init__(self, stack: stack_mod.Stack, namespace: str, manifest: str) -> None:
        args = ("apply", "--server-side", "-n", namespace, "-f", "-")
        self._thread = threading.Thread(target=stack.kubectl, args=args, kwargs={"input": manifest})
        self._thread.start()

    def finish(self, timeout_s: float = 300) -> None:
        self._thread.join(timeout=timeout_s)
        assert not self._thread.is_alive(), f"kubectl apply of the burst did not finish within {timeout_s:.0f}s"


def items(stack: stack_mod.Stack, namespace: str, kind: str) -> list[Object]:
    found: list[Object] = json.loads(stack.kubectl("get", kind, "-n", namespace, "-o", "json").stdout)["items"]
    return found


def ready(stack: stack_mod.Stack, namespace: str, kind: str, name: str) -> bool:
    got = stack.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return got.returncode == 0 and (json.loads(got.stdout).get("status") or {}).get("ready") is True


class Jobs:
    """The Jobs of a namespace, each checked against the first uid seen for its name."""

    def __init__(self, stack: stack_mod.Stack, namespace: str) -> None:
        self.stack, self.namespace = stack, namespace
        self.first_uid: dict[str, str] = {}

    def look(self) -> dict[str, list[Object]]:
        """The Jobs by the Model they are labelled with; fails on a Job that was re-created."""
        per_model: dict[str, list[Object]] = {}
        for job in items(self.stack, self.namespace, "jobs"):
            meta = job["metadata"]
            uid = self.first_uid.setdefault(meta["name"], meta["uid"])
            assert meta["uid"] == uid, f"Job {meta['name']} was re-created"
            per_model.setdefault(meta["labels"]["substratus.ai/name"], []).append(job)
        return per_model

    def seen(self) -> int:
        """Jobs seen so far (re-checking every one now)."""
        self.look()
        return len(self.first_uid)


def converged(stack: stack_mod.Stack, namespace: str, names: list[str], jobs: Jobs) -> Callable[[], bool]:
    """A check for ``eventually``: every named Model ready, none ``ReconcileFailed``, each with
    exactly one Job, owned by it, whose uid never changed."""

    def check() -> bool:
        found = {m["metadata"]["name"]: m for m in items(stack, namespace, "models")}
        for model in found.values():
            for condition in (model.get("status") or {}).get("conditions") or []:
                assert condition.get("reason") != "ReconcileFailed", f"{model['metadata']['name']}: {condition}"
        per_model = jobs.look()  # every poll: a Job re-created on the way fails at once
        done = [n for n in names if (found.get(n, {}).get("status") or {}).get("ready") is True]
        assert len(done) == len(names), f"{len(done)}/{len(names)} Models ready"
        for name in names:
            owned = per_model.get(name, [])
            assert len(owned) == 1, f"Model {name} has {len(owned)} Jobs"
            owner = owned[0]["metadata"]["ownerReferences"][0]["uid"]
            assert owner == found[name]["metadata"]["uid"], f"the Job of {name} belongs to another Model"
        return True

    return check


def metric_in(text: str, name: str, default: float | None = 0.0) -> float | None:
    """The sum of the samples of ``name`` in Prometheus text: ``name`` alone sums every label set,
    ``name{label="value"}`` one of them; ``default`` when there is none (a labelled counter has no
    sample before its first increment)."""
    samples = []
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        key, value = line.rsplit(" ", 1)
        if key == name or ("{" not in name and key.startswith(name + "{")):
            samples.append(float(value))
    return sum(samples) if samples else default


def metric(proc: ServiceProcess, name: str, *, required: bool = False) -> float:
    """:func:`metric_in` of a running service's ``/metrics``: 0 when it has no sample yet, or with
    ``required`` a failed assertion (a metric that is always exported, such as an unlabelled counter)."""
    text = httpx.get(f"http://{stack_mod.HOST}:{proc.port}/metrics", timeout=5).text
    found = metric_in(text, name, default=None)
    assert found is not None or not required, f"{proc.service} exports no {name}"
    return found or 0.0
