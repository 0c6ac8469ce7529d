"""Check 24, the RBAC half (docs/reliability.md): the trainer runs under the chart's ServiceAccount
with one verb taken away (``create`` on Jobs, which the trainer's first write of a Job is). The Model does not
retry in silence or end in ``ReconcileFailed``: its ``Complete`` condition says ``Forbidden`` and
names the verb, the resource and the account, at the first attempt; given the verb back and the
Model touched, it runs. kwok simulates the Job's Pod."""

from __future__ import annotations

import json
from typing import Any

import yaml

from substratus_local.stack import Stack
from substratus_local.testing import eventually

from .helm_platform import ChartServices, chart_services_fixture  # noqa: F401  (the fixture)

MODEL = {
    "apiVersion": "substratus.ai/v1",
    "kind": "Model",
    "metadata": {"name": "denied"},
    "spec": {"image": "substratusai/model-loader-huggingface", "params": {"name": "org/denied"}},
}


def _trainer_role(stack: Stack, namespace: str) -> dict[str, Any]:
    roles = json.loads(
        stack.kubectl("get", "clusterrole", "-l", f"app.kubernetes.io/instance={namespace}", "-o", "json").stdout
    )["items"]
    role: dict[str, Any] = next(r for r in roles if r["metadata"]["name"].endswith("substratus-trainer"))
    return role


def _condition(stack: Stack, namespace: str) -> dict[str, Any]:
    model = json.loads(stack.kubectl("get", "model", "denied", "-n", namespace, "-o", "json").stdout)
    found: dict[str, Any] = next(
        (c for c in (model.get("status") or {}).get("conditions") or [] if c["type"] == "Complete"), {}
    )
    return found


def test_a_missing_verb_is_a_forbidden_condition_naming_verb_and_resource(
    stack: Stack, namespace: str, chart_services: ChartServices
) -> None:
    role = _trainer_role(stack, namespace)
    full = json.loads(json.dumps(role["rules"]))
    for rule in role["rules"]:
        if "jobs" in rule.get("resources", []):
            rule["verbs"] = [v for v in rule["verbs"] if v != "create"]
    role["metadata"] = {k: role["metadata"][k] for k in ("name", "labels")}
    stack.kubectl("apply", "-f", "-", input=yaml.safe_dump(role))

    chart_services.start("watcher")
    chart_services.start("status-writer")
    trainer = chart_services.start("trainer")
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(MODEL))

    def forbidden() -> dict[str, Any]:
        condition = _condition(stack, namespace)
        assert condition.get("reason") == "Forbidden", condition
        return condition

    condition = eventually(forbidden, 90, "Complete=False, Forbidden")
    assert condition["status"] == "False"
    assert 'cannot create resource "jobs" in API group "batch"' in condition["message"], condition["message"]
    assert f"{namespace}-substratus-trainer" in condition["message"], "the account is named"
    assert "attempts" not in condition["message"], "given up at the first attempt, not after retries"
    assert trainer.ready()

    role["rules"] = full
    stack.kubectl("apply", "-f", "-", input=yaml.safe_dump(role))
    # A Forbidden is not retried by itself: a change of the resource runs it again.
    stack.kubectl("annotate", "model", "denied", "-n", namespace, "substratus.ai/retry=1")

    def complete() -> bool:
        condition = _condition(stack, namespace)
        assert condition.get("reason") == "JobComplete", condition
        return True

    eventually(complete, 120, "the Model running once the verb is back")
