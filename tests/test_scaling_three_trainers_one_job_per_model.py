"""Three trainer replicas share one durable consumer: 200 Models get exactly one Job each.

The services run as they do from the chart: each under its own ServiceAccount and NATS user
(tests/helm_platform.py), so the run also shows that the least-privilege tables are enough for the
watcher, the status-writer and the trainer. The namespace enforces the `baseline` Pod Security
Standard, which the workload Pods pass.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from substratus_local.stack import Stack
from substratus_local.testing import eventually

from .helm_platform import ChartServices, chart_services_fixture, forbidden_in  # noqa: F401  (the fixture)

MODELS = 200
TRAINERS = 3


def _models(n: int) -> str:
    items = [
        {
            "apiVersion": "substratus.ai/v1",
            "kind": "Model",
            "metadata": {"name": f"m-{i:03d}"},
            "spec": {"image": "substratusai/model-loader-huggingface", "params": {"name": f"org/model-{i}"}},
        }
        for i in range(n)
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


@pytest.mark.timeout(600)
def test_three_trainers_on_two_hundred_models_create_exactly_one_job_each(
    stack: Stack, namespace: str, chart_services: ChartServices
) -> None:
    stack.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=baseline")
    chart_services.start("watcher")
    chart_services.start("status-writer")
    trainers = [chart_services.start("trainer") for _ in range(TRAINERS)]

    stack.kubectl("apply", "-n", namespace, "-f", "-", input=_models(MODELS))

    def all_ready() -> bool:
        chart_services.check()
        models = json.loads(stack.kubectl("get", "models", "-n", namespace, "-o", "json").stdout)["items"]
        ready = sum(1 for m in models if (m.get("status") or {}).get("ready") is True)
        assert ready == MODELS, f"{ready}/{MODELS} Models ready"
        return True

    eventually(all_ready, 420, f"{MODELS} Models ready")

    jobs = json.loads(stack.kubectl("get", "jobs", "-n", namespace, "-o", "json").stdout)["items"]
    per_model = Counter(j["metadata"]["labels"]["substratus.ai/name"] for j in jobs)
    assert len(per_model) == MODELS
    assert set(per_model.values()) == {1}
    # No Job was replaced: each is the first run of its Model's first generation.
    assert all(j["metadata"]["annotations"]["substratus.ai/generation"] == "1" for j in jobs)

    # The replicas shared the work through the one durable consumer.
    created = [p.logs().count('"Job created"') for p in trainers]
    assert sum(1 for c in created if c > 0) >= 2, f"Jobs created per trainer: {created}"
    for proc in chart_services.processes:
        assert proc.ready(), proc.service
        refused = forbidden_in(proc.logs(), namespace)
        assert not refused, f"{proc.service}: {refused[:3]}"
    assert not chart_services.nats.violations()
