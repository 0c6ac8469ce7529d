"""All seven services run under the chart's identities (ServiceAccount token, NATS user) and do
their work: a Model becomes ready, a Server of it serves, a Notebook of it gets its Pod and token
Secret, in a namespace enforcing the `baseline` Pod Security Standard, with no Forbidden answer
from the API server and no NATS permission violation."""

from __future__ import annotations

import json

import pytest

from substratus_local.stack import SERVICES, Stack
from substratus_local.testing import eventually

from .helm_platform import ChartServices, chart_services_fixture, forbidden_in  # noqa: F401  (the fixture)

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
        "spec": {"image": "substratusai/base:latest", "model": {"name": "opt"}},
    },
]


@pytest.mark.timeout(420)
def test_every_service_does_its_work_under_its_own_account_and_nats_user(
    stack: Stack, namespace: str, chart_services: ChartServices
) -> None:
    # Workload Pods (the Model's Job, the Server's Deployment, the Notebook's Pod) pass `baseline`.
    stack.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=baseline")
    for service in SERVICES:
        chart_services.start(service)
    stack.kubectl(
        "apply", "-n", namespace, "-f", "-", input=json.dumps({"kind": "List", "apiVersion": "v1", "items": MANIFESTS})
    )

    def get(kind: str, name: str) -> dict[str, object]:
        result = stack.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
        found: dict[str, object] = json.loads(result.stdout) if result.returncode == 0 else {}
        return found

    def ready(kind: str) -> bool:
        chart_services.check()
        status = get(kind, "opt").get("status") or {}
        assert isinstance(status, dict)
        assert status.get("ready") is True, f"{kind}: {status.get('conditions')}"
        return True

    eventually(lambda: ready("model"), 180, "Model ready")
    eventually(lambda: ready("server"), 180, "Server ready")

    def notebook_children() -> bool:
        chart_services.check()
        assert get("pod", "opt-notebook"), "no Notebook Pod"
        secrets = stack.kubectl("get", "secrets", "-n", namespace, "-o", "name").stdout
        assert "opt-notebook" in secrets, secrets
        return True

    eventually(notebook_children, 180, "the Notebook's Pod and token Secret")

    for proc in chart_services.processes:
        assert proc.ready(), proc.service
        logs = proc.logs()
        refused = forbidden_in(logs, namespace)
        assert not refused, f"{proc.service}: {refused[:3]}"
    assert not chart_services.nats.violations()
