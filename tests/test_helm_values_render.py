"""What the chart's options render (no cluster needed): each service's own replicas and resources,
KEDA ScaledObjects on the consumers' lag, TLS to NATS, bringing your own NATS, a ServiceMonitor,
PersistentVolume rules on EKS only, and the GPU-type table as a file."""

from __future__ import annotations

import base64
import subprocess
from typing import Any

import yaml

from substratus_local import binaries
from substratus_local.stack import REPO_ROOT, SERVICES

CHART = REPO_ROOT / "deploy" / "helm" / "substratus"


def render(*args: str) -> list[dict[str, Any]]:
    helm = binaries.ensure(["helm"])["helm"]
    result = subprocess.run(
        [str(helm), "template", "sub", str(CHART), "--namespace", "substratus", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return found


def env(deployment: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(deployment)["env"]}


def test_defaults_one_of_everything_per_service_and_the_bundled_bus() -> None:
    docs = render()
    for kind in ("Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "PodDisruptionBudget", "Service"):
        names = set(by_kind(docs, kind))
        assert {f"sub-substratus-{s}" for s in SERVICES} <= names, kind
    assert set(by_kind(docs, "StatefulSet")) == {"sub-substratus-nats"}
    assert not by_kind(docs, "ScaledObject")
    assert not by_kind(docs, "ServiceMonitor")
    secret = by_kind(docs, "Secret")["sub-substratus-nats-users"]
    assert sorted(secret["data"]) == sorted(SERVICES)
    assert all(len(base64.b64decode(v)) == 32 for v in secret["data"].values())
    trainer = by_kind(docs, "Deployment")["sub-substratus-trainer"]
    variables = env(trainer)
    # Credentials never inside the URL (an error naming it would carry them into a log).
    assert variables["NATS_URL"] == "nats://sub-substratus-nats.substratus.svc:4222"
    assert variables["NATS_USER"] == "trainer"
    assert variables["SUBSTRATUS_STREAM_MAX_BYTES"] == "1073741824"
    assert variables["NATS_PASSWORD"] == {"secretKeyRef": {"name": "sub-substratus-nats-users", "key": "trainer"}}
    assert variables["SUBSTRATUS_HEALTH_HOST"] == "0.0.0.0"
    assert container(trainer)["image"] == "ghcr.io/substratusai/substratus-trainer:0.1.0"
    # The workloads' PersistentVolumes are an EKS matter only.
    rules = by_kind(docs, "ClusterRole")["sub-substratus-trainer"]["rules"]
    assert not any("persistentvolumes" in r["resources"] for r in rules)


def test_each_service_scales_on_its_own() -> None:
    docs = render(
        "--set", "services.trainer.replicas=3",
        "--set", "services.trainer.resources.requests.cpu=2",
        "--set", "defaults.resources.limits.memory=256Mi",
    )  # fmt: skip
    deployments = by_kind(docs, "Deployment")
    assert deployments["sub-substratus-trainer"]["spec"]["replicas"] == 3
    assert deployments["sub-substratus-builder"]["spec"]["replicas"] == 1
    assert container(deployments["sub-substratus-trainer"])["resources"]["requests"]["cpu"] == 2
    assert container(deployments["sub-substratus-builder"])["resources"]["requests"]["cpu"] == "50m"
    assert container(deployments["sub-substratus-trainer"])["resources"]["limits"]["memory"] == "256Mi"
    # The shared consumer's in-flight capacity grows with the replicas (ADR 102).
    assert env(deployments["sub-substratus-trainer"])["SUBSTRATUS_REPLICAS"] == "3"
    assert env(deployments["sub-substratus-builder"])["SUBSTRATUS_REPLICAS"] == "1"


def test_keda_scales_the_consumers_on_their_lag() -> None:
    docs = render("--set", "keda.enabled=true", "--set", "keda.services={trainer,status-writer}")
    scaled = by_kind(docs, "ScaledObject")
    assert set(scaled) == {"sub-substratus-trainer", "sub-substratus-status-writer"}
    trigger = scaled["sub-substratus-trainer"]["spec"]["triggers"][0]
    assert trigger["type"] == "nats-jetstream"
    assert trigger["metadata"]["stream"] == "SUBSTRATUS_CHANGES"
    assert trigger["metadata"]["consumer"] == "trainer"
    assert trigger["metadata"]["natsServerMonitoringEndpoint"] == "sub-substratus-nats.substratus.svc:8222"
    assert scaled["sub-substratus-status-writer"]["spec"]["triggers"][0]["metadata"]["stream"] == "SUBSTRATUS_STATUS"
    deployments = by_kind(docs, "Deployment")
    assert "replicas" not in deployments["sub-substratus-trainer"]["spec"]  # KEDA owns it
    assert env(deployments["sub-substratus-trainer"])["SUBSTRATUS_REPLICAS"] == "5"  # its maxReplicaCount
    assert deployments["sub-substratus-builder"]["spec"]["replicas"] == 1


def test_tls_to_the_bundled_bus() -> None:
    docs = render("--set", "nats.tls.enabled=true", "--set", "nats.tls.secretName=nats-tls")
    conf = by_kind(docs, "ConfigMap")["sub-substratus-nats"]["data"]["nats.conf"]
    assert "tls {" in conf
    uploader = by_kind(docs, "Deployment")["sub-substratus-uploader"]
    variables = env(uploader)
    assert variables["NATS_URL"].startswith("tls://sub-substratus-nats.")
    assert variables["NATS_USER"] == "uploader"
    assert variables["SSL_CERT_FILE"] == "/etc/substratus/ca/bundle.crt"
    init = uploader["spec"]["template"]["spec"]["initContainers"][0]
    assert init["securityContext"]["readOnlyRootFilesystem"] is True


def test_bring_your_own_nats_with_its_authorization_block() -> None:
    docs = render(
        "--set", "nats.url=tls://nats.nats.svc:4222",
        "--set", "nats.auth.existingSecret=my-nats-users",
        "--set", "nats.streamReplicas=3",
    )  # fmt: skip
    assert not by_kind(docs, "StatefulSet")
    assert "sub-substratus-nats-users" not in by_kind(docs, "Secret")
    watcher = by_kind(docs, "Deployment")["sub-substratus-watcher"]
    variables = env(watcher)
    assert variables["NATS_URL"] == "tls://nats.nats.svc:4222"
    assert variables["NATS_USER"] == "watcher"
    assert variables["NATS_PASSWORD"]["secretKeyRef"]["name"] == "my-nats-users"
    assert variables["SUBSTRATUS_STREAM_REPLICAS"] == "3"
    authorization = by_kind(docs, "ConfigMap")["sub-substratus-nats-authorization"]["data"]["authorization.conf"]
    assert 'user: "trainer", password: $NATS_PASSWORD_TRAINER' in authorization
    assert '"substratus.status.*.*.*.trainer"' in authorization


def test_cloud_storage_and_gpu_types_reach_every_service() -> None:
    docs = render(
        "--set", "cloud=aws",
        "--set", "bucketURL=s3://bucket",
        "--set", "registry=123.dkr.ecr.us-west-2.amazonaws.com",
        "--set", "storage.credentialsSecret=s3-keys",
        "--set", "metrics.serviceMonitor.enabled=true",
        "--set-json", 'gpuTypes={"nvidia-rtx-6000":{"aws":{"k8s.amazonaws.com/accelerator":"rtx"}}}',
        "--set-json", 'services.uploader.serviceAccountAnnotations={"eks.amazonaws.com/role-arn":"arn:u"}',
    )  # fmt: skip
    for name, deployment in by_kind(docs, "Deployment").items():
        variables = env(deployment)
        assert variables["SUBSTRATUS_CLOUD"] == "aws", name
        assert variables["SUBSTRATUS_BUCKET_URL"] == "s3://bucket", name
        assert variables["SUBSTRATUS_GPU_TYPES_FILE"] == "/etc/substratus/gpu-types/gpu-types.yaml", name
        assert container(deployment)["envFrom"] == [{"secretRef": {"name": "s3-keys"}}], name
    table = yaml.safe_load(by_kind(docs, "ConfigMap")["sub-substratus-gpu-types"]["data"]["gpu-types.yaml"])
    assert table == {"nvidia-rtx-6000": {"aws": {"k8s.amazonaws.com/accelerator": "rtx"}}}
    accounts = by_kind(docs, "ServiceAccount")
    assert accounts["sub-substratus-uploader"]["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:u"}
    assert "annotations" not in accounts["sub-substratus-trainer"]["metadata"]
    rules = by_kind(docs, "ClusterRole")["sub-substratus-trainer"]["rules"]
    assert {"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["create", "patch"]} in rules
    assert set(by_kind(docs, "ServiceMonitor")) == {"sub-substratus"}


def test_build_settings_reach_the_builder_only() -> None:
    deployments = by_kind(
        render("--set", "build.pushSecret=regcred", "--set", "build.insecureRegistry=true"), "Deployment"
    )
    builder = env(deployments["sub-substratus-builder"])
    assert builder["SUBSTRATUS_KANIKO_IMAGE"].startswith("ghcr.io/osscontainertools/kaniko")
    assert builder["SUBSTRATUS_REGISTRY_PUSH_SECRET"] == "regcred"
    assert builder["SUBSTRATUS_REGISTRY_INSECURE"] == "true"
    assert "SUBSTRATUS_KANIKO_IMAGE" not in env(deployments["sub-substratus-trainer"])
