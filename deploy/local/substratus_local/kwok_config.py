"""The simulated part of the local cluster: kwok stages and the nodes kwok manages.

Stages (adapted from kwok's own "fast" stages, Apache-2.0): nodes become Ready and keep a lease;
Pods become Running and Ready; Job Pods succeed after a delay; a Pod annotated
``substratus.dev/simulate: fail`` fails instead, so failure paths are testable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SIMULATE_ANNOTATION = "substratus.dev/simulate"
DELAY_ANNOTATION = "substratus.dev/simulate-delay"  # a Go duration such as "30s" overrides the Job Pod delay
KWOK_NODE_LABEL = ("type", "kwok")
# kwok resources read from the API server, so tests can add port-forward targets at run time.
SIMULATION_KINDS = ("PortForward", "ClusterPortForward", "Logs", "ClusterLogs", "Exec", "ClusterExec")

_NODE_CONDITIONS = """
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type  | Quote}}
      {{ end }}
      addresses:
      {{ with NodeIP }}
      - address: {{ . | Quote }}
        type: InternalIP
      {{ end }}
      {{ with NodeName }}
      - address: {{ . | Quote }}
        type: Hostname
      {{ end }}
      {{ with NodePort }}
      daemonEndpoints:
        kubeletEndpoint:
          Port: {{ . }}
      {{ end }}
"""

_NODE_INFO = """
      allocatable:
      {{ YAML .status.capacity 1 }}
      capacity:
      {{ YAML .status.capacity 1 }}
      nodeInfo:
        architecture: amd64
        containerRuntimeVersion: kwok
        kernelVersion: kwok
        kubeProxyVersion: kwok
        kubeletVersion: kwok
        operatingSystem: linux
      phase: Running
