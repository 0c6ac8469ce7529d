"""A Pod whose image comes from the local registry (by its address or the fixed alias of ADR 028)
really runs on the real node: its output is in ``kubectl logs`` and ``kubectl exec`` runs in it;
a Pod of another image stays on kwok."""

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
    # exec runs in the container: a file it writes there is read back by another exec.
    s.kubectl("exec", "hello", "-n", ns, "--", "sh", "-c", "echo written by exec > /tmp/x")
    assert s.kubectl("exec", "hello", "-n", ns, "--", "cat", "/tmp/x").stdout == "written by exec\n"


def test_the_registry_alias_pulls_from_the_stack_registry(
    real_node_stack: Stack, node_namespace: str, busybox_image: str
) -> None:
    s, ns = real_node_stack, node_namespace
    aliased = busybox_image.replace(s.registry, node_config.REGISTRY_ALIAS)  # ADR 028
    create_pod(s, ns, "aliased", aliased, ["/bin/sh", "-c", "echo pulled"], pod_spec={"restartPolicy": "Never"})
    assert wait_pod_phase(s, ns, "aliased", {"Succeeded", "Failed"}) == "Succeeded"
    assert pod_field(s, ns, "aliased", "{.spec.nodeName}") == node_config.NODE_NAME
    assert s.kubectl("logs", "aliased", "-n", ns).stdout == "pulled\n"


def test_pod_of_another_image_stays_on_kwok(real_node_stack: Stack, node_namespace: str) -> None:
    s, ns = real_node_stack, node_namespace
    create_pod(s, ns, "elsewhere", "ghcr.io/example/app:1", ["app"])
    wait_pod_phase(s, ns, "elsewhere", {"Running"})
    assert pod_field(s, ns, "elsewhere", "{.spec.nodeName}") != node_config.NODE_NAME
    assert node_config.NODE_TAINT["key"] not in pod_field(s, ns, "elsewhere", "{.spec.tolerations}")
