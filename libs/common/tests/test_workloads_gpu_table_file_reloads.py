"""An operator adds a GPU type by editing the table file; a broken edit keeps the last good table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from substratus_common.workloads import gpu_table_file, gpus


def _write(path: Path, text: str, bump_ns: int) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump_ns))  # a distinct mtime on coarse clocks


def test_a_new_type_in_the_file_is_used_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "gpus.yaml"
    _write(path, "{}\n", 0)
    source = gpu_table_file.TableFile(path)
    with pytest.raises(gpus.UnknownGPUType):
        source.current().node_selector("nvidia-l40s", "gcp")

    _write(path, "nvidia-l40s:\n  gcp: {cloud.google.com/gke-accelerator: nvidia-l40s}\n", 10_000_000)
    assert source.current().node_selector("nvidia-l40s", "gcp") == {"cloud.google.com/gke-accelerator": "nvidia-l40s"}

    _write(path, "nvidia-l40s: [not, a, mapping]\n", 20_000_000)
    assert "nvidia-l40s" in source.current().types


def test_no_file_means_the_builtin_table(tmp_path: Path) -> None:
    assert gpu_table_file.TableFile(None).current().types == gpus.GPUTable.load().types
