"""Workload Pods in namespaces that enforce the ``restricted`` Pod Security Standard.

The Job and Deployment controllers create the Pods, so a template the namespace refuses gives a
Job that never starts and a resource that only says ``JobNotComplete``. Where the namespace's
``pod-security.kubernetes.io/enforce`` label says ``restricted``, every workload pod template is
hardened as that standard asks (docs/adr/135): ``runAsNonRoot``, the ``RuntimeDefault`` seccomp
profile, no privilege escalation, every capability dropped, in each container and init container.
Elsewhere templates stay as they are: most model images run as root, and a namespace that does
not ask for ``restricted`` should not break them. What cannot run under ``restricted`` at all (a
Kaniko build runs as root) is refused with a condition that says why (:func:`refusal`).
"""

from __future__ import annotations

import copy
from typing import Any

Object = dict[str, Any]

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
RESTRICTED = "restricted"
WORKLOAD_KINDS = frozenset({"Job", "Deployment", "Pod"})


def level(namespace: Object | None) -> str | None:
    """The Pod Security level the namespace enforces (``privileged``, ``baseline``, ``restricted``)."""
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    found = labels.get(ENFORCE_LABEL)
    return None if found is None else str(found)


def _template(body: Object) -> Object | None:
    """The pod spec inside a workload object, or None for kinds that carry none."""
    kind = body.get("kind")
    if kind == "Pod":
        spec: Object | None = body.get("spec")
        return spec
    if kind in ("Job", "Deployment"):
        found: Object | None = ((body.get("spec") or {}).get("template") or {}).get("spec")
        return found
    return None


def restricted(body: Object) -> Object:
    """``body`` (a Job, Deployment or Pod; anything else is returned as it is) with a pod template
    that passes the ``restricted`` standard's security-context rules."""
    if _template(body) is None:
        return body
    hardened = copy.deepcopy(body)
    spec = _template(hardened)
    assert spec is not None
    spec["securityContext"] = {
        **(spec.get("securityContext") or {}),
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        context = dict(container.get("securityContext") or {})
        context.pop("privileged", None)
        context["allowPrivilegeEscalation"] = False
        context["capabilities"] = {"drop": ["ALL"]}
        container["securityContext"] = context
    return hardened


def refusal(what: str, namespace: str) -> str:
    """The condition message for a workload that cannot run where ``restricted`` is enforced."""
    return (
        f"namespace {namespace} enforces the restricted Pod Security Standard ({ENFORCE_LABEL}={RESTRICTED}),"
        f" and {what}; build it elsewhere (SUBSTRATUS_BUILDER_EXECUTOR=local, or another namespace) or"
        " relax the namespace's level to baseline"
    )
