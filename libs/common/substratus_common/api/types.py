"""Types shared by the four Substratus kinds (API.md, "Types"): build, resources, references, status.

Wire names are camelCase (aliases); Python names are snake_case and both are accepted when
parsing. Dump with :func:`substratus_common.api.resources.to_dict` (or ``model_dump(by_alias=True,
exclude_none=True, mode="json")``) so unset fields stay absent: absent and ``false`` differ.

Every message a validator raises here is also the message of the matching CEL rule in the CRD
(see ``crd.py``), so users see the same words from ``kubectl apply`` and from a service.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

# Messages shared by the pydantic validators and the CRD's CEL rules.
MSG_BUILD_ONE_OF = "set exactly one of git or upload"
MSG_GIT_TAG_OR_BRANCH = "set tag or branch, not both"
MSG_IMAGE_OR_BUILD = "set image or build"

# Kubernetes object names (DNS-1123 subdomain), as the API server checks them.
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
NAME_MAX_LENGTH = 253
MD5_PATTERN = r"^[a-fA-F0-9]{32}$"


class ConditionType(StrEnum):
    """Condition types the services report (DESIGN.md, "The resources")."""

    COMPLETE = "Complete"  # Model, Dataset: the Job finished
    SERVING = "Serving"  # Server, Notebook: the Deployment or Pod is ready
    BUILT = "Built"  # spec.build: the image was built
    UPLOADED = "Uploaded"  # spec.build.upload: the build context is in storage


class Reason(StrEnum):
    """Condition reasons (DESIGN.md); a ``message`` tells the user what to fix."""

    JOB_COMPLETE = "JobComplete"
    JOB_NOT_COMPLETE = "JobNotComplete"
    JOB_FAILED = "JobFailed"
    DEPLOYMENT_READY = "DeploymentReady"
    DEPLOYMENT_NOT_READY = "DeploymentNotReady"
    POD_READY = "PodReady"
    POD_NOT_READY = "PodNotReady"
    SUSPENDED = "Suspended"
    AWAITING_UPLOAD = "AwaitingUpload"
    UPLOAD_FOUND = "UploadFound"
    UPLOAD_EXPIRED = "UploadExpired"
    """The signed URL expired (or the MD5 changed under the same request): set a new ``requestID``."""
    BASE_MODEL_NOT_FOUND = "BaseModelNotFound"
    BASE_MODEL_NOT_READY = "BaseModelNotReady"
    DATASET_NOT_FOUND = "DatasetNotFound"
    DATASET_NOT_READY = "DatasetNotReady"
    MODEL_NOT_FOUND = "ModelNotFound"
    MODEL_NOT_READY = "ModelNotReady"
    INVALID = "Invalid"
    FORBIDDEN = "Forbidden"
    RECONCILE_FAILED = "ReconcileFailed"


class Wire(BaseModel):
    """Base of every API type: camelCase on the wire, snake_case in Python.

    Unknown fields are ignored, so an object written by a newer version of the API still parses.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_attribute_docstrings=True,
        validate_assignment=True,
    )


def _int_or_string(value: object) -> int | str:
    # bool is an int in Python but not in Kubernetes' IntOrString; floats are refused there too.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be an integer or a string")
    return value


IntOrString = Annotated[
    int | str,
    PlainValidator(_int_or_string),
    WithJsonSchema({"x-kubernetes-int-or-string": True}),
]
"""Kubernetes ``IntOrString``: ``3`` and ``"3"`` are different values and both round-trip."""


def _parse_time(value: object) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, dt.datetime):
        raise ValueError("must be an RFC 3339 time")
    # A naive time is taken as UTC, like every time the API server writes.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _format_time(value: dt.datetime) -> str:
    # The API server keeps whole seconds in UTC; writing the same avoids a diff on every apply.
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Time = Annotated[
    dt.datetime,
    PlainValidator(_parse_time),
    PlainSerializer(_format_time, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A Kubernetes ``metav1.Time``: RFC 3339 in UTC with whole seconds on the wire."""

MAX_PARAMS = 1000
"""Most entries ``spec.params`` may hold: each becomes an environment variable of the workload."""

Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN)]


class ObjectMeta(Wire):
    """The part of ``metadata`` the services read; every other field is kept as it came."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class ObjectRef(Wire):
    """A reference to another object in the same namespace."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-map-type": "atomic"})

    name: Name
    """Name of the object, in the same namespace."""


class BuildGit(Wire):
    """A git repository built in the cluster; the image is then set in spec.image."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-map-type": "atomic",
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.tag) && has(self.branch))",
                    "message": MSG_GIT_TAG_OR_BRANCH,
                    "reason": "FieldValueForbidden",
                }
            ],
        }
    )

    url: str = Field(min_length=1, max_length=2048)
    """URL of the repository, e.g. https://github.com/substratusai/images."""

    path: str | None = Field(default=None, max_length=1024)
    """Directory inside the repository to build."""

    tag: str | None = Field(default=None, min_length=1, max_length=255)
    """Git tag to build; set tag or branch. Read at build time only, not watched."""

    branch: str | None = Field(default=None, min_length=1, max_length=255)
    """Git branch to build; set tag or branch. Read at build time only, not watched."""

    @model_validator(mode="after")
    def _tag_or_branch(self) -> Self:
        if self.tag is not None and self.branch is not None:
            raise ValueError(MSG_GIT_TAG_OR_BRANCH)
        return self


