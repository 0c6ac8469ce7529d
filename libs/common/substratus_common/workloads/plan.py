"""The shared part of every workload plan: what to apply, in which order, and when to replace.

A service's reconcile returns its children as a list of server-side apply bodies in order
(``runtime.reconciler.Outcome.children``); the runtime applies them. Every workload (the
trainer's Job, the server-manager's Deployment and Service, the notebook-manager's Pod) is the
same sequence: the role's ServiceAccount (shared, owned by no resource), the claims, the
PersistentVolumes bound to those claims' uids, the params ConfigMap, then the workload itself.
An immutable workload (a Job) whose spec hash differs is replaced: :func:`replace_if_changed`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from substratus_common.workloads import storage_mounts

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
