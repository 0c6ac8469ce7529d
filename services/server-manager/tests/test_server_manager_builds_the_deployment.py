"""The ConfigMap, Deployment and Service the server-manager builds for a Server (pure functions)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from substratus_common import config
from substratus_common.api import artifacts, labels, resources
from substratus_common.api.resources import Server
from substratus_common.workloads import gpus
from substratus_server_manager import deployments

TABLE = gpus.GPUTable.load()
SETTINGS = config.Settings.model_validate({"service": "server-manager", "cloud": "local", "bucket_url": "s3://bkt"})
SPEC: dict[str, Any] = {
    "image": "substratusai/model-server-basaran",
    "model": {"name": "opt"},
    "params": {"max_tokens": 64, "name": "opt"},
    "env": {"TOKEN": "${{ secrets.hf.token }}", "LOG_LEVEL": "debug"},
    "resources": {"cpu": 2, "memory": 8, "gpu": {"type": "nvidia-l4", "count": 1}},
}


def _obj(spec: dict[str, Any] = SPEC, generation: int = 2, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "substratus.ai/v1",
        "kind": "Server",
        "metadata": {"name": "opt", "namespace": "ns", "uid": "u-1", "generation": generation, **meta},
        "spec": spec,
    }


def _build(obj: dict[str, Any], spec_hash: str = "hash1", settings: config.Settings = SETTINGS) -> deployments.Workload:
    server = resources.parse(obj)
    assert isinstance(server, Server)
    return deployments.build(obj, server, settings, TABLE, spec_hash)


def test_the_deployment_serves_on_8080_with_probes_and_the_model_read_only() -> None:
    w = _build(_obj())
    d = w.deployment
    assert d["metadata"]["name"] == "opt-server"
    assert d["metadata"]["ownerReferences"][0] == {
        "apiVersion": "substratus.ai/v1",
        "kind": "Server",
        "name": "opt",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert d["metadata"]["annotations"]["substratus.ai/spec-hash"] == "hash1"
    assert labels.owner_of(d["metadata"]["labels"]) == ("servers", "opt")
    assert d["spec"]["selector"]["matchLabels"] == d["spec"]["template"]["metadata"]["labels"]
    assert "replicas" not in d["spec"]  # kubectl scale and autoscalers own it (docs/adr/060)
    pod = d["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    assert main["image"] == "substratusai/model-server-basaran"
    assert main["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert main["readinessProbe"]["httpGet"] == {"path": "/", "port": "http"}
    startup = main["startupProbe"]
    assert startup["httpGet"] == {"path": "/", "port": "http"}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800  # time for a large model to load
    assert [e["name"] for e in main["env"]] == ["LOG_LEVEL", "PARAM_MAX_TOKENS", "PARAM_NAME", "TOKEN"]
    assert main["env"][3]["valueFrom"] == {"secretKeyRef": {"name": "hf", "key": "token"}}
    mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
    assert mounts["/content/model"]["readOnly"] is True
    assert mounts["/content/params.json"]["subPath"] == "params.json"
    assert "/content/artifacts" not in mounts
    # Portable storage on the local cloud: the Model's artifacts are downloaded before the server starts.
    (download,) = pod["initContainers"]
    model_url = artifacts.artifacts_url("s3://bkt", SETTINGS.cluster_name, "ns", "models", "opt")
    assert download["args"] == ["download", model_url, "/content/model"]
    assert "terminationGracePeriodSeconds" not in pod  # nothing to upload
    assert pod["serviceAccountName"] == "substratus-server"
    assert main["resources"] == {
        "requests": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"},
        "limits": {"nvidia.com/gpu": "1"},
    }
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_the_service_and_configmap() -> None:
    w = _build(_obj())
    svc = w.service
    assert svc["metadata"]["name"] == "opt-server"
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    assert svc["spec"]["selector"] == w.deployment["spec"]["template"]["metadata"]["labels"]
    assert svc["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    cm = w.configmap
    assert cm["metadata"]["name"] == "opt-server-params"
    assert json.loads(cm["data"]["params.json"]) == {"max_tokens": 64, "name": "opt"}
    assert w.service_account["metadata"]["name"] == "substratus-server"
    assert "ownerReferences" not in w.service_account["metadata"]


def test_the_pod_template_depends_on_the_spec_only() -> None:
    """A new generation or hash with the same spec (e.g. after a build) must not roll the Pods."""
    first = _build(_obj(generation=2), "hash1").deployment["spec"]["template"]
    again = _build(_obj(generation=7, resourceVersion="99"), "hash2").deployment["spec"]["template"]
    assert first == again
    edited = _build(_obj({**SPEC, "env": {**SPEC["env"], "LOG_LEVEL": "info"}})).deployment["spec"]["template"]
    assert edited != first


def test_gke_and_eks_mount_the_model_with_their_drivers() -> None:
    gke = config.Settings.model_validate({"service": "s", "cloud": "gcp", "bucket_url": "gs://bkt"})
    pod = _build(_obj(), settings=gke).deployment["spec"]["template"]
    assert pod["metadata"]["annotations"]["gke-gcsfuse/volumes"] == "true"
    model = next(v for v in pod["spec"]["volumes"] if v["name"] == "model")
    assert model["csi"]["readOnly"] is True
    assert pod["spec"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}

    eks = config.Settings.model_validate({"service": "s", "cloud": "aws", "bucket_url": "s3://bkt"})
    w = _build(_obj(), settings=eks)
    (claim,) = w.claims
    assert claim["metadata"]["name"] == "opt-server-model"
    assert claim["spec"]["accessModes"] == ["ReadOnlyMany"]
    (pv,) = w.volumes_to_bind
    assert "read-only" in pv["spec"]["mountOptions"]


def test_no_gpu_no_placement_and_a_command() -> None:
    spec = {"image": "srv", "model": {"name": "opt"}, "command": ["python", "serve.py"]}
    main = _build(_obj(spec)).deployment["spec"]["template"]["spec"]
    assert "nodeSelector" not in main
    assert "tolerations" not in main
    assert main["containers"][0]["command"] == ["python", "serve.py"]
    assert "resources" not in main["containers"][0]


def test_an_unknown_gpu_type_is_refused_with_the_known_ones() -> None:
    spec = {**SPEC, "resources": {"gpu": {"type": "tpu-v5", "count": 1}}}
    with pytest.raises(gpus.UnknownGPUType, match="nvidia-l4"):
        _build(_obj(spec))