class BuildUpload(Wire):
    """A local directory, tar'd and uploaded through a signed URL, then built in the cluster."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-map-type": "atomic"})

    md5_checksum: str = Field(alias="md5Checksum", min_length=32, max_length=32, pattern=MD5_PATTERN)
    """MD5 (hex) of the tar'd directory to upload."""

    request_id: str = Field(alias="requestID", min_length=1, max_length=253)
    """Identifies the upload request; a new value asks for a new signed URL (e.g. after expiry)."""


class Build(Wire):
    """Build the image in the cluster instead of naming one: from git, or from an upload."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-map-type": "atomic",
            "x-kubernetes-validations": [{"rule": "has(self.git) != has(self.upload)", "message": MSG_BUILD_ONE_OF}],
        }
    )

    git: BuildGit | None = None
    """Build from a git repository."""

    upload: BuildUpload | None = None
    """Build from a directory uploaded by the client (kubectl applybuild)."""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.git is None) == (self.upload is None):
            raise ValueError(MSG_BUILD_ONE_OF)
        return self


class GPUResources(Wire):
    """GPUs for the container."""

    # type is not an enum: the GPU-type table is operator-configured, and an unknown type is
    # reported as a condition (docs/adr/001-gpu-type-is-not-an-enum.md).

    type: str | None = Field(default=None, min_length=1, max_length=63)
    """GPU type, e.g. nvidia-l4, nvidia-t4, nvidia-a100; unset schedules on any GPU node."""

    count: int | None = Field(default=None, ge=0)
    """Number of GPUs."""


class Resources(Wire):
    """Compute the container needs."""

    cpu: int | None = Field(default=None, ge=0)
    """CPU cores."""

    memory: int | None = Field(default=None, ge=0)
    """Memory in GiB."""

    disk: int | None = Field(default=None, ge=0)
    """Ephemeral disk in GiB."""

    gpu: GPUResources | None = None
    """GPUs."""


class WorkloadSpec(Wire):
    """The fields every kind's spec has (API.md)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.image) || has(self.build)",
                    "message": MSG_IMAGE_OR_BUILD,
                    "fieldPath": ".image",
                    "reason": "FieldValueRequired",
                }
            ],
        }
    )

    image: str | None = Field(default=None, min_length=1, max_length=1024)
    """Container image with the code and its dependencies; set by the system after a build."""

    build: Build | None = None
    """Build the image in the cluster instead of naming one."""

    command: list[str] | None = None
    """Command to run in the container."""

    env: dict[str, str] | None = None
    """Environment variables for the container; a value ${{ secrets.<name>.<key> }} reads a Secret key."""

    resources: Resources | None = None
    """Compute the container needs."""

    params: dict[str, IntOrString] | None = Field(default=None, max_length=MAX_PARAMS)
    """Parameters: written to /content/params.json and set as env PARAM_<UPPERCASE_KEY> (at most
    1000: each is an environment variable of the workload)."""

    @model_validator(mode="after")
    def _image_or_build(self) -> Self:
        if self.image is None and self.build is None:
            raise ValueError(MSG_IMAGE_OR_BUILD)
        return self


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(Wire):
    """The standard Kubernetes condition (metav1.Condition)."""

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    )
    """Type of condition in CamelCase, e.g. Complete, Serving, Built, Uploaded."""

    status: ConditionStatus
    """True, False or Unknown."""

    reason: str = Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    """Programmatic identifier of the last transition, in CamelCase."""

    message: str = Field(default="", max_length=32768)
    """What happened, and for a failure what to fix; may be empty."""

    last_transition_time: Time
    """When the status last changed."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this condition was computed from."""


class ArtifactsStatus(Wire):
    """Where the resource's artifacts are stored."""

    url: str | None = None
    """Storage URL, e.g. gs://bucket/… or s3://bucket/…"""


class UploadStatus(Wire):
    """The signed URL the client uploads its build context to."""

    signed_url: str | None = Field(default=None, alias="signedURL")
    """Short-lived HTTPS URL; PUT the tar'd build context with Content-Type application/octet-stream."""

    request_id: str | None = Field(default=None, alias="requestID")
    """The spec.build.upload.requestID this URL answers; clients check it matches theirs."""

    expiration: Time | None = None
    """When the signed URL expires."""

    stored_md5_checksum: str | None = Field(default=None, alias="storedMD5Checksum")
    """MD5 (hex) of the object found in storage."""


class Status(Wire):
    """Status of every kind."""

    # ready stays unset until the status writer computes it, so a partial status built by a
    # service never claims ready: false by accident.

    ready: bool | None = None
    """Whether the resource is ready; see conditions for details."""

    conditions: list[Condition] | None = Field(
        default=None,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Conditions, keyed by type."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation the status was last computed from."""

    build_upload: UploadStatus | None = None
    """The signed URL for spec.build.upload."""

    def condition(self, type_: str) -> Condition | None:
        """The condition of that type, if reported."""
        return next((c for c in self.conditions or () if c.type == type_), None)


class StatusWithArtifacts(Status):
    """Status of Model, Dataset and Notebook: the shared status plus where artifacts are stored."""

    artifacts: ArtifactsStatus | None = None
    """Where the artifacts are stored; set as soon as the resource is seen."""
