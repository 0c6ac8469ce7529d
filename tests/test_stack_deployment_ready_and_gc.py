"""Deployments become ready on kwok nodes, and the garbage collector removes owned objects."""

from __future__ import annotations

import json

from substratus_local.stack import Stack
from substratus_local.testing import eventually


def test_deployment_reaches_ready_replicas_and_is_collected_with_its_owner(stack: Stack, namespace: str) -> None:
    stack.kubectl("create", "configmap", "owner", "-n", namespace)
    owner_uid = stack.kubectl("get", "configmap", "owner", "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid, "controller": True}
            ],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(deployment))

    def ready_replicas() -> int:
        out = stack.kubectl("get", "deployment", "web", "-n", namespace, "-o", "jsonpath={.status.readyReplicas}")
        return int(out.stdout or 0)

    eventually(lambda: ready_replicas() == 2, 60, "2 ready replicas")

    stack.kubectl("delete", "configmap", "owner", "-n", namespace)

    def collected() -> bool:
        gone = stack.kubectl("get", "deployment", "web", "-n", namespace, check=False)
        return gone.returncode != 0 and "NotFound" in gone.stderr

    eventually(collected, 60, "deployment garbage-collected")
