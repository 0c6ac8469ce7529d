"""The image name, tag and Kaniko Job the builder makes for git and upload builds (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from substratus_common import config
from substratus_common.api import artifacts, labels
from substratus_common.workloads import builds

SETTINGS = config.Settings.model_validate(
    {
        "service": "builder",
        "cluster_name": "prod",
        "bucket_url": "s3://bkt",
        "registry": "registry.example.com/team",
        "kaniko_image": "kaniko:pinned",
        "git_image": "git:pinned",
        "build_backoff_limit": 1,
    }
)
MD5 = "0123456789abcdef0123456789ABCDEF"


def _obj(build: dict[str, Any], kind: str = "Model", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "substratus.ai/v1",
        "kind": kind,
        "metadata": {"name": "opt", "namespace": "ns", "uid": "u-1", "generation": 3, **meta},
        "spec": {"build": build},
    }


def _job(obj: dict[str, Any], settings: config.Settings = SETTINGS) -> tuple[builds.Plan, dict[str, Any]]:
    plan = builds.plan(obj, settings)
    assert plan is not None
    return plan, builds.kaniko_job(obj, plan, settings)


def test_a_git_build_clones_the_tag_and_kaniko_builds_the_path() -> None:
    obj = _obj(
        {"git": {"url": "https://github.com/substratusai/images", "path": "model-loader/", "tag": "v1.2"}},
        annotations={"substratus.dev/simulate": "fail", "other": "x"},
    )
    plan, job = _job(obj)
    assert plan.image == "registry.example.com/team/prod-model-ns-opt:v1.2"
    assert job["metadata"]["name"] == "opt-model-bld"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert job["metadata"]["labels"][labels.ROLE] == "builder"
    assert job["metadata"]["annotations"][builds.BUILD_HASH] == plan.build_hash
    assert job["spec"]["backoffLimit"] == 1
    template = job["spec"]["template"]
    assert template["metadata"]["annotations"]["substratus.dev/simulate"] == "fail"
    assert "other" not in template["metadata"]["annotations"]
    pod = template["spec"]
    assert pod["serviceAccountName"] == "substratus-builder"
    (clone,) = pod["initContainers"]
    assert clone["image"] == "git:pinned"
    assert [*clone["command"], *clone["args"]] == [
        "git",
        "clone",
        "--depth=1",
        "--single-branch",
        "--branch=v1.2",
        "--",
        "https://github.com/substratusai/images",
        "/workspace/source",
    ]
    (kaniko,) = pod["containers"]
    assert kaniko["image"] == "kaniko:pinned"
    assert kaniko["args"] == [
        "--context=dir:///workspace/source/model-loader",
        "--dockerfile=Dockerfile",
        "--destination=registry.example.com/team/prod-model-ns-opt:v1.2",
    ]
    assert kaniko["volumeMounts"] == [{"name": "workspace", "mountPath": "/workspace"}]
    assert clone["volumeMounts"] == kaniko["volumeMounts"]


def test_the_tag_is_the_branch_made_valid_or_latest() -> None:
    branch = builds.plan(_obj({"git": {"url": "u", "branch": "feature/new-loader"}}), SETTINGS)
    assert branch is not None
    assert branch.image.endswith(":feature-new-loader")
    default = builds.plan(_obj({"git": {"url": "u"}}, kind="Server"), SETTINGS)
    assert default is not None
    assert default.image == "registry.example.com/team/prod-server-ns-opt:latest"
    assert default.git is not None
    assert "--branch" not in " ".join(builds.clone_args(default.git, "/x"))


def test_an_upload_build_reads_the_stored_tarball_from_s3_path_style() -> None:
    settings = SETTINGS.model_copy(
        update={"s3_endpoint_url": "http://seaweed:8333", "registry_insecure": True, "registry_push_secret": "push"}
    )
    plan, job = _job(_obj({"upload": {"md5Checksum": MD5, "requestID": "r1"}}, kind="Dataset"), settings)
    key = artifacts.upload_key("prod", "ns", "datasets", "opt", MD5.lower())
    assert plan.image == f"registry.example.com/team/prod-dataset-ns-opt:{MD5.lower()}"
    pod = job["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    (kaniko,) = pod["containers"]
    assert kaniko["args"] == [
        f"--context=s3://bkt/{key}",
        "--dockerfile=Dockerfile",
        f"--destination={plan.image}",
        "--insecure",
        "--skip-tls-verify",
    ]
    env = {e["name"]: e["value"] for e in kaniko["env"]}
    assert env == {"AWS_REGION": "us-east-1", "S3_ENDPOINT": "http://seaweed:8333", "S3_FORCE_PATH_STYLE": "true"}
    assert kaniko["envFrom"] == [{"secretRef": {"name": "substratus-storage", "optional": True}}]
    assert kaniko["volumeMounts"] == [{"name": "docker-config", "mountPath": "/kaniko/.docker", "readOnly": True}]
    assert pod["volumes"][0]["secret"] == {
        "secretName": "push",
        "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
    }


def test_only_a_changed_build_has_another_hash() -> None:
    one = builds.build_hash({"git": {"url": "u", "tag": "v1"}})
    assert one == builds.build_hash({"git": {"tag": "v1", "url": "u"}})
    assert one != builds.build_hash({"git": {"url": "u", "tag": "v2"}})
    assert one != builds.build_hash({"git": {"url": "u", "tag": "v1", "path": "p"}})


def test_a_path_out_of_the_repository_is_refused() -> None:
    with pytest.raises(builds.BuildError, match="leaves the repository"):
        builds.plan(_obj({"git": {"url": "u", "path": "../../etc"}}), SETTINGS)
    plan = builds.plan(_obj({"git": {"url": "u", "path": "./a/../b/"}}), SETTINGS)
    assert plan is not None
    assert plan.git is not None
    assert plan.git.path == "b"


def test_an_upload_waits_for_the_verified_md5_at_this_generation() -> None:
    obj = _obj({"upload": {"md5Checksum": MD5, "requestID": "r1"}})
    plan = builds.plan(obj, SETTINGS)
    assert plan is not None
    assert builds.upload_waiting(obj, plan) is not None
    uploaded = {"type": "Uploaded", "status": "True", "reason": "UploadFound", "observedGeneration": 3}
    obj["status"] = {"conditions": [uploaded], "buildUpload": {"storedMD5Checksum": MD5.lower()}}
    assert builds.upload_waiting(obj, plan) is None
    obj["status"]["conditions"] = [{**uploaded, "observedGeneration": 2}]
    assert builds.upload_waiting(obj, plan) is not None
    obj["status"] = {"conditions": [uploaded], "buildUpload": {"storedMD5Checksum": "f" * 32}}
    assert builds.upload_waiting(obj, plan) is not None


def test_a_finished_build_is_recorded_in_the_built_message() -> None:
    obj = _obj({"git": {"url": "u", "tag": "v1"}})
    plan = builds.plan(obj, SETTINGS)
    assert plan is not None
    done = {"type": "Built", "status": "True", "reason": "JobComplete", "message": builds.built_message(plan)}
    obj["status"] = {"conditions": [done]}
    assert builds.recorded(obj, plan) == (True, done["message"])
    # Pushed, spec.image not set yet: still this build's success, never a reason to build again.
    pushed = {"type": "Built", "status": "False", "reason": "JobNotComplete", "message": builds.pushed_message(plan)}
    obj["status"] = {"conditions": [pushed]}
    assert builds.recorded(obj, plan) == (True, builds.built_message(plan))
    running = builds.running_message(plan, "in Job opt-model-bld")
    obj["status"] = {"conditions": [{**pushed, "message": running}]}
    assert builds.recorded(obj, plan) is None
    failed = builds.failed_message(plan, "build Job opt-model-bld failed")
    obj["status"] = {"conditions": [{"type": "Built", "status": "False", "reason": "JobFailed", "message": failed}]}
    assert builds.recorded(obj, plan) == (False, failed)
    other = builds.plan(_obj({"git": {"url": "u", "tag": "v2"}}), SETTINGS)
    assert other is not None
    assert builds.recorded(obj, other) is None
