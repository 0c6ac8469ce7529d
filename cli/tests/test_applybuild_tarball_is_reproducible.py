"""``kubectl applybuild`` tars a directory reproducibly: the same bytes (and MD5) every run, whatever
the files' times, owners or the umask, and without what ``.dockerignore`` leaves out."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from substratus_cli import applybuild


def _context(root: Path) -> Path:
    ctx = root / "ctx"
    (ctx / "src" / "__pycache__").mkdir(parents=True)
    (ctx / "secrets").mkdir()
    (ctx / "logs").mkdir()
    (ctx / "Dockerfile").write_text("FROM python:3.11\nCOPY . /app\n")
    (ctx / ".dockerignore").write_text(
        "# comment\n*.log\n!keep.log\nsecrets/\n**/__pycache__\nlogs\n!logs/wanted.txt\n"
    )
    (ctx / "src" / "app.py").write_text("print('hi')\n")
    (ctx / "src" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0bytecode")
    (ctx / "run.sh").write_text("#!/bin/sh\n")
    (ctx / "run.sh").chmod(0o700)
    (ctx / "debug.log").write_text("noise")
    (ctx / "keep.log").write_text("wanted")
    (ctx / "secrets" / "token").write_text("s3cr3t")
    (ctx / "logs" / "a.txt").write_text("no")
    (ctx / "logs" / "wanted.txt").write_text("yes")
    (ctx / "link").symlink_to("src/app.py")
    return ctx


def _tar(ctx: Path, out: Path) -> applybuild.Tarball:
    out.mkdir(exist_ok=True)
    return applybuild.make_tarball(ctx, out)


def test_two_runs_give_the_same_bytes(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    first = _tar(ctx, tmp_path / "one")
    # Touch everything and change the umask'd mode bits that do not matter: same tarball.
    for path in ctx.rglob("*"):
        if not path.is_symlink():
            os.utime(path, (1_700_000_000, 1_700_000_000))
    (ctx / "src" / "app.py").chmod(0o664)
    second = _tar(ctx, tmp_path / "two")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.md5 == second.md5 == hashlib.md5(first.path.read_bytes()).hexdigest()
    assert first.size == len(first.path.read_bytes())


def test_dockerignored_files_are_absent_and_entries_are_normalised(tmp_path: Path) -> None:
    tarball = _tar(_context(tmp_path), tmp_path / "out")
    with tarfile.open(fileobj=io.BytesIO(tarball.path.read_bytes()), mode="r:gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert set(names) == {
        ".dockerignore",
        "Dockerfile",
        "keep.log",
        "link",
        "logs",
        "logs/wanted.txt",
        "run.sh",
        "src",
        "src/app.py",
    }
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
    modes = {m.name: m.mode for m in members}
    assert modes["run.sh"] == 0o755
    assert modes["src/app.py"] == 0o644
    assert modes["src"] == 0o755
    assert next(m for m in members if m.name == "link").linkname == "src/app.py"


def test_a_directory_without_a_dockerfile_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    with pytest.raises(applybuild.ApplyBuildError, match="no Dockerfile"):
        _tar(tmp_path / "ctx", tmp_path / "out")


@pytest.mark.parametrize(
    ("pattern", "path", "excluded"),
    [
        ("*.md", "README.md", True),
        ("*.md", "docs/README.md", False),
        ("**/*.md", "docs/README.md", True),
        ("docs", "docs/a/b.txt", True),
        ("/build", "build/x", True),
        ("te?t", "test", True),
        ("te[a-c]t", "tebt", True),
        ("te[!a-c]t", "tebt", False),
    ],
)
def test_dockerignore_patterns_follow_docker(pattern: str, path: str, excluded: bool) -> None:
    assert applybuild.DockerIgnore(pattern).excluded(path) is excluded


def test_the_manifest_gets_the_upload_and_loses_a_git_build(tmp_path: Path) -> None:
    manifest = tmp_path / "model.yaml"
    manifest.write_text(
        "apiVersion: substratus.ai/v1\nkind: Model\nmetadata: {name: m}\n"
        "spec: {build: {git: {url: https://example.com/r}}, params: {a: 1}}\n"
    )
    obj = applybuild.with_upload(applybuild.load_manifest(str(manifest)), "0" * 32, "req-1")
    assert obj["spec"] == {"build": {"upload": {"md5Checksum": "0" * 32, "requestID": "req-1"}}, "params": {"a": 1}}
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\n")
    with pytest.raises(applybuild.ApplyBuildError, match="kind must be one of"):
        applybuild.load_manifest(str(manifest))
