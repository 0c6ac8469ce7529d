"""The hardening of workload pod templates where ``restricted`` is enforced (pure)."""

from __future__ import annotations

from typing import Any

from substratus_common.workloads import pod_security


def _job(**container: Any) -> dict[str, Any]:
    spec = {
        "initContainers": [{"name": "download", "image": "storage"}],
        "containers": [{"name": "modeller", "image": "i", **container}],
        "securityContext": {"fsGroup": 100},
    }
    return {"kind": "Job", "spec": {"template": {"spec": spec}}}


def test_every_container_is_hardened_and_the_pod_keeps_its_own_settings() -> None:
    job = _job(securityContext={"privileged": True, "readOnlyRootFilesystem": True})
    hardened = pod_security.restricted(job)
    spec = hardened["spec"]["template"]["spec"]
    assert spec["securityContext"] == {
        "fsGroup": 100,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for container in [*spec["initContainers"], *spec["containers"]]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert "privileged" not in context
    assert spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    original = job["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert original == {"privileged": True, "readOnlyRootFilesystem": True}, "the input is not changed"


def test_objects_without_a_pod_template_are_left_alone() -> None:
    config_map = {"kind": "ConfigMap", "data": {"a": "1"}}
    assert pod_security.restricted(config_map) is config_map


def test_the_level_is_read_from_the_namespace_label() -> None:
    labelled = {"metadata": {"labels": {pod_security.ENFORCE_LABEL: "restricted"}}}
    assert pod_security.level(labelled) == "restricted"
    assert pod_security.level({"metadata": {}}) is None
    assert pod_security.level(None) is None
