"""An invalid spec gives a message that names the field, with the words the API server uses too."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from substratus_common.api import resources, types

UPLOAD = {"md5Checksum": "a" * 32, "requestID": "r1"}
GIT = {"url": "https://github.com/substratusai/images"}


def _model(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "substratus.ai/v1", "kind": "Model", "metadata": {"name": "m"}, "spec": spec}


CASES = [
    ("both git and upload", _model(build={"git": GIT, "upload": UPLOAD}), "spec.build: " + types.MSG_BUILD_ONE_OF),
    ("empty build", _model(build={}), "spec.build: " + types.MSG_BUILD_ONE_OF),
    (
        "tag and branch",
        _model(build={"git": {**GIT, "tag": "v1", "branch": "main"}}),
        "spec.build.git: " + types.MSG_GIT_TAG_OR_BRANCH,
    ),
    ("neither image nor build", _model(params={"a": 1}), "spec: " + types.MSG_IMAGE_OR_BUILD),
    ("negative cpu", _model(image="i", resources={"cpu": -1}), "spec.resources.cpu: Input should be greater than"),
    ("negative gpu count", _model(image="i", resources={"gpu": {"count": -1}}), "spec.resources.gpu.count: "),
    ("empty model name", _model(image="i", model={"name": ""}), "spec.model.name: "),
    ("bad dataset name", _model(image="i", dataset={"name": "Not_A_Name"}), "spec.dataset.name: "),
    ("empty git url", _model(build={"git": {"url": ""}}), "spec.build.git.url: "),
    ("bad md5", _model(build={"upload": {**UPLOAD, "md5Checksum": "xyz"}}), "spec.build.upload.md5Checksum: "),
    ("bool param", _model(image="i", params={"x": True}), "spec.params.x: must be an integer or a string"),
    (
        "server without model",
        {"apiVersion": "substratus.ai/v1", "kind": "Server", "metadata": {"name": "s"}, "spec": {"image": "i"}},
        "spec.model: Required value",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_message_names_the_field(obj: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        resources.parse(obj)
    assert expected in resources.validation_message(caught.value)


def test_list_indexes_are_written_in_brackets() -> None:
    obj = _model(image="i")
    obj["status"] = {
        "conditions": [
            {"type": "Complete", "status": "Maybe", "reason": "X", "lastTransitionTime": "2024-01-01T00:00:00Z"}
        ]
    }
    with pytest.raises(ValidationError) as caught:
        resources.parse(obj)
    assert resources.validation_message(caught.value).startswith("status.conditions[0].status: ")


def test_several_errors_are_all_named() -> None:
    with pytest.raises(ValidationError) as caught:
        resources.parse(_model(image="i", resources={"cpu": -1, "memory": -1}))
    message = resources.validation_message(caught.value)
    assert "spec.resources.cpu: " in message
    assert "spec.resources.memory: " in message


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"apiVersion": "v1", "kind": "Model"}, "apiVersion must be substratus.ai/v1"),
        ({"apiVersion": "substratus.ai/v1", "kind": "Pipeline"}, "unknown kind 'Pipeline'"),
    ],
)
def test_objects_of_other_kinds_are_refused(obj: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        resources.parse(obj)
