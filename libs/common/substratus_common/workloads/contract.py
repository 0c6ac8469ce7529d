"""The container contract every workload sees (DESIGN.md, "Container contract").

- ``/content/params.json``: the params as JSON, from the ConfigMap ``<name>-<kind>-params``;
- env ``PARAM_<UPPERCASE_KEY>`` per param, and the spec's ``env`` where a value
  ``${{ secrets.<name>.<key> }}`` becomes a secret reference; the env list is sorted by name, so
  the pod template never changes by accident;
- labels that select the workload's Pods and annotations that make ``kubectl logs`` pick the
  workload's container;
- the ownerReference (``controller: true``) that deletes children with their resource.

Pure functions from the typed resource to Kubernetes object dicts; no I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from substratus_common.api import labels, resources
from substratus_common.api.types import WorkloadSpec

Object = dict[str, Any]

CONTENT = "/content"
PARAMS_FILE = "params.json"
PARAMS_PATH = f"{CONTENT}/{PARAMS_FILE}"
ARTIFACTS_PATH = f"{CONTENT}/artifacts"
MODEL_PATH = f"{CONTENT}/model"
DATA_PATH = f"{CONTENT}/data"
PARAMS_VOLUME = "params"
PARAM_PREFIX = "PARAM_"

SPEC_HASH = "substratus.ai/spec-hash"
"""Annotation on a workload: the hash of the spec it was built from (a new hash replaces it)."""
GENERATION = "substratus.ai/generation"
"""Annotation on a workload: the resource generation it was last built for (informational)."""
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
PASS_THROUGH_PREFIX = "substratus.dev/"
"""Annotations of a resource under this prefix are copied to its workload Pods (docs/adr/031)."""

_SECRET_REF = re.compile(
    r"^\$\{\{\s*secrets\.(?P<name>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(?P<key>[-._a-zA-Z0-9]+)\s*\}\}$"
)
_SECRET_HINT = "${{"


class ContractError(ValueError):
    """The spec cannot be turned into a workload (e.g. a malformed secret reference); tells what to fix."""


def owner_reference(obj: Mapping[str, Any]) -> Object:
    """The controller ownerReference to ``obj`` (a Substratus resource as read from the API)."""
    meta = obj["metadata"]
    return {
        "apiVersion": obj.get("apiVersion", resources.API_VERSION),
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_metadata(obj: Mapping[str, Any], name: str, role: str, *, owned: bool = True) -> Object:
    """``metadata`` of a child named ``name``: namespace, our labels and (by default) the ownerReference."""
    meta = obj["metadata"]
    info = resources.kind_info(str(obj["kind"]))
    child: Object = {
        "name": name,
        "namespace": meta["namespace"],
        "labels": labels.for_child(info.plural, meta["name"], role),
    }
    if owned:
        child["ownerReferences"] = [owner_reference(obj)]
    return child


def params_json(params: Mapping[str, int | str] | None) -> str:
    """The text of ``/content/params.json``: keys sorted, ints stay ints, strings stay strings."""
    return json.dumps(dict(params or {}), sort_keys=True, indent=2) + "\n"


def params_configmap(obj: Mapping[str, Any], params: Mapping[str, int | str] | None, role: str) -> Object:
    """The ConfigMap ``<name><params_suffix>`` holding ``params.json``."""
    info = resources.kind_info(str(obj["kind"]))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": child_metadata(obj, info.params_name(obj["metadata"]["name"]), role),
        "data": {PARAMS_FILE: params_json(params)},
    }


def param_env_name(key: str) -> str:
    """``learning_rate`` → ``PARAM_LEARNING_RATE`` (API.md: ``PARAM_<UPPERCASE_KEY>``)."""
    return PARAM_PREFIX + key.upper()


def secret_ref(value: str) -> tuple[str, str] | None:
    """(secret name, key) of ``${{ secrets.<name>.<key> }}``; None for a plain value.

    A value that starts like a reference but is not a whole, valid one raises ContractError, so a
    typo is a condition on the resource and not a literal string in the container's env.
    """
    match = _SECRET_REF.match(value.strip())
    if match:
        return match.group("name"), match.group("key")
    if _SECRET_HINT in value and "secrets." in value:
        raise ContractError(
            f"{value!r} is not a secret reference: write the whole value as ${{{{ secrets.<name>.<key> }}}}"
        )
    return None


def env_var(name: str, value: str) -> Object:
    """One env entry: a literal value, or a ``secretKeyRef`` for ``${{ secrets.<name>.<key> }}``."""
    try:
        ref = secret_ref(value)
    except ContractError as error:
        raise ContractError(f"spec.env.{name}: {error}") from None
    if ref is None:
        return {"name": name, "value": value}
    secret, key = ref
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def container_env(spec: WorkloadSpec, extra: Mapping[str, str] | None = None) -> list[Object]:
    """The container's env, sorted by name: ``PARAM_*`` from params, then ``extra``, then ``spec.env``.

    A name set in ``spec.env`` wins over a derived one of the same name (the user asked for it).
    """
    merged: dict[str, Object] = {}
    for key, value in (spec.params or {}).items():
        name = param_env_name(key)
        merged[name] = {"name": name, "value": str(value)}
    for name, value in (extra or {}).items():
        merged[name] = {"name": name, "value": value}
    for name, value in (spec.env or {}).items():
        merged[name] = env_var(name, value)
    return [merged[name] for name in sorted(merged)]


def params_volume(obj: Mapping[str, Any]) -> Object:
    info = resources.kind_info(str(obj["kind"]))
    return {"name": PARAMS_VOLUME, "configMap": {"name": info.params_name(obj["metadata"]["name"])}}


def params_mount() -> Object:
    """``/content/params.json`` from the params ConfigMap, read-only."""
    return {"name": PARAMS_VOLUME, "mountPath": PARAMS_PATH, "subPath": PARAMS_FILE, "readOnly": True}


def pass_through_annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    """The resource's ``substratus.dev/*`` annotations, for its workload Pods (sorted)."""
    annotations = obj.get("metadata", {}).get("annotations") or {}
    return {k: str(v) for k, v in sorted(annotations.items()) if k.startswith(PASS_THROUGH_PREFIX)}


def spec_hash(spec: Mapping[str, Any], *, ignore: tuple[str, ...] = ("build",)) -> str:
    """A short, stable hash of the spec fields that shape the workload (``build`` only makes the image).

    Computed from the user's input, not from the rendered object, so upgrading a service that
    renders Jobs differently does not re-run every finished Job.
    """
    kept = {k: v for k, v in spec.items() if k not in ignore}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sorted_by_name(items: list[Object]) -> list[Object]:
    return sorted(items, key=lambda item: str(item.get("name", "")))
