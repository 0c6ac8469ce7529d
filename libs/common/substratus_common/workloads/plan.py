"""The shared part of every workload: its pod, what comes with it, the order, when to replace.

Every workload (the trainer's Job, the server-manager's Deployment and Service, the
notebook-manager's Pod) starts from :func:`pod`: the container (image, env, params and storage
mounts, command, resources), the pod spec (the role's ServiceAccount, volumes, storage helpers,
node selector and tolerations) and its annotations, with the role's ServiceAccount (shared, owned
by no resource), the params ConfigMap, and the claims and volumes its storage needs. The per-kind
modules add only their wrapper and their container's extras (ports, probes). A service's reconcile
returns the children in order (:meth:`Pod.children`; the runtime applies them); an immutable
workload (a Job) whose spec hash differs is replaced: :func:`replace_if_changed`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from substratus_common import config
from substratus_common.api import artifacts
from substratus_common.workloads import contract, gpus, scheduling, service_accounts, storage_mounts

Object = dict[str, Any]
Applied = Mapping[tuple[str, str], Object]
"""Children applied so far in this pass, by (kind, name): the metadata the API answered."""
Child = Object | Callable[[Applied], Object]
"""A child body, or a function of the children applied before it (a PV bound to its claim's uid)."""


@dataclass(frozen=True)
class Replace:
    """An existing child to delete before the children are applied (an immutable workload whose
    spec hash differs): deleted with a uid precondition, so another replica's new one survives."""

    kind: str
    """The Kubernetes kind, e.g. ``Job``."""
    namespace: str
    name: str
    uid: str


def ordered(
    service_account: Object,
    claims: Sequence[Object],
    volumes_to_bind: Sequence[Object],
    configmap: Object,
    workload: Iterable[Object],
) -> list[Child]:
    """ServiceAccount, claims, their bound volumes, ConfigMap, then the workload's own objects."""
    children: list[Child] = [service_account, *claims]
    children += [_bound(volume) for volume in volumes_to_bind]
    children.append(configmap)
    children += list(workload)
    return children


def _bound(volume: Object) -> Callable[[Applied], Object]:
    def bind(applied: Applied) -> Object:
        claim = applied.get(("PersistentVolumeClaim", str(volume["spec"]["claimRef"]["name"])), {})
        return storage_mounts.bind_claim(volume, claim)

    return bind


def replace_if_changed(existing: Object | None, annotation: str, wanted: str) -> Replace | None:
    """The existing immutable child to replace when its ``annotation`` (a spec hash) is not ``wanted``."""
    if existing is None:
        return None
    meta = existing.get("metadata") or {}
    if (meta.get("annotations") or {}).get(annotation) == wanted:
        return None
    return Replace(
        str(existing.get("kind") or ""), str(meta.get("namespace")), str(meta.get("name")), str(meta.get("uid"))
    )


# ---- the pod every workload runs ----------------------------------------------------------------


def mounts(
    settings: config.Settings,
    namespace: str,
    *,
    own: tuple[str, str] | None = None,
    keep_own: bool = False,
    model: str | None = None,
    dataset: str | None = None,
) -> list[storage_mounts.Mount]:
    """The container contract's storage: ``own`` (plural, name) artifacts read-write at
    ``/content/artifacts`` (downloaded first too when ``keep_own``), the Model read-only at
    ``/content/model``, the Dataset read-only at ``/content/data``."""

    def url(plural: str, name: str) -> str:
        return artifacts.artifacts_url(settings.bucket_url, settings.cluster_name, namespace, plural, name)

    found: list[storage_mounts.Mount] = []
    if own is not None:
        path = contract.ARTIFACTS_PATH
        found.append(
            storage_mounts.Mount("artifacts", url(*own), path, read_only=False, download=keep_own, upload=True)
        )
    if model is not None:
        found.append(
            storage_mounts.Mount("model", url("models", model), contract.MODEL_PATH, read_only=True, download=True)
        )
    if dataset is not None:
        found.append(
            storage_mounts.Mount("data", url("datasets", dataset), contract.DATA_PATH, read_only=True, download=True)
        )
    return found


@dataclass(frozen=True)
class Pod:
    """One workload's pod and the objects that come with it."""

    container: Object
    spec: Object
    """The pod spec, with ``container`` as its only container."""
    annotations: dict[str, str]
    """The pod's: its default container, the storage helpers', the resource's pass-through ones."""
    labels: dict[str, str]
    service_account: Object
    configmap: Object
    claims: list[Object]
    volumes_to_bind: list[Object]

    def children(self, workload: Iterable[Object]) -> list[Child]:
        """Everything to apply, in order, with the workload's own objects last."""
        return ordered(self.service_account, self.claims, self.volumes_to_bind, self.configmap, workload)


def pod(
    obj: Object,
    spec: Any,
    settings: config.Settings,
    table: gpus.GPUTable,
    *,
    role: str,
    pod_labels: dict[str, str],
    claim_prefix: str,
    storage: Sequence[storage_mounts.Mount],
    volumes: Sequence[Object] = (),
    volume_mounts: Sequence[Object] = (),
) -> Pod:
    """The pod of ``obj`` (its parsed ``spec``: image, env, command, resources, params) for ``role``.

    Its one container is named after the role. ``volumes``/``volume_mounts`` are the workload's
    own besides params and storage. Raises
    ``gpus.UnknownGPUType`` and ``contract.ContractError`` for specs that cannot run.
    """
    namespace = str(obj["metadata"]["namespace"])
    if spec.image is None:
        raise ValueError("a workload needs spec.image")
    planned = storage_mounts.plan(
        list(storage),
        settings,
        namespace=namespace,
        claim_prefix=claim_prefix,
        owner=contract.owner_reference(obj),
        owner_labels=pod_labels,
    )
    placed = scheduling.placement_for(spec.resources, cloud=settings.cloud, table=table)
    container = role
    body: Object = {
        "name": container,
        "image": spec.image,
        "env": contract.container_env(spec),
        "volumeMounts": contract.sorted_by_name([*volume_mounts, contract.params_mount(), *planned.mounts]),
    }
    if spec.command:
        body["command"] = list(spec.command)
    if placed.resources:
        body["resources"] = placed.resources
    pod_spec: Object = {
        "serviceAccountName": service_accounts.name_for(role),
        "containers": [body],
        "volumes": contract.sorted_by_name([*volumes, contract.params_volume(obj), *planned.volumes]),
    }
    # A field with nothing to say is left out, so the pod template stays minimal.
    if planned.init_containers:
        pod_spec["initContainers"] = planned.init_containers
    if planned.termination_grace_s is not None:
        pod_spec["terminationGracePeriodSeconds"] = planned.termination_grace_s
    if placed.node_selector:
        pod_spec["nodeSelector"] = placed.node_selector
    if placed.tolerations:
        pod_spec["tolerations"] = placed.tolerations
    annotations = {
        contract.DEFAULT_CONTAINER: container,
        **planned.pod_annotations,
        **contract.pass_through_annotations(obj),
    }
    return Pod(
        container=body,
        spec=pod_spec,
        annotations=annotations,
        labels=pod_labels,
        service_account=service_accounts.service_account(role, namespace),
        configmap=contract.params_configmap(obj, spec.params, role),
        claims=planned.claims,
        volumes_to_bind=planned.volumes_to_bind,
    )


def workload_metadata(obj: Object, name: str, role: str, spec_hash: str, **annotations: str) -> Object:
    """The metadata of a workload object: owned by ``obj``, labelled, carrying the hash of the spec
    it was built from and the generation (and ``annotations``)."""
    meta = contract.child_metadata(obj, name, role)
    generation = str(obj["metadata"].get("generation") or 0)
    meta["annotations"] = {contract.SPEC_HASH: spec_hash, contract.GENERATION: generation, **annotations}
    return meta


@dataclass
class Workload:
    """A pod plan and the workload's own objects around it (a Job; a Deployment and a Service; a
    Pod): the per-kind modules subclass it with those objects and :meth:`own`."""

    planned: Pod

    @property
    def service_account(self) -> Object:
        return self.planned.service_account

    @property
    def configmap(self) -> Object:
        return self.planned.configmap

    @property
    def claims(self) -> list[Object]:
        return self.planned.claims

    @property
    def volumes_to_bind(self) -> list[Object]:
        return self.planned.volumes_to_bind

    def own(self) -> list[Object]:
        """The workload's own objects, applied last, in this order."""
        raise NotImplementedError

    def children(self) -> list[Child]:
        return self.planned.children(self.own())
