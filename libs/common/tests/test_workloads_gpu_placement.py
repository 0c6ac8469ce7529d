"""Resources map to requests, and GPUs to requests = limits with each cloud's node labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from substratus_common.workloads import gpus, scheduling

TABLE = gpus.GPUTable.load()


def _place(**kwargs: object) -> scheduling.Placement:
    args: dict[str, object] = {
        "cpu": None,
        "memory_gib": None,
        "disk_gib": None,
        "gpu_type": None,
        "gpu_count": None,
        "cloud": "gcp",
        "table": TABLE,
    }
    args.update(kwargs)
    return scheduling.placement(**args)  # type: ignore[arg-type]


def test_cpu_memory_disk_are_requests() -> None:
    placed = _place(cpu=4, memory_gib=16, disk_gib=100)
    assert placed.resources == {"requests": {"cpu": "4", "memory": "16Gi", "ephemeral-storage": "100Gi"}}
    assert placed.node_selector == {}
    assert placed.tolerations == []


@pytest.mark.parametrize(
    ("cloud", "selector"),
    [
        ("gcp", {"cloud.google.com/gke-accelerator": "nvidia-l4"}),
        ("aws", {"k8s.amazonaws.com/accelerator": "nvidia-l4"}),
        ("other", {"nvidia.com/gpu.product": "NVIDIA-L4"}),
        ("local", {"nvidia.com/gpu.product": "NVIDIA-L4"}),
    ],
)
def test_gpu_type_selects_the_cloud_label_and_tolerates_the_gpu_taint(cloud: str, selector: dict[str, str]) -> None:
    placed = _place(gpu_type="nvidia-l4", gpu_count=2, cloud=cloud)
    assert placed.resources == {"requests": {"nvidia.com/gpu": "2"}, "limits": {"nvidia.com/gpu": "2"}}
    assert placed.node_selector == selector
    assert placed.tolerations == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_count_without_type_schedules_on_any_gpu_node() -> None:
    placed = _place(gpu_count=1)
    assert placed.node_selector == {}
    assert placed.resources["limits"] == {"nvidia.com/gpu": "1"}
    assert placed.tolerations


def test_unknown_type_names_the_field_and_the_known_types() -> None:
    with pytest.raises(gpus.UnknownGPUType, match=r"spec\.resources\.gpu\.type.*nvidia-l4"):
        _place(gpu_type="nvidia-b9000", gpu_count=1)


def test_operator_file_adds_a_type_without_a_release(tmp_path: Path) -> None:
    extra = tmp_path / "gpus.yaml"
    extra.write_text("nvidia-l40s:\n  gcp: {cloud.google.com/gke-accelerator: nvidia-l40s}\n")
    table = gpus.GPUTable.load(extra)
    assert table.node_selector("nvidia-l40s", "gcp") == {"cloud.google.com/gke-accelerator": "nvidia-l40s"}
    assert table.node_selector("nvidia-t4", "gcp") == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
