"""``python -m dataset_loader``: load a Dataset's data into ``/content/artifacts``.

Params (one source):
- ``url``: an http(s) or file URL; stored as ``<filename>`` (default: the URL's last segment);
- ``git_url``: a git repository (``git://``, ``http(s)://`` smart protocol, or a local path),
  optionally ``git_ref`` (a branch or tag); its files (without ``.git``) are stored under
  ``<filename>`` if given, else at the top of the artifacts.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from substratus_workload import contract, fetch


@dataclass(frozen=True)
class Source:
    kind: str
    """``url`` or ``git``."""
    location: str
    ref: str | None = None
    filename: str | None = None


def source_from(params: Mapping[str, str | int]) -> Source:
    url, git_url = contract.param_str(params, "url"), contract.param_str(params, "git_url")
    filename = contract.param_str(params, "filename")
    if filename is not None and ("/" in filename or filename in (".", "..")):
        raise contract.ParamError(f"param 'filename' must be a plain file name, got {filename!r}")
    if bool(url) == bool(git_url):
        raise contract.ParamError("set exactly one of the params 'url' and 'git_url'")
    if url:
        return Source("url", url, filename=filename or fetch.file_name(url, "data"))
    assert git_url is not None
    return Source("git", git_url, ref=contract.param_str(params, "git_ref"), filename=filename)


def clone(source: Source, target: Path) -> int:
    """Clone the repository and copy its files (not ``.git``) to ``target``; returns the file count."""
    # Debian's python3-dulwich, in the image only (no stubs; not a dependency of the workspace).
    from dulwich import porcelain  # type: ignore[import-not-found,unused-ignore]

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "repo"
        branch = source.ref.encode() if source.ref else None
        with open(os.devnull, "wb") as quiet:
            porcelain.clone(source.location, str(work), branch=branch, depth=1, errstream=quiet)
        shutil.rmtree(work / ".git")
        shutil.copytree(work, target, dirs_exist_ok=True)
    return sum(1 for p in target.rglob("*") if p.is_file())


def run(root: Path, env: Mapping[str, str]) -> int:
    try:
        source = source_from(contract.load_params(root, env))
    except contract.ParamError as error:
        return contract.fail(str(error), 2)
    artifacts = root / "artifacts"
    try:
        if source.kind == "url":
            assert source.filename is not None
            size = fetch.download(source.location, artifacts / source.filename)
            print(f"fetched {source.location}: {size} bytes into {artifacts / source.filename}", flush=True)
        else:
            target = artifacts / source.filename if source.filename else artifacts
            files = clone(source, target)
            print(f"cloned {source.location} ({source.ref or 'default branch'}): {files} files into {target}")
    except Exception as error:  # any fetch failure ends the Job with its reason as the last line
        return contract.fail(f"cannot load {source.location}: {error}", 1)
    return 0


if __name__ == "__main__":
    sys.exit(run(contract.content_root(), os.environ))
