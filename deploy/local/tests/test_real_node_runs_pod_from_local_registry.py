"""A Pod whose image comes from the local registry really runs on the real node: its output is in
``kubectl logs`` and ``kubectl exec`` runs in it; a Pod of another image stays on kwok."""

from __future__ import annotations

from substratus_local import node_config
from substratus_local.stack import Stack
from substratus_local.testing import create_pod, eventually, pod_field, wait_pod_phase


def test_pod_of_a_local_image_runs_for_real(real_node_stack: Stack, node_namespace: str, busybox_image: str) -> None:
    s, ns = real_node_stack, node_namespace
    create_pod(s, ns, "hello", busybox_image, ["/bin/sh", "-c", "echo hello from $(uname -n); exec sleep 3600"])
    wait_pod_phase(s, ns, "hello", {"Running"})
    assert pod_field(s, ns, "hello", "{.spec.nodeName}") == node_config.NODE_NAME
    logs = eventually(lambda: s.kubectl("logs", "hello", "-n", ns).stdout, 30, "logs of hello")
    assert logs.strip() == "hello from hello"
    # exec in the container, with stdin: a file written there is read back.
    s.kubectl("exec", "-i", "hello", "-n", ns, "--", "sh", "-c", "cat > /tmp/x", input="through stdin\n")
    assert s.kubectl("exec", "hello", "-n", ns, "--", "cat", "/tmp/x").stdout == "through stdin\n"


def test_pod_of_another_image_stays_on_kwok(real_node_stack: Stack, node_namespace: str) -> None:
    s, ns = real_node_stack, node_namespace
    create_pod(s, ns, "elsewhere", "ghcr.io/example/app:1", ["app"])
    wait_pod_phase(s, ns, "elsewhere", {"Running"})
    assert pod_field(s, ns, "elsewhere", "{.spec.nodeName}") != node_config.NODE_NAME
    assert node_config.NODE_TAINT["key"] not in pod_field(s, ns, "elsewhere", "{.spec.tolerations}")
