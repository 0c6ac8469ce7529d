"""The Helm chart, rendered with default values, installs on the local API server: every Deployment
becomes available in a namespace that enforces the `restricted` Pod Security Standard."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import yaml

from substratus_local import binaries
from substratus_local.stack import REPO_ROOT, SERVICES, Stack
from substratus_local.testing import eventually

CHART = REPO_ROOT / "deploy" / "helm" / "substratus"


def helm_template(release: str, namespace: str, *args: str) -> str:
    helm = binaries.ensure(["helm"])["helm"]
    result = subprocess.run(
        [str(helm), "template", release, str(CHART), "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return result.stdout


def test_the_chart_ships_the_generated_crds() -> None:
    generated = {p.name: p.read_text() for p in sorted((REPO_ROOT / "deploy" / "crds").glob("*.yaml"))}
    shipped = {p.name: p.read_text() for p in sorted((CHART / "crds").glob("*.yaml"))}
    assert generated, "deploy/crds is empty"
    assert shipped == generated, (
        "deploy/helm/substratus/crds differs from deploy/crds: run `make crds` and copy deploy/crds/*.yaml there"
    )


def test_default_values_install_in_a_restricted_namespace(stack: Stack, namespace: str) -> None:
    stack.kubectl(
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    )
    release = namespace  # unique per test, so the cluster-scoped RBAC objects do not collide
    manifests = helm_template(release, namespace, "--include-crds")
    docs: list[dict[str, Any]] = [d for d in yaml.safe_load_all(manifests) if d]
    deployments = sorted(d["metadata"]["name"] for d in docs if d["kind"] == "Deployment")
    assert deployments == sorted(f"{release}-substratus-{s}" for s in SERVICES)
    try:
        applied = stack.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=helm-test",
            "-n",
            namespace,
            "-f",
            "-",
            input=manifests,
        )
        assert "PodSecurity" not in applied.stderr, applied.stderr

        def available() -> bool:
            out = json.loads(stack.kubectl("get", "deployments", "-n", namespace, "-o", "json").stdout)
            state = {
                d["metadata"]["name"]: {c["type"]: c["status"] for c in d.get("status", {}).get("conditions", [])}
                for d in out["items"]
            }
            waiting = [name for name in deployments if state.get(name, {}).get("Available") != "True"]
            assert not waiting, f"not available: {waiting}; {_pod_problems(stack, namespace)}"
            return True

        eventually(available, 120, "every Deployment of the chart available")

        # The bundled NATS server's Pod is admitted too (it waits for its volume, not for admission).
        eventually(
            lambda: (
                stack.kubectl("get", "pod", f"{release}-substratus-nats-0", "-n", namespace, check=False).returncode
                == 0
            ),
            60,
            "the bundled NATS Pod admitted",
        )
        pods = json.loads(stack.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
        assert len(pods) == len(SERVICES) + 1
        for pod in pods:
            _assert_restricted(pod)
    finally:
        stack.kubectl(
            "delete", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance={release}", check=False
        )


def _assert_restricted(pod: dict[str, Any]) -> None:
    """What the chart promises beyond what the `restricted` standard enforces."""
    spec = pod["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]


def _pod_problems(stack: Stack, namespace: str) -> str:
    events = stack.kubectl(
        "get", "events", "-n", namespace, "--field-selector=type=Warning", "-o", "custom-columns=MSG:.message"
    )
    return events.stdout.strip()[-2000:]
