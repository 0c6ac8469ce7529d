"""The local executor's failed build says which step failed and ends with buildah's own words (the
end of the build log), keeps the log under ``builder_local_dir`` and leaves no work directory."""

from __future__ import annotations

from pathlib import Path

from substratus_builder import local
from substratus_common import config
from substratus_common.workloads import builds

from .builder_platform import git_repository


async def test_local_executor_reports_a_failed_build(tmp_path: Path) -> None:
    url = git_repository(tmp_path / "repo", {"Containerfile": "FROM scratch\nCOPY missing.txt /x\n"}, tag="v1")
    keep = tmp_path / "builder"
    settings = config.Settings.model_validate(
        {"service": "builder", "registry": "127.0.0.1:1", "builder_local_dir": str(keep)}
    )
    obj = {
        "apiVersion": "substratus.ai/v1",
        "kind": "Model",
        "metadata": {"name": "broken", "namespace": "ns", "uid": "u", "generation": 1},
        "spec": {"build": {"git": {"url": url, "tag": "v1"}}},
    }
    plan = builds.plan(obj, settings)
    assert plan is not None

    result = await local.LocalExecutor(settings, None).build(plan)

    assert not result.ok
    assert result.detail.startswith("buildah build exited with code")
    assert "missing.txt" in result.detail  # buildah's message, from the end of the log
    log = keep / "logs" / "ns-model-broken.log"
    assert "$ git clone --depth=1 --single-branch --branch=v1" in log.read_text()
    assert sorted(p.name for p in keep.iterdir()) == ["buildah", "logs"]


async def test_a_missing_path_fails_before_buildah(tmp_path: Path) -> None:
    url = git_repository(tmp_path / "repo", {"Containerfile": "FROM scratch\n"}, tag="v1")
    settings = config.Settings.model_validate({"service": "builder", "registry": "127.0.0.1:1"})
    obj = {
        "apiVersion": "substratus.ai/v1",
        "kind": "Model",
        "metadata": {"name": "m", "namespace": "ns", "uid": "u", "generation": 1},
        "spec": {"build": {"git": {"url": url, "tag": "v1", "path": "nowhere"}}},
    }
    plan = builds.plan(obj, settings)
    assert plan is not None
    result = await local.LocalExecutor(settings, None).build(plan)
    assert not result.ok
    assert result.detail.startswith("directory 'nowhere' is not in the repository")
