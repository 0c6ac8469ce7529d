"""A hardened Pod (non-root, every capability dropped, RuntimeDefault seccomp, no privilege
escalation, read-only root) runs on the real node, and the kernel really applies each setting."""

from __future__ import annotations

from substratus_local.stack import Stack
from substratus_local.testing import create_pod, eventually, wait_pod_phase


def test_hardened_pod_runs_confined(real_node_stack: Stack, node_namespace: str, busybox_image: str) -> None:
    s, ns = real_node_stack, node_namespace
    report = "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; touch /x 2>/dev/null || echo read-only"
    create_pod(
        s,
        ns,
        "hardened",
        busybox_image,
        ["/bin/sh", "-c", report],
        pod_spec={
            "restartPolicy": "Never",
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65534,
                "runAsGroup": 65534,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        },
        container={
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }
        },
    )
    assert wait_pod_phase(s, ns, "hardened", {"Succeeded", "Failed"}) == "Succeeded"
    lines = eventually(lambda: s.kubectl("logs", "hardened", "-n", ns).stdout, 30).split("\n")
    assert lines[0] == "65534"
    status = dict(line.split(":\t") for line in lines[1:4])
    assert status == {"CapEff": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2"}  # 2: filter mode
    assert lines[4] == "read-only"
