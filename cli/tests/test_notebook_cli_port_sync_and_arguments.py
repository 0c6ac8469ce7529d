"""``kubectl notebook`` without a cluster: the local port, what a sync copies, the command line."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from substratus_cli import notebook


def test_8888_when_free_else_a_free_port_with_a_note() -> None:
    assert notebook.choose_port(None, lambda port: True) == (8888, None)
    port, note = notebook.choose_port(None, lambda port: port != 8888)
    assert port != 8888
    assert note is not None
    assert "8888 is in use" in note
    assert "--port" in note


def test_a_port_that_was_asked_for_must_be_free() -> None:
    with socket.socket() as busy:
        busy.bind((notebook.HOST, 0))
        busy.listen()
        taken = int(busy.getsockname()[1])
        with pytest.raises(notebook.NotebookError, match=f"local port {taken} is in use; pass another --port"):
            notebook.choose_port(taken)
    assert notebook.choose_port(taken) == (taken, None)


def test_sync_copies_new_resized_and_newer_files_only(tmp_path: Path) -> None:
    (tmp_path / "same.py").write_text("abc")
    os.utime(tmp_path / "same.py", (1000, 1000))
    (tmp_path / "edited-here.py").write_text("abc")
    os.utime(tmp_path / "edited-here.py", (5000, 5000))
    (tmp_path / "newer-there.py").write_text("abc")
    os.utime(tmp_path / "newer-there.py", (1000, 1000))
    remote = notebook.parse_listing(
        '[["same.py", 3, 1000.5], ["edited-here.py", 3, 2000], ["newer-there.py", 3, 3000],'
        ' ["resized.py", 9, 1], ["new/nb.ipynb", 2, 1], ["../escape", 1, 1], ["/abs", 1, 1], ["huge.bin", 99, 1]]'
    )
    (tmp_path / "resized.py").write_text("abc")
    fetch, too_large = notebook.to_fetch(remote, tmp_path, max_bytes=50)
    assert [f.path for f in fetch] == ["newer-there.py", "resized.py", "new/nb.ipynb"]
    assert too_large == ["huge.bin"]


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_extract_writes_only_what_was_asked_inside_the_directory_with_the_remote_mtime(tmp_path: Path) -> None:
    wanted = {f.path: f for f in notebook.parse_listing('[["sub/a.py", 2, 1234.0]]')}
    data = _tar({"sub/a.py": b"hi", "../evil.py": b"no", "other.py": b"no"})
    assert notebook.extract(data, tmp_path / "dir", wanted) == ["sub/a.py"]
    assert (tmp_path / "dir" / "sub" / "a.py").read_bytes() == b"hi"
    assert (tmp_path / "dir" / "sub" / "a.py").stat().st_mtime == 1234.0
    assert not (tmp_path / "evil.py").exists()
    assert not (tmp_path / "dir" / "other.py").exists()
    assert sorted(p.name for p in (tmp_path / "dir" / "sub").iterdir()) == ["a.py"]  # no partial file left


def test_the_listing_script_leaves_out_inputs_artifacts_and_checkpoints(tmp_path: Path) -> None:
    for path in ("nb.ipynb", "src/x.py", "model/w.bin", "data/d.csv", "artifacts/out", "params.json",
                 "src/.ipynb_checkpoints/x-checkpoint.py", "src/model/kept.py"):  # fmt: skip
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("1")
    top = "/".join(sorted(notebook.NOT_SYNCED_TOP))
    anywhere = "/".join(sorted(notebook.NOT_SYNCED_ANYWHERE))
    done = subprocess.run(
        [sys.executable, "-c", notebook.LIST_SCRIPT, top, anywhere],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    listed = sorted(path for path, _, _ in json.loads(done.stdout))
    assert listed == ["nb.ipynb", "src/model/kept.py", "src/x.py"]


def test_name_or_manifest_then_the_directory(tmp_path: Path) -> None:
    args = notebook.parser().parse_args(["lab", str(tmp_path)])
    assert notebook.resolve_target(args) == ("lab", None, tmp_path)
    args = notebook.parser().parse_args(["lab"])
    assert notebook.resolve_target(args)[2] == Path.cwd()

    manifest = tmp_path / "nb.yaml"
    manifest.write_text(
        "apiVersion: substratus.ai/v1\nkind: Notebook\nmetadata: {name: nb, namespace: team}\n"
        "spec: {image: x, suspend: true}\n"
    )
    args = notebook.parser().parse_args(["-f", str(manifest), "out"])
    name, obj, directory = notebook.resolve_target(args)
    assert (name, directory, args.namespace) == ("nb", Path("out"), "team")
    assert obj is not None
    assert notebook.without_suspend(obj)["spec"] == {"image": "x"}
    assert obj["spec"]["suspend"] is True  # the manifest itself is not changed

    with pytest.raises(notebook.NotebookError, match="name a Notebook"):
        notebook.resolve_target(notebook.parser().parse_args([]))
    (tmp_path / "model.yaml").write_text("apiVersion: substratus.ai/v1\nkind: Model\nmetadata: {name: m}\n")
    with pytest.raises(notebook.NotebookError, match="expected exactly one Notebook"):
        notebook.resolve_target(notebook.parser().parse_args(["-f", str(tmp_path / "model.yaml")]))


def test_minus_n_context_and_kubeconfig_reach_every_kubectl_call() -> None:
    kubectl = notebook.Kubectl("kubectl", "team", ["--context=c", "--kubeconfig=k"])
    assert kubectl.command("get", "notebook", "x") == [
        "kubectl",
        "--context=c",
        "--kubeconfig=k",
        "-n",
        "team",
        "get",
        "notebook",
        "x",
    ]
    assert kubectl.current_namespace() == "team"
    assert notebook.suspend_patch("lab", True) == {
        "apiVersion": "substratus.ai/v1",
        "kind": "Notebook",
        "metadata": {"name": "lab"},
        "spec": {"suspend": True},
    }
