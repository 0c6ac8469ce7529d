"""A Notebook becomes ready with its Pod, PVC and Secret; suspend deletes only the Pod
(``Serving=False/Suspended``); un-suspend brings it back ready on the same PVC and token."""

from __future__ import annotations

import base64
from collections.abc import Callable

from .notebook_platform import Platform, platform_fixture  # noqa: F401  (the fixture)

NOTEBOOK = """
apiVersion: substratus.ai/v1
kind: Notebook
metadata: {name: nb}
spec:
  image: quay.io/jupyter/base-notebook
  params: {greeting: hello}
  env: {LOG_LEVEL: debug}
  resources: {cpu: 1, memory: 2}
"""


def test_suspend_keeps_the_files_and_resume_brings_the_pod_back(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(NOTEBOOK)
    notebook = p.wait_serving("nb", "PodReady")
    assert notebook["status"]["ready"] is True
    assert notebook["status"]["artifacts"]["url"].endswith("/artifacts")
    uid = notebook["metadata"]["uid"]

    pod = p.must("pod", "nb-notebook")
    claim = p.must("pvc", "nb-notebook-content")
    secret = p.must("secret", "nb-notebook-token")
    for child in (pod, claim, secret, p.must("configmap", "nb-notebook-params")):
        assert child["metadata"]["ownerReferences"][0]["uid"] == uid
    assert claim["status"]["phase"] == "Bound"
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert len(token) >= 32

    (main,) = pod["spec"]["containers"]
    assert main["ports"][0]["containerPort"] == 8888
    assert main["readinessProbe"]["httpGet"]["path"] == "/api"
    assert main["workingDir"] == "/content"
    env = {e["name"]: e for e in main["env"]}
    assert env["JUPYTER_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "nb-notebook-token", "key": "token"}
    assert env["PARAM_GREETING"]["value"] == "hello"
    assert env["LOG_LEVEL"]["value"] == "debug"
    mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
    assert mounts["/content"]["name"] == "content"
    assert mounts["/content/artifacts"].get("readOnly") is not True
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["content"]["persistentVolumeClaim"]["claimName"] == "nb-notebook-content"

    p.suspend("nb", True)
    suspended = p.wait_serving("nb", "Suspended")
    assert suspended["status"]["ready"] is False
    assert p.serving("nb")["status"] == "False"
    p.wait_gone("pod", "nb-notebook")
    assert p.must("pvc", "nb-notebook-content")["metadata"]["uid"] == claim["metadata"]["uid"]
    assert p.must("secret", "nb-notebook-token")["metadata"]["uid"] == secret["metadata"]["uid"]

    p.suspend("nb", False)
    resumed = p.wait_serving("nb", "PodReady")
    assert resumed["status"]["ready"] is True
    again = p.must("pod", "nb-notebook")
    assert again["metadata"]["uid"] != pod["metadata"]["uid"]
    claim_name = {v["name"]: v for v in again["spec"]["volumes"]}["content"]["persistentVolumeClaim"]["claimName"]
    assert claim_name == "nb-notebook-content"
    assert p.must("pvc", "nb-notebook-content")["metadata"]["uid"] == claim["metadata"]["uid"]
    assert p.must("secret", "nb-notebook-token")["data"]["token"] == secret["data"]["token"]
