"""The Kubernetes resource types Substratus reads or writes, and how their REST paths are built."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base


GROUP = "substratus.ai"

MODEL = ResourceType(GROUP, "v1", "Model", "models")
DATASET = ResourceType(GROUP, "v1", "Dataset", "datasets")
SERVER = ResourceType(GROUP, "v1", "Server", "servers")
NOTEBOOK = ResourceType(GROUP, "v1", "Notebook", "notebooks")
SUBSTRATUS_KINDS = (MODEL, DATASET, SERVER, NOTEBOOK)
SUBSTRATUS_PLURALS = tuple(rt.plural for rt in SUBSTRATUS_KINDS)

JOB = ResourceType("batch", "v1", "Job", "jobs")
POD = ResourceType("", "v1", "Pod", "pods")
DEPLOYMENT = ResourceType("apps", "v1", "Deployment", "deployments")
SERVICE = ResourceType("", "v1", "Service", "services")
CONFIGMAP = ResourceType("", "v1", "ConfigMap", "configmaps")
SECRET = ResourceType("", "v1", "Secret", "secrets")
PVC = ResourceType("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims")
SERVICE_ACCOUNT = ResourceType("", "v1", "ServiceAccount", "serviceaccounts")
NAMESPACE = ResourceType("", "v1", "Namespace", "namespaces", namespaced=False)
PERSISTENT_VOLUME = ResourceType("", "v1", "PersistentVolume", "persistentvolumes", namespaced=False)
EVENT = ResourceType("events.k8s.io", "v1", "Event", "events")  # the status writer records transitions

# Children whose changes the watcher turns into events on the owner's child subject.
WATCHED_CHILDREN = (JOB, POD, DEPLOYMENT)

_BY_KIND = {
    t.kind: t
    for t in (
        *SUBSTRATUS_KINDS,
        JOB,
        POD,
        DEPLOYMENT,
        SERVICE,
        CONFIGMAP,
        SECRET,
        PVC,
        SERVICE_ACCOUNT,
        PERSISTENT_VOLUME,
        EVENT,
    )
}
_BY_PLURAL = {t.plural: t for t in _BY_KIND.values()}


def by_kind(kind: str) -> ResourceType:
    try:
        return _BY_KIND[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(sorted(_BY_KIND))}") from None


def by_plural(plural: str) -> ResourceType:
    try:
        return _BY_PLURAL[plural]
    except KeyError:
        raise ValueError(f"unknown resource {plural!r}; known: {', '.join(sorted(_BY_PLURAL))}") from None


def of(obj: dict[str, object]) -> ResourceType:
    """The type of a Kubernetes object from its ``kind``."""
    return by_kind(str(obj.get("kind", "")))
