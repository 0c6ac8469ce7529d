"""Check 24, the Pod Security half (docs/reliability.md): in a namespace that enforces the
``restricted`` Pod Security Standard, the workloads' Pods are admitted (non-root, the
``RuntimeDefault`` seccomp profile, no privilege escalation, every capability dropped), so a
Model's Job, a Server's Deployment and a Notebook's Pod all run; a Kaniko build, which runs as
root, is refused with a condition that says why instead of a Job that never starts. The services
run under the chart's accounts. kwok simulates the Pods."""

from __future__ import annotations

import json
from typing import Any

import pytest

from substratus_local.stack import Stack
from substratus_local.testing import eventually

from .helm_platform import ChartServices, chart_services_fixture  # noqa: F401  (the fixture)

MANIFESTS = [
    {
        "apiVersion": "substratus.ai/v1",
        "kind": "Model",
        "metadata": {"name": "opt"},
        "spec": {"image": "substratusai/model-loader-huggingface", "params": {"name": "facebook/opt-125m"}},
    },
    {
        "apiVersion": "substratus.ai/v1",
        "kind": "Server",
        "metadata": {"name": "opt"},
        "spec": {"image": "substratusai/model-server-basaran", "model": {"name": "opt"}},
    },
    {
        "apiVersion": "substratus.ai/v1",
        "kind": "Notebook",
        "metadata": {"name": "opt"},
        "spec": {"image": "substratusai/notebook", "model": {"name": "opt"}},
    },
    {
        "apiVersion": "substratus.ai/v1",
        "kind": "Dataset",
        "metadata": {"name": "built"},
        "spec": {"build": {"git": {"url": "https://github.com/substratusai/images", "path": "base"}}},
    },
]


def _get(stack: Stack, namespace: str, kind: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(stack.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout)
    return found


def _condition(stack: Stack, namespace: str, kind: str, name: str, type_: str) -> dict[str, Any]:
    obj = _get(stack, namespace, kind, name)
    found: dict[str, Any] = next(
        (c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {}
    )
    return found


def _restricted(spec: dict[str, Any]) -> None:
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in [*(spec.get("initContainers") or []), *spec["containers"]]:
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, container["name"]
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}, container["name"]


@pytest.mark.timeout(600)
def test_workloads_run_where_restricted_is_enforced_and_a_kaniko_build_says_why_not(
    stack: Stack, namespace: str, chart_services: ChartServices
) -> None:
    stack.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    for service in ("watcher", "status-writer", "trainer", "server-manager", "notebook-manager", "builder"):
        chart_services.start(service)
    listed = {"apiVersion": "v1", "kind": "List", "items": MANIFESTS}
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(listed))

    def all_ready() -> bool:
        chart_services.check()
        for kind in ("model", "server", "notebook"):
            obj = _get(stack, namespace, kind, "opt")
            assert (obj.get("status") or {}).get("ready") is True, f"{kind}: {obj.get('status')}"
        return True

    eventually(all_ready, 180, "the Model, Server and Notebook ready in a restricted namespace")
    _restricted(_get(stack, namespace, "job", "opt-modeller")["spec"]["template"]["spec"])
    _restricted(_get(stack, namespace, "deployment", "opt-server")["spec"]["template"]["spec"])
    _restricted(_get(stack, namespace, "pod", "opt-notebook")["spec"])

    def refused() -> dict[str, Any]:
        condition = _condition(stack, namespace, "dataset", "built", "Built")
        assert condition.get("reason") == "Forbidden", condition
        return condition

    condition = eventually(refused, 90, "Built=False, Forbidden")
    assert condition["status"] == "False"
    assert "enforces the restricted Pod Security Standard" in condition["message"]
    assert "Kaniko build runs as root" in condition["message"]
    jobs = json.loads(stack.kubectl("get", "jobs", "-n", namespace, "-o", "json").stdout)["items"]
    assert [j["metadata"]["name"] for j in jobs] == ["opt-modeller"], "no build Job that could never start"