"""

_POD_RUNNING = """
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      initContainerStatuses:
      {{ range .spec.initContainers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $now | Quote }}
      {{ end }}
      {{ with NodeIPWith .spec.nodeName }}
      hostIP: {{ . | Quote }}
      {{ end }}
      {{ with PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" )
              ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      podIP: {{ . | Quote }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
"""


def _pod_terminated(phase: str, exit_code: int, reason: str, message: str) -> str:
    return f"""
      {{{{ $now := Now }}}}
      conditions:
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "False"
        reason: PodCompleted
        type: Ready
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "False"
        reason: PodCompleted
        type: ContainersReady
      containerStatuses:
      {{{{ range .spec.containers }}}}
      - image: {{{{ .image | Quote }}}}
        name: {{{{ .name | Quote }}}}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: {exit_code}
            finishedAt: {{{{ $now | Quote }}}}
            reason: {reason}
            message: {message!r}
            startedAt: {{{{ $now | Quote }}}}
      {{{{ end }}}}
      phase: {phase}
"""


def _stage(name: str, kind: str, selector: list[dict[str, Any]], nxt: dict[str, Any], **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"resourceRef": {"apiGroup": "v1", "kind": kind}, "selector": {"matchExpressions": selector}}
    spec.update(extra)
    spec["next"] = nxt
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": name}, "spec": spec}


def _expr(key: str, op: str, *values: str) -> dict[str, Any]:
    e: dict[str, Any] = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return e


def stages(job_pod_delay_ms: int) -> list[dict[str, Any]]:
    alive = _expr(".metadata.deletionTimestamp", "DoesNotExist")
    running = _expr(".status.phase", "In", "Running")
    owned_by_job = _expr(".metadata.ownerReferences.[].kind", "In", "Job")
    simulate = f'.metadata.annotations["{SIMULATE_ANNOTATION}"]'
    delay = {
        "durationMilliseconds": job_pod_delay_ms,
        "durationFrom": {"expressionFrom": f'.metadata.annotations["{DELAY_ANNOTATION}"]'},
    }
    return [
        _stage(
            "node-initialize",
            "Node",
            [_expr('.status.conditions.[] | select( .type == "Ready" ) | .status', "NotIn", "True")],
            {"statusTemplate": _NODE_CONDITIONS + _NODE_INFO},
        ),
        _stage(
            "node-heartbeat-with-lease",
            "Node",
            [
                _expr(".status.phase", "In", "Running"),
                _expr('.status.conditions.[] | select( .type == "Ready" ) | .status', "In", "True"),
            ],
            {"statusTemplate": _NODE_CONDITIONS},
            delay={"durationMilliseconds": 600000, "jitterDurationMilliseconds": 610000},
        ),
        _stage(
            "pod-ready",
            "Pod",
            [
                alive,
                _expr(".status.phase", "In", "Pending"),
                _expr('.status.conditions.[] | select( .type == "Ready" ) | .status', "NotIn", "True"),
            ],
            {"statusTemplate": _POD_RUNNING},
        ),
        _stage(
            "pod-complete",
            "Pod",
            [alive, running, owned_by_job, _expr(simulate, "NotIn", "fail")],
            {"statusTemplate": _pod_terminated("Succeeded", 0, "Completed", "simulated by kwok")},
            delay=delay,
        ),
        _stage(
            "pod-fail",
            "Pod",
            [alive, running, _expr(simulate, "In", "fail")],
            {
                "statusTemplate": _pod_terminated(
                    "Failed", 1, "Error", "simulated failure (substratus.dev/simulate: fail)"
                )
            },
            delay=delay,
        ),
        _stage("pod-delete", "Pod", [_expr(".metadata.deletionTimestamp", "Exists")], {"delete": True}),
    ]


@dataclass(frozen=True)
class GPUModel:
    """A GPU type as each cloud labels its nodes."""

    name: str  # Substratus GPU type, as in spec.resources.gpu.type
    gke: str  # cloud.google.com/gke-accelerator
    eks: str  # k8s.amazonaws.com/accelerator
    gfd: str  # nvidia.com/gpu.product (NVIDIA GPU Feature Discovery)
    count: int
    memory_mib: int


GPUS = (
    GPUModel("nvidia-t4", "nvidia-tesla-t4", "nvidia-tesla-t4", "Tesla-T4", 4, 15360),
    GPUModel("nvidia-l4", "nvidia-l4", "nvidia-l4", "NVIDIA-L4", 8, 23034),
    GPUModel("nvidia-a100", "nvidia-tesla-a100", "nvidia-tesla-a100", "NVIDIA-A100-SXM4-40GB", 8, 40960),
    GPUModel("nvidia-h100", "nvidia-h100-80gb", "nvidia-h100", "NVIDIA-H100-80GB-HBM3", 8, 81559),
)


@dataclass(frozen=True)
class NodeSpec:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)
    capacity: dict[str, str] = field(default_factory=dict)


def nodes() -> list[NodeSpec]:
    base = {"cpu": "32", "memory": "256Gi", "ephemeral-storage": "1Ti", "pods": "500"}
    result = [NodeSpec(f"cpu-{i}", capacity=base) for i in (1, 2)]
    for gpu in GPUS:
        result.append(
            NodeSpec(
                f"gpu-{gpu.name.removeprefix('nvidia-')}",
                labels={
                    "cloud.google.com/gke-accelerator": gpu.gke,
                    "k8s.amazonaws.com/accelerator": gpu.eks,
                    "nvidia.com/gpu.product": gpu.gfd,
                    "nvidia.com/gpu.present": "true",
                    "nvidia.com/gpu.count": str(gpu.count),
                    "nvidia.com/gpu.memory": str(gpu.memory_mib),
                },
                taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
                capacity={**base, "nvidia.com/gpu": str(gpu.count)},
            )
        )
    return result


def node_manifest(node: NodeSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": node.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/agent": "",
                KWOK_NODE_LABEL[0]: KWOK_NODE_LABEL[1],
                **node.labels,
            },
        },
        "spec": {"taints": node.taints} if node.taints else {},
        "status": {"capacity": node.capacity, "allocatable": node.capacity},
    }


def config_yaml(job_pod_delay_ms: int) -> str:
    """The kwok ``--config`` file: its stages, as YAML documents."""
    return yaml.safe_dump_all(stages(job_pod_delay_ms), sort_keys=False)


def nodes_yaml() -> str:
    return yaml.safe_dump_all([node_manifest(n) for n in nodes()], sort_keys=False)


def cluster_logs_yaml(logs_file: Path) -> str:
    """Every simulated container's log is this file, so ``kubectl logs`` answers on the local stack."""
    doc = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterLogs",
        "metadata": {"name": "substratus-local"},
        "spec": {"logs": [{"logsFile": str(logs_file), "follow": False}]},
    }
    return yaml.safe_dump(doc)


def port_forward(namespace: str, pod: str, port: int, target_port: int, target_address: str = "127.0.0.1") -> str:
    """A kwok PortForward: ``kubectl port-forward pod/<pod> :<port>`` reaches ``target_address:target_port``."""
    doc = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "PortForward",
        "metadata": {"name": pod, "namespace": namespace},
        "spec": {"forwards": [{"ports": [port], "target": {"address": target_address, "port": target_port}}]},
    }
    return yaml.safe_dump(doc)


NOTEBOOK_PORT = 8888


def notebook_simulation_yaml(python: str, content_dir: Path) -> str:
    """What every Pod's port 8888 and ``kubectl exec`` reach unless a namespaced PortForward or Exec
    of the Pod says otherwise (tests do): a stand-in for Jupyter (``jupyter_stand_in``) and a local
    directory standing in for the notebook's ``/content``, so ``kubectl notebook`` works on ``make up``."""
    forward = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterPortForward",
        "metadata": {"name": "substratus-notebooks"},
        "spec": {
            "forwards": [
                {
                    "ports": [NOTEBOOK_PORT],
                    "command": [python, "-m", "substratus_local.jupyter_stand_in", str(content_dir)],
                }
            ]
        },
    }
    execs = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterExec",
        "metadata": {"name": "substratus-notebooks"},
        "spec": {"execs": [{"local": {"workDir": str(content_dir)}}]},
    }
    return yaml.safe_dump_all([forward, execs], sort_keys=False)
