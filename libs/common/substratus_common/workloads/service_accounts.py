"""The ServiceAccount a workload role runs as in a namespace (docs/adr/033).

``substratus-<role>`` (e.g. ``substratus-notebook``), labelled as ours, owned by no resource: many
resources of a namespace share it, and operators add their cloud's identity annotations to it.
"""

from __future__ import annotations

from typing import Any

from substratus_common.api import labels

PREFIX = "substratus-"


def name_for(role: str) -> str:
    return PREFIX + role


def service_account(role: str, namespace: str) -> dict[str, Any]:
    """The object to server-side apply before the workload (only our labels: annotations stay)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": name_for(role),
            "namespace": namespace,
            "labels": {labels.MANAGED_BY: labels.MANAGED_BY_VALUE, labels.ROLE: role},
        },
    }
