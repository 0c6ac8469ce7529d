"""Building a resource's image from ``spec.build``: what to build, where it goes, and the Kaniko Job.

Shared by both executors of the builder (docs/adr/081): everything but the last step is here.

- The image is ``<registry>/<cluster>-<kind>-<ns>-<name>:<tag>``; the tag is the git tag, else the
  branch, else the upload's MD5 (``latest`` for a git build of the default branch).
- A build is identified by the hash of ``spec.build`` as the user wrote it (:func:`build_hash`): a
  new hash builds again, the same hash never does. The hash is kept on the build Job
  (:data:`BUILD_HASH`) and at the end of the ``Built`` condition's message (``[build <hash>]``), so
  a build whose Job was deleted is still known as built or failed.
- A git build clones ``url`` at ``tag`` or ``branch`` in an init container and builds ``path``; an
  upload build reads the stored tarball (``s3://`` or ``gs://``) once ``Uploaded=True`` at the
  current generation names the requested MD5.

Pure functions from the resource (as read from the API) and the settings; no I/O.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from substratus_common import config
from substratus_common.api import artifacts, labels, resources
from substratus_common.api.types import ConditionType, Reason
from substratus_common.workloads import contract, service_accounts, storage_mounts

Object = dict[str, Any]

ROLE = "builder"
SERVICE_ACCOUNT = service_accounts.name_for(ROLE)
"""The build Jobs' identity in each namespace, ``substratus-builder`` (docs/adr/033, docs/install.md):
pushes images, reads uploads."""
BUILD_HASH = "substratus.ai/build-hash"
"""Annotation on a build Job: the hash of the ``spec.build`` it builds."""
IMAGE = "substratus.ai/image"
"""Annotation on a build Job: the image it pushes."""
CLONE_CONTAINER = "clone"
BUILD_CONTAINER = "build"
WORKSPACE_VOLUME = "workspace"
WORKSPACE = "/workspace"
SOURCE_DIR = f"{WORKSPACE}/source"
DOCKER_CONFIG_VOLUME = "docker-config"
DOCKER_CONFIG_DIR = "/kaniko/.docker"
DOCKERFILE = "Dockerfile"
DEFAULT_TAG = "latest"

_TAG_INVALID = re.compile(r"[^A-Za-z0-9_.-]")
_MARKER = re.compile(r"\[build (?P<hash>[0-9a-f]{16})\]\s*$")
TAG_MAX = 128


class BuildError(ValueError):
    """``spec.build`` cannot be built as written; the message says what to change."""


@dataclass(frozen=True)
class GitSource:
    url: str
    ref: str | None
    """The tag or branch to clone; None clones the default branch."""
    path: str
    """Directory inside the repository to build, normalized; ``""`` for the root."""


@dataclass(frozen=True)
class UploadSource:
    md5: str
    """Lowercase hex."""
    key: str
    """Where the tarball is in the bucket."""
    url: str
    """The tarball as a Kaniko context: ``s3://<bucket>/<key>`` or ``gs://…``."""


@dataclass(frozen=True)
class Plan:
    """One build of one resource."""

    kind: str
    plural: str
    namespace: str
    name: str
    image: str
    build_hash: str
    job_name: str
    git: GitSource | None = None
    upload: UploadSource | None = None

    @property
    def source(self) -> str:
        """The build's source in words, for messages."""
        if self.git is not None:
            where = f"{self.git.url} at {self.git.ref or 'the default branch'}"
            return where + (f", directory {self.git.path}" if self.git.path else "")
        assert self.upload is not None
        return f"the uploaded directory (md5 {self.upload.md5})"

    @property
    def marker(self) -> str:
        return f"[build {self.build_hash}]"


def build_hash(build: Mapping[str, Any]) -> str:
    """The identity of a build: a hash of ``spec.build`` as written (key order does not matter)."""
    return contract.spec_hash({"build": dict(build)}, ignore=())


def image_tag(value: str) -> str:
    """A git tag, branch or MD5 as a valid image tag: other characters become ``-`` (``feature/x``
    → ``feature-x``), at most 128 characters, never starting with ``.`` or ``-``."""
    tag = _TAG_INVALID.sub("-", value).lstrip(".-")[:TAG_MAX]
    return tag or DEFAULT_TAG


def image_repository(registry: str, cluster: str, kind: str, namespace: str, name: str) -> str:
    """``<registry>/<cluster>-<kind>-<ns>-<name>`` (repository names are lowercase)."""
    return f"{registry.rstrip('/')}/{cluster}-{kind}-{namespace}-{name}".lower()


