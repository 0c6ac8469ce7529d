"""The generated CRD schemas are structural, and every example manifest validates against them.

The walker below checks the OpenAPI keywords the CRDs use; the CEL rules are checked by the
matching pydantic validators here (same messages) and by the real API server in
tests/test_crd_admission.py.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from substratus_common.api import crd, resources, types

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _errors(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Why ``value`` does not match ``schema`` (empty when it does), with field paths."""
    if schema.get("x-kubernetes-int-or-string"):
        ok = isinstance(value, int | str) and not isinstance(value, bool)
        return [] if ok else [f"{path}: must be an integer or a string"]
    kind = schema["type"]
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
    }
    if not checks[kind](value):
        return [f"{path}: must be of type {kind}"]
    errors: list[str] = []
    if kind == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        errors += [f"{path}.{key}: Required value" for key in schema.get("required", []) if key not in value]
        for key, sub in value.items():
            if props is not None and key in props:
                errors += _errors(sub, props[key], f"{path}.{key}")
            elif extra is not None:
                errors += _errors(sub, extra, f"{path}.{key}")
            elif props is not None:
                errors.append(f"{path}.{key}: unknown field (the API server would drop it)")
    elif kind == "array":
        for i, item in enumerate(value):
            errors += _errors(item, schema["items"], f"{path}[{i}]")
    elif kind == "string":
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            errors.append(f"{path}: length out of bounds")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: does not match {schema['pattern']}")
        if "enum" in schema and value not in schema["enum"]:
            errors.append(f"{path}: not one of {schema['enum']}")
        if schema.get("format") == "date-time":
            dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    elif kind == "integer" and value < schema.get("minimum", value):
        errors.append(f"{path}: must be >= {schema['minimum']}")
    return errors


def _schemas() -> dict[str, dict[str, Any]]:
    return {info.kind: crd.openapi_schema(info) for info in resources.KINDS}


def _example_docs() -> list[dict[str, Any]]:
    return [doc for path in sorted(EXAMPLES.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("info", resources.KINDS, ids=lambda i: i.kind)
def test_schema_is_structural(info: resources.KindInfo) -> None:
    assert crd.structural_problems(crd.openapi_schema(info)) == []


def test_structural_check_finds_untyped_nodes_and_refs() -> None:
    bad = {"type": "object", "properties": {"a": {"$ref": "#/x"}, "b": {"items": {"type": "string"}}}}
    assert crd.structural_problems(bad) == [".a: $ref is not allowed", ".a: no type", ".b: no type"]


@pytest.mark.parametrize("info", resources.KINDS, ids=lambda i: i.kind)
def test_definition_has_category_status_and_columns(info: resources.KindInfo) -> None:
    definition = crd.definition(info)
    assert definition["metadata"]["name"] == f"{info.plural}.substratus.ai"
    assert definition["spec"]["names"]["categories"] == ["ai"]
    (version,) = definition["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]][:3] == ["Ready", "Status", "Image"]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["conditions"]["x-kubernetes-list-type"] == "map"
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert ("artifacts" in status) == info.has_artifacts
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec["params"]["additionalProperties"] == {"x-kubernetes-int-or-string": True}
    assert "enum" not in spec["resources"]["properties"]["gpu"]["properties"]["type"]  # docs/adr/001


def test_every_cel_message_is_also_a_pydantic_message() -> None:
    shared = {types.MSG_BUILD_ONE_OF, types.MSG_GIT_TAG_OR_BRANCH, types.MSG_IMAGE_OR_BUILD}

    def messages(node: dict[str, Any]) -> list[str]:
        found = [r["message"] for r in node.get("x-kubernetes-validations", [])]
        for sub in node.get("properties", {}).values():
            found += messages(sub)
        return found

    for schema in _schemas().values():
        spec_messages = messages(schema["properties"]["spec"])
        assert set(spec_messages) == shared


def test_every_example_validates_against_its_schema() -> None:
    schemas = _schemas()
    docs = _example_docs()
    assert len(docs) >= 6
    for doc in docs:
        assert _errors(doc, schemas[doc["kind"]]) == [], doc["metadata"]["name"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"image": "i", "resources": {"cpu": -1}}, ".spec.resources.cpu: must be >= 0"),
        ({"image": "i", "resources": {"gpu": {"count": -2}}}, ".spec.resources.gpu.count: must be >= 0"),
        ({"image": "i", "params": {"lr": 0.5}}, ".spec.params.lr: must be an integer or a string"),
        ({"image": "i", "model": {"name": ""}}, ".spec.model.name: length out of bounds"),
        ({"image": "i", "imgae": "typo"}, ".spec.imgae: unknown field"),
        ({"build": {"upload": {"md5Checksum": "z" * 32, "requestID": "r"}}}, ".spec.build.upload.md5Checksum: does"),
    ],
)
def test_schema_refuses_bad_values(spec: dict[str, Any], expected: str) -> None:
    doc = {"apiVersion": "substratus.ai/v1", "kind": "Model", "metadata": {"name": "m"}, "spec": spec}
    assert any(e.startswith(expected) for e in _errors(doc, _schemas()["Model"])), _errors(doc, _schemas()["Model"])
