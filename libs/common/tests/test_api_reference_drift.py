"""docs/api.md is exactly what the API types generate: a field added to the types but not to the
doc fails here (run `make crds`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pydantic

from substratus_common.api import reference, resources
from substratus_common.api.types import Reason

DOC = Path(__file__).resolve().parents[3] / "docs" / "api.md"


def test_committed_reference_matches_the_types() -> None:
    assert not reference.drift(DOC), "docs/api.md is out of date: run `make crds` and commit the result"


def test_every_field_of_every_kind_is_in_the_reference() -> None:
    text = DOC.read_text()
    for info in resources.KINDS:
        for part in ("spec", "status"):
            cls = reference._nested(info.cls.model_fields[part].annotation)[0]
            for name, field in cls.model_fields.items():
                assert f"| `{field.alias or name}` |" in text, f"{info.kind}.{part}.{name} is not in docs/api.md"


def test_a_field_added_to_the_types_but_not_to_the_doc_is_drift(tmp_path: Path) -> None:
    doc = tmp_path / "api.md"
    assert reference.main([str(doc)]) == 0
    assert reference.main(["--check", str(doc)]) == 0
    model = resources.kind_info("Model")
    spec = pydantic.create_model(
        "ModelSpec",
        __base__=resources.ModelSpec,
        warmup_steps=(int | None, pydantic.Field(default=None, description="Steps before the full rate.")),
    )
    cls = pydantic.create_model("Model", __base__=resources.Model, spec=(spec, ...))
    kinds = [dataclasses.replace(model, cls=cls), *(i for i in resources.KINDS if i.kind != "Model")]
    assert reference.drift(doc, kinds)
    assert "| `warmupSteps` | int | Steps before the full rate. |" in reference.render(kinds)


def test_every_reason_has_a_meaning() -> None:
    assert sorted(reference.REASONS) == sorted(Reason)


def test_generation_is_deterministic() -> None:
    assert reference.render() == reference.render()
