"""kube-proxy runs on the real node: a ClusterIP Service answers a request from another Pod."""

from __future__ import annotations

from substratus_local.stack import Stack
from substratus_local.testing import create_pod, eventually, pod_field, wait_pod_phase


def test_cluster_ip_answers(real_node_stack: Stack, node_namespace: str, busybox_image: str) -> None:
    s, ns = real_node_stack, node_namespace
    serve = "mkdir -p /tmp/www && echo served by $(uname -n) > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"
    create_pod(s, ns, "web", busybox_image, ["/bin/sh", "-c", serve], labels={"app": "web"})
    s.kubectl("create", "service", "clusterip", "web", "-n", ns, "--tcp=80:8080")
    wait_pod_phase(s, ns, "web", {"Running"})
    ip = s.kubectl("get", "service", "web", "-n", ns, "-o", "jsonpath={.spec.clusterIP}").stdout
    assert ip.startswith("10.96.")
    # The client retries until the endpoint is programmed (kube-proxy syncs after the Pod is ready).
    fetch = f"for i in $(seq 1 100); do wget -q -O - http://{ip}/ && exit 0; sleep 0.2; done; exit 1"
    create_pod(s, ns, "client", busybox_image, ["/bin/sh", "-c", fetch], pod_spec={"restartPolicy": "Never"})
    assert wait_pod_phase(s, ns, "client", {"Succeeded", "Failed"}) == "Succeeded"
    assert eventually(lambda: s.kubectl("logs", "client", "-n", ns).stdout, 30) == "served by web\n"
    assert pod_field(s, ns, "client", "{.status.podIP}") != pod_field(s, ns, "web", "{.status.podIP}")
