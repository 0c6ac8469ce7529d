"""The four Substratus kinds (Model, Dataset, Server, Notebook), their table, and parsing.

``resources.parse(obj)`` gives a typed Model, Dataset, Server or Notebook; ``resources.kind_info(kind)``
its plural and child names; ``resources.to_dict(obj)`` the wire form (camelCase, unset fields absent);
``resources.validation_message(error)`` the user-facing message for a ValidationError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, ValidationError

from substratus_common.api.types import ObjectMeta, ObjectRef, Status, StatusWithArtifacts, Wire, WorkloadSpec

GROUP = "substratus.ai"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "ai"

# Child Jobs, Services and Deployments need names that are DNS labels (at most 63 characters);
# the longest child name decides how long a resource's own name may be (a CEL rule in the CRD).
DNS_LABEL_MAX = 63


class _Object(Wire):
    api_version: Literal["substratus.ai/v1"] = "substratus.ai/v1"
    """substratus.ai/v1"""

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)


class ModelSpec(WorkloadSpec):
    """Desired state of a Model: import one (image and params), or fine-tune a base model on a dataset."""

    model: ObjectRef | None = None
    """A base Model, mounted read-only at /content/model for transfer learning."""

    dataset: ObjectRef | None = None
    """A Dataset, mounted read-only at /content/data for training."""


class Model(_Object):
    """A machine learning model: imported or trained by a Job, stored as artifacts."""

    kind: Literal["Model"] = "Model"
    spec: ModelSpec
    status: StatusWithArtifacts | None = None


class DatasetSpec(WorkloadSpec):
    """Desired state of a Dataset: the image and params of the loader Job."""


class Dataset(_Object):
    """A dataset loaded by a Job into artifacts that Models and Notebooks mount."""

    kind: Literal["Dataset"] = "Dataset"
    spec: DatasetSpec
    status: StatusWithArtifacts | None = None


class ServerSpec(WorkloadSpec):
    """Desired state of a Server: the serving image and the Model it serves."""

    model: ObjectRef
    """The Model to serve over HTTP, mounted read-only at /content/model."""


class Server(_Object):
    """Serves a Model over HTTP (port 8080) from a Deployment and Service."""

    kind: Literal["Server"] = "Server"
    spec: ServerSpec
    status: Status | None = None


class NotebookSpec(WorkloadSpec):
    """Desired state of a Notebook: a Jupyter Pod with an optional Model and Dataset mounted."""

    model: ObjectRef | None = None
    """A Model loaded into the notebook at /content/model."""

    dataset: ObjectRef | None = None
    """A Dataset loaded into the notebook at /content/data."""

    suspend: bool | None = None
    """true stops the notebook Pod and keeps its /content volume; unset and false are distinct."""


class Notebook(_Object):
    """A Jupyter notebook Pod for developing with a Model and Dataset."""

    kind: Literal["Notebook"] = "Notebook"
    spec: NotebookSpec
    status: StatusWithArtifacts | None = None


AnyResource = Model | Dataset | Server | Notebook


@dataclass(frozen=True)
class KindInfo:
    """What every service needs to know about a kind: names of it and of its children."""

    kind: str
    plural: str
    singular: str
    cls: type[AnyResource]
    params_suffix: str
    """ConfigMap with the params: ``<name><params_suffix>``."""
    workload_suffix: str
    """The Job, Deployment (and Service) or Pod that runs the workload: ``<name><workload_suffix>``."""
    workload_kind: str
    ready_condition: str
    """The condition whose status decides ``ready`` (besides Built/Uploaded for a build)."""
    has_artifacts: bool
    """Whether the status has ``artifacts`` (not on Server)."""

    @property
    def api_version(self) -> str:
        return API_VERSION

    def params_name(self, name: str) -> str:
        return f"{name}{self.params_suffix}"

    def workload_name(self, name: str) -> str:
        return f"{name}{self.workload_suffix}"

    def build_job_name(self, name: str) -> str:
        """The Kaniko Job: ``<name>-<kind>-bld``."""
        return f"{name}-{self.singular}-bld"

    @property
    def max_name_length(self) -> int:
        """The longest name whose children all have valid names (enforced by the CRD)."""
        longest = max(len(self.workload_suffix), len(self.build_job_name("")))
        return DNS_LABEL_MAX - longest


# A tuple of frozen records: the table cannot be changed at run time.
KINDS: tuple[KindInfo, ...] = (
    KindInfo("Model", "models", "model", Model, "-model-params", "-modeller", "Job", "Complete", True),
    KindInfo("Dataset", "datasets", "dataset", Dataset, "-dataset-params", "-data-loader", "Job", "Complete", True),
    KindInfo("Server", "servers", "server", Server, "-server-params", "-server", "Deployment", "Serving", False),
    KindInfo("Notebook", "notebooks", "notebook", Notebook, "-notebook-params", "-notebook", "Pod", "Serving", True),
)


def kind_info(kind: str) -> KindInfo:
    """The table row of a kind (``"Model"``), or ValueError naming the known kinds."""
    for info in KINDS:
        if info.kind == kind:
            return info
    raise ValueError(f"unknown kind {kind!r}; known: {', '.join(i.kind for i in KINDS)}")


def kind_info_for_plural(plural: str) -> KindInfo:
    """The table row of a plural (``"models"``), as used in event subjects."""
    for info in KINDS:
        if info.plural == plural:
            return info
    raise ValueError(f"unknown resource {plural!r}; known: {', '.join(i.plural for i in KINDS)}")


def parse(obj: dict[str, Any]) -> AnyResource:
    """Parse a Substratus object as the API server returns it (unknown fields are ignored).

    Raises ValueError for an object that is not a Substratus kind, and pydantic's ValidationError
    (a ValueError too; see :func:`validation_message`) for one whose fields are invalid.
    """
    api_version = obj.get("apiVersion")
    if api_version != API_VERSION:
        raise ValueError(f"apiVersion must be {API_VERSION}, not {api_version!r}")
    return kind_info(str(obj.get("kind"))).cls.model_validate(obj)


def to_dict(obj: Wire) -> dict[str, Any]:
    """The wire form: camelCase names, unset (None) fields left out, times as RFC 3339."""
    return obj.model_dump(mode="json", by_alias=True, exclude_none=True)


def validation_message(error: ValidationError) -> str:
    """A message for the user that names each invalid field, e.g. ``spec.resources.cpu: ...``.

    Field paths use the wire (camelCase) names and list indexes in brackets, as the API server
    writes them; messages of our own rules are those of the CRD's CEL rules.
    """
    parts = []
    for err in error.errors(include_url=False):
        path = ""
        for part in err["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        msg = "Required value" if err["type"] == "missing" else err["msg"].removeprefix("Value error, ")
        parts.append(f"{path}: {msg}" if path else msg)
    return "; ".join(parts)