def context_path(path: str | None) -> str:
    """``spec.build.git.path`` as a relative directory inside the clone; refuses one that leaves it."""
    if not path:
        return ""
    normal = posixpath.normpath(path.strip().strip("/") or ".")
    if normal.split("/")[0] == "..":
        raise BuildError(f"spec.build.git.path {path!r} leaves the repository; name a directory inside it")
    return "" if normal == "." else normal


def plan(obj: Object, settings: config.Settings) -> Plan | None:
    """The build ``obj`` asks for, or None without ``spec.build``. Raises BuildError."""
    build = (obj.get("spec") or {}).get("build")
    if not build:
        return None
    meta = obj["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    info = resources.kind_info(str(obj["kind"]))
    repository = image_repository(settings.registry, settings.cluster_name, info.singular, namespace, name)
    common: dict[str, Any] = {
        "kind": info.kind,
        "plural": info.plural,
        "namespace": namespace,
        "name": name,
        "build_hash": build_hash(build),
        "job_name": info.build_job_name(name),
    }
    git, upload = build.get("git"), build.get("upload")
    if git:
        ref = git.get("tag") or git.get("branch") or None
        source = GitSource(str(git["url"]), ref, context_path(git.get("path")))
        return Plan(image=f"{repository}:{image_tag(ref or DEFAULT_TAG)}", git=source, **common)
    if upload:
        md5 = str(upload.get("md5Checksum") or "").lower()
        try:
            key = artifacts.upload_key(settings.cluster_name, namespace, info.plural, name, md5)
        except ValueError as error:
            raise BuildError(f"spec.build.upload.md5Checksum: {error}") from None
        url = artifacts.join_url(settings.bucket_url, key)
        return Plan(image=f"{repository}:{md5}", upload=UploadSource(md5, key, url), **common)
    raise BuildError("spec.build: set exactly one of git or upload")


def upload_waiting(obj: Object, plan: Plan) -> str | None:
    """Why an upload build cannot start yet, or None when the uploader verified the requested tarball
    at the current generation (``Uploaded=True`` and ``status.buildUpload.storedMD5Checksum``)."""
    if plan.upload is None:
        return None
    generation = int(obj["metadata"].get("generation") or 0)
    status = obj.get("status") or {}
    uploaded: Object = next((c for c in status.get("conditions") or [] if c.get("type") == ConditionType.UPLOADED), {})
    stored = str((status.get("buildUpload") or {}).get("storedMD5Checksum") or "").lower()
    if (
        uploaded.get("status") == "True"
        and int(uploaded.get("observedGeneration") or 0) == generation
        and stored == plan.upload.md5
    ):
        return None
    return (
        f"waiting for the upload of the build context (md5 {plan.upload.md5}); "
        f"kubectl applybuild uploads it, and the build starts once it is verified"
    )


# ---- the Built condition's messages -------------------------------------------------------------


def running_message(plan: Plan, where: str) -> str:
    """While a build runs; one message from its start to its end, so it is reported once."""
    return f"building {plan.image} from {plan.source} {where} {plan.marker}"


def built_message(plan: Plan) -> str:
    return f"built {plan.image} from {plan.source} {plan.marker}"


def pushed_message(plan: Plan) -> str:
    """After a successful build, until ``spec.image`` is its image (docs/adr/106): ``Built=True``
    is reported only at the generation that carries the image, never at the one before it."""
    return f"pushed {plan.image} from {plan.source}; spec.image is set next {plan.marker}"


def failed_message(plan: Plan, why: str) -> str:
    return f"{why}; change spec.build to build again {plan.marker}"


def recorded(obj: Object, plan: Plan) -> tuple[bool, str] | None:
    """What the ``Built`` condition already says about this very build, when it finished:
    ``(True, message)`` once built (pushed, whether or not ``spec.image`` is set yet),
    ``(False, message)`` once failed; None when it has not finished (or another build is recorded)."""
    status = obj.get("status") or {}
    built = next((c for c in status.get("conditions") or [] if c.get("type") == ConditionType.BUILT), None)
    if built is None:
        return None
    message = str(built.get("message") or "")
    found = _MARKER.search(message)
    if found is None or found.group("hash") != plan.build_hash:
        return None
    if built.get("status") == "True" and built.get("reason") == Reason.JOB_COMPLETE:
        return True, message
    if built.get("reason") == Reason.JOB_NOT_COMPLETE and message == pushed_message(plan):
        return True, built_message(plan)
    if built.get("status") == "False" and built.get("reason") == Reason.JOB_FAILED:
        return False, message
    return None


# ---- the Job executor ---------------------------------------------------------------------------


def service_account(namespace: str) -> Object:
    """Shared by the build Jobs of a namespace and owned by no resource (docs/adr/033)."""
    return service_accounts.service_account(ROLE, namespace)


def clone_args(git: GitSource, into: str) -> list[str]:
    """``git`` arguments that clone one commit of the tag or branch (shared by both executors)."""
    args = ["clone", "--depth=1", "--single-branch"]
    if git.ref:
        args.append(f"--branch={git.ref}")
    return [*args, "--", git.url, into]


def kaniko_args(plan: Plan, settings: config.Settings) -> list[str]:
    if plan.git is not None:
        context = "dir://" + posixpath.join(SOURCE_DIR, plan.git.path).rstrip("/")
    else:
        assert plan.upload is not None
        scheme = urlsplit(plan.upload.url).scheme
        if scheme not in ("s3", "gs"):
            raise BuildError(
                f"a build Job reads uploads from s3:// or gs:// storage, not {scheme}://; "
                "run the builder with SUBSTRATUS_BUILDER_EXECUTOR=local to build from this bucket"
            )
        context = plan.upload.url
    args = [f"--context={context}", f"--dockerfile={DOCKERFILE}", f"--destination={plan.image}"]
    if settings.registry_insecure:
        args += ["--insecure", "--skip-tls-verify"]
    return args


def _kaniko_env(plan: Plan, settings: config.Settings) -> list[Object]:
    if plan.upload is None or not plan.upload.url.startswith("s3://"):
        return []
    env = {"AWS_REGION": settings.s3_region}
    if settings.s3_endpoint_url:
        # Kaniko's S3 context: another endpoint than AWS (SeaweedFS, MinIO) needs path-style addressing.
        env |= {"S3_ENDPOINT": settings.s3_endpoint_url, "S3_FORCE_PATH_STYLE": "true"}
    return [{"name": k, "value": v} for k, v in sorted(env.items())]


def kaniko_job(obj: Object, plan: Plan, settings: config.Settings) -> Object:
    """The build Job ``<name>-<kind>-bld``: clone (git) then Kaniko builds and pushes ``plan.image``."""
    build: Object = {
        "name": BUILD_CONTAINER,
        "image": settings.kaniko_image,
        "args": kaniko_args(plan, settings),
    }
    env = _kaniko_env(plan, settings)
    if env:
        build["env"] = env
    if plan.upload is not None:
        # Credentials for the bucket where no workload identity gives them (as for the storage helper).
        build["envFrom"] = [{"secretRef": {"name": storage_mounts.STORAGE_SECRET, "optional": True}}]
    mounts: list[Object] = []
    volumes: list[Object] = []
    pod_spec: Object = {"restartPolicy": "Never", "serviceAccountName": SERVICE_ACCOUNT}
    if plan.git is not None:
        volumes.append({"name": WORKSPACE_VOLUME, "emptyDir": {}})
        mounts.append({"name": WORKSPACE_VOLUME, "mountPath": WORKSPACE})
        pod_spec["initContainers"] = [
            {
                "name": CLONE_CONTAINER,
                "image": settings.git_image,
                "command": ["git"],
                "args": clone_args(plan.git, SOURCE_DIR),
                "volumeMounts": [{"name": WORKSPACE_VOLUME, "mountPath": WORKSPACE}],
            }
        ]
    if settings.registry_push_secret:
        volumes.append(
            {
                "name": DOCKER_CONFIG_VOLUME,
                "secret": {
                    "secretName": settings.registry_push_secret,
                    "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
                },
            }
        )
        mounts.append({"name": DOCKER_CONFIG_VOLUME, "mountPath": DOCKER_CONFIG_DIR, "readOnly": True})
    if mounts:
        build["volumeMounts"] = contract.sorted_by_name(mounts)
    pod_spec["containers"] = [build]
    if volumes:
        pod_spec["volumes"] = contract.sorted_by_name(volumes)

    info = resources.kind_info(plan.kind)
    meta = contract.child_metadata(obj, plan.job_name, ROLE)
    meta["annotations"] = {
        BUILD_HASH: plan.build_hash,
        IMAGE: plan.image,
        contract.GENERATION: str(obj["metadata"].get("generation") or 0),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": settings.build_backoff_limit,
            "template": {
                "metadata": {
                    "labels": labels.for_child(info.plural, plan.name, ROLE),
                    "annotations": {
                        contract.DEFAULT_CONTAINER: BUILD_CONTAINER,
                        **contract.pass_through_annotations(obj),
                    },
                },
                "spec": pod_spec,
            },
        },
    }
