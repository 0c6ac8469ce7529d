"""Check 19 (docs/reliability.md): the API server throttles the trainer. A FlowSchema sends every
request of the trainer's ServiceAccount to a priority level of its own with the least concurrency
API Priority and Fairness allows and no queue, so a burst is answered with 429 and
``Retry-After``. A user finds every Model ready with one Job each and no ``ReconcileFailed``; the
trainer waits at least what ``Retry-After`` says before each retry (no hot loop). kwok simulates
the Jobs' Pods."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from substratus_local import testing_burst as burst
from substratus_local.stack import Stack
from substratus_local.testing import eventually

from .helm_platform import ChartServices, chart_services_fixture  # noqa: F401  (the fixture)

COUNT = 40


def _throttle(namespace: str, account: str) -> str:
    level = f"{namespace}-tiny"
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "PriorityLevelConfiguration",
            "metadata": {"name": level},
            "spec": {
                "type": "Limited",
                "limited": {
                    "nominalConcurrencyShares": 1,
                    "lendablePercent": 0,
                    "borrowingLimitPercent": 0,
                    "limitResponse": {"type": "Reject"},
                },
            },
        },
        {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "FlowSchema",
            "metadata": {"name": f"{namespace}-trainer"},
            "spec": {
                "priorityLevelConfiguration": {"name": level},
                "matchingPrecedence": 50,
                "distinguisherMethod": {"type": "ByUser"},
                "rules": [
                    {
                        "subjects": [
                            {"kind": "ServiceAccount", "serviceAccount": {"name": account, "namespace": namespace}}
                        ],
                        "resourceRules": [
                            {
                                "verbs": ["*"],
                                "apiGroups": ["*"],
                                "resources": ["*"],
                                "namespaces": ["*"],
                                "clusterScope": True,
                            }
                        ],
                    }
                ],
            },
        },
    ]
    return yaml.safe_dump_all(docs)


def _rejected(stack: Stack, level: str) -> float:
    metrics = stack.kubectl("get", "--raw", "/metrics").stdout
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("apiserver_flowcontrol_rejected_requests_total{") and f'priority_level="{level}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.timeout(600)
def test_a_throttled_trainer_honours_retry_after_and_every_model_gets_ready(
    stack: Stack, namespace: str, chart_services: ChartServices
) -> None:
    account = f"{namespace}-substratus-trainer"
    stack.kubectl("apply", "-f", "-", input=_throttle(namespace, account))
    try:
        chart_services.start("watcher")
        chart_services.start("status-writer")
        trainer = chart_services.start("trainer", env={"SUBSTRATUS_MAX_DELIVERIES": "3"})
        names = [f"t-{i:02d}" for i in range(COUNT)]
        stack.kubectl("apply", "-n", namespace, "-f", "-", input=burst.models(names))
        models_converged = burst.converged(stack, namespace, names, burst.Jobs(stack, namespace))

        def converged() -> bool:
            chart_services.check()
            return models_converged()

        eventually(converged, 420, f"{COUNT} Models ready under a throttled trainer")
        rejected = _rejected(stack, f"{namespace}-tiny")
        assert rejected > 0, "the API server never throttled the trainer: the check did not happen"
        throttled = [line for line in trainer.logs().splitlines() if '"will retry"' in line and "429" in line]
        assert throttled, "no retry after a 429 in the trainer's log"
        delays = [float(m.group(1)) for m in (re.search(r'"delay_s": ([0-9.]+)', line) for line in throttled) if m]
        assert delays, "the retries' delays are logged"
        assert min(delays) >= 1.0, f"a retry sooner than Retry-After: {sorted(delays)[:5]}"
        assert rejected <= 10 * COUNT, f"{rejected:.0f} rejected requests for {COUNT} Models: a hot loop"
        print(f"\n{rejected:.0f} requests throttled (429), {len(throttled)} passes retried, least wait {min(delays)} s")
    finally:
        stack.kubectl("delete", "flowschema", f"{namespace}-trainer", "--ignore-not-found", check=False)
        stack.kubectl("delete", "prioritylevelconfiguration", f"{namespace}-tiny", "--ignore-not-found", check=False)
