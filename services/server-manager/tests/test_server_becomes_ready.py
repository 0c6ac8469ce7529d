"""A Server whose Model is ready gets its params ConfigMap, Deployment and Service (ClusterIP, 8080
named http), and becomes ready with ``Serving=True/DeploymentReady``."""

from __future__ import annotations

import json
from collections.abc import Callable

from .server_platform import MODEL, SERVER, Platform, platform_fixture  # noqa: F401  (the fixture)

SERVER_WITH_PARAMS = SERVER.replace("env: {LOG_LEVEL: info}", "env: {LOG_LEVEL: info}\n  params: {max_tokens: 64}")


def test_a_server_of_a_ready_model_becomes_ready(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(MODEL)
    p.wait_ready("model", "opt")
    p.apply(SERVER_WITH_PARAMS)
    server = p.wait_ready("server", "opt")

    serving = p.condition("server", "opt")
    assert (serving["status"], serving["reason"]) == ("True", "DeploymentReady")
    assert serving["observedGeneration"] == server["metadata"]["generation"]
    assert "opt-server" in serving["message"]

    deployment = p.get("deployment", "opt-server")
    assert deployment is not None
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == server["metadata"]["uid"]
    assert deployment["spec"]["replicas"] == 1  # the API server's default: nobody sent it
    assert "f:replicas" not in p.field_owners("deployment", "opt-server")["substratus-server-manager"]
    (main,) = deployment["spec"]["template"]["spec"]["containers"]
    assert main["ports"][0]["containerPort"] == 8080
    assert main["readinessProbe"]["httpGet"]["path"] == "/"
    assert {m["mountPath"]: m.get("readOnly") for m in main["volumeMounts"]}["/content/model"] is True

    service = p.get("service", "opt-server")
    assert service is not None
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"][0] | {"name": "http", "port": 8080} == service["spec"]["ports"][0]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    (pod,) = p.items("pods", "substratus.ai/kind=servers,substratus.ai/name=opt")
    assert all(pod["metadata"]["labels"][k] == v for k, v in service["spec"]["selector"].items())

    cm = p.get("configmap", "opt-server-params")
    assert cm is not None
    assert json.loads(cm["data"]["params.json"]) == {"max_tokens": 64}
    assert p.applies == 1
