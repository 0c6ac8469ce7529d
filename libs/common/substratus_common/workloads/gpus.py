"""GPU types: how each cloud labels the nodes that have them.

The built-in table covers the common NVIDIA types; operators extend or override it without a
release through a YAML/JSON file named by ``SUBSTRATUS_GPU_TYPES_FILE`` (e.g. a mounted ConfigMap):

    nvidia-l40s:
      gcp: {cloud.google.com/gke-accelerator: nvidia-l40s}
      aws: {k8s.amazonaws.com/accelerator: nvidia-l40s}
      other: {nvidia.com/gpu.product: NVIDIA-L40S}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from substratus_common.config import Cloud

GPU_RESOURCE = "nvidia.com/gpu"

# The taint GKE puts on GPU nodes, and the one the local kwok GPU nodes carry.
GPU_TOLERATION: dict[str, str] = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}

GKE = "cloud.google.com/gke-accelerator"
EKS = "k8s.amazonaws.com/accelerator"
GFD = "nvidia.com/gpu.product"  # NVIDIA GPU Feature Discovery

Table = dict[str, dict[str, dict[str, str]]]  # gpu type -> cloud -> node labels

BUILTIN: Table = {
    "nvidia-t4": {"gcp": {GKE: "nvidia-tesla-t4"}, "aws": {EKS: "nvidia-tesla-t4"}, "other": {GFD: "Tesla-T4"}},
    "nvidia-l4": {"gcp": {GKE: "nvidia-l4"}, "aws": {EKS: "nvidia-l4"}, "other": {GFD: "NVIDIA-L4"}},
    "nvidia-a10g": {"gcp": {GKE: "nvidia-a10g"}, "aws": {EKS: "nvidia-a10g"}, "other": {GFD: "NVIDIA-A10G"}},
    "nvidia-a100": {
        "gcp": {GKE: "nvidia-tesla-a100"},
        "aws": {EKS: "nvidia-tesla-a100"},
        "other": {GFD: "NVIDIA-A100-SXM4-40GB"},
    },
    "nvidia-a100-80gb": {
        "gcp": {GKE: "nvidia-a100-80gb"},
        "aws": {EKS: "nvidia-a100-80gb"},
        "other": {GFD: "NVIDIA-A100-SXM4-80GB"},
    },
    "nvidia-h100": {
        "gcp": {GKE: "nvidia-h100-80gb"},
        "aws": {EKS: "nvidia-h100"},
        "other": {GFD: "NVIDIA-H100-80GB-HBM3"},
    },
}


class UnknownGPUType(ValueError):
    """The requested GPU type is not in the table; the message lists the known ones."""


class GPUTable:
    def __init__(self, table: Table) -> None:
        self._table = table

    @classmethod
    def load(cls, path: Path | None = None) -> GPUTable:
        """The built-in table, overridden type by type by the operator's file when given."""
        table: Table = {name: dict(clouds) for name, clouds in BUILTIN.items()}
        if path is not None:
            loaded: Any = yaml.safe_load(path.read_text()) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{path}: expected a mapping of GPU type to cloud to node labels")
            for name, clouds in loaded.items():
                if not isinstance(clouds, dict) or not all(isinstance(v, dict) for v in clouds.values()):
                    raise ValueError(f"{path}: {name}: expected a mapping of cloud to node labels")
                table[str(name)] = {str(c): {str(k): str(v) for k, v in labels.items()} for c, labels in clouds.items()}
        return cls(table)

    @property
    def types(self) -> list[str]:
        return sorted(self._table)

    def node_selector(self, gpu_type: str, cloud: Cloud) -> dict[str, str]:
        """Node labels selecting ``gpu_type`` on ``cloud``; ``local`` uses the generic GFD labels."""
        clouds = self._table.get(gpu_type)
        if clouds is None:
            raise UnknownGPUType(
                f"unknown GPU type {gpu_type!r} in spec.resources.gpu.type; known types: {', '.join(self.types)}"
            )
        key = "other" if cloud == "local" else cloud
        labels = clouds.get(key)
        if labels is None:
            raise UnknownGPUType(f"GPU type {gpu_type!r} has no node labels for cloud {cloud!r} in the GPU-type table")
        return dict(labels)
