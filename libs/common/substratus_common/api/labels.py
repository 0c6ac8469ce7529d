"""Labels every child object carries, so ``kubectl get -l`` and the watcher find them.

Children (ConfigMaps, Jobs, Pods through their templates, Deployments, Services, PVCs) also carry
an ownerReference with ``controller: true``; the labels add what a selector needs.
"""

from __future__ import annotations

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "substratus"
OWNER_KIND = "substratus.ai/kind"  # lowercase plural of the owner, e.g. "models"
OWNER_NAME = "substratus.ai/name"
ROLE = "substratus.ai/role"  # what the child does: modeller, data-loader, server, notebook, build

# What the watcher lists and watches among Jobs and Deployments.
CHILD_SELECTOR = f"{MANAGED_BY}={MANAGED_BY_VALUE}"

JOB_NAME = "batch.kubernetes.io/job-name"
"""What the Job controller labels each Pod of a Job with (Kubernetes 1.27 and later)."""

# Among Pods: those a resource owns (a Notebook's) or whose owner reads them from the view (a
# Server's Deployment's), not a Job's: a Job's owner follows the Job's status, and reads its Pods
# from the API only once it failed. A Job Pod changes four or five times on its way to done (ADR 138).
POD_SELECTOR = f"{CHILD_SELECTOR},!{JOB_NAME}"


def for_child(owner_plural: str, owner_name: str, role: str) -> dict[str, str]:
    return {MANAGED_BY: MANAGED_BY_VALUE, OWNER_KIND: owner_plural, OWNER_NAME: owner_name, ROLE: role}


def owner_of(labels: dict[str, str] | None) -> tuple[str, str] | None:
    """(owner plural, owner name) of a labelled child, or None when it is not ours."""
    labels = labels or {}
    if labels.get(MANAGED_BY) != MANAGED_BY_VALUE:
        return None
    plural, name = labels.get(OWNER_KIND), labels.get(OWNER_NAME)
    if not plural or not name:
        return None
    return plural, name
