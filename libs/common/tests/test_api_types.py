"""The API types read and write objects exactly as the API server has them (camelCase, absent ≠ false)."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from substratus_common.api import resources, types

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _example_docs() -> list[dict[str, Any]]:
    return [doc for path in sorted(EXAMPLES.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


FULL_MODEL: dict[str, Any] = {
    "apiVersion": "substratus.ai/v1",
    "kind": "Model",
    "metadata": {
        "name": "opt-squad",
        "namespace": "team-a",
        "uid": "5f0c-1",
        "resourceVersion": "42",
        "generation": 3,
        "labels": {"team": "a"},
        "annotations": {"note": "x"},
    },
    "spec": {
        "image": "substratusai/model-trainer-huggingface",
        "build": {"upload": {"md5Checksum": "0123456789abcdef0123456789ABCDEF", "requestID": "req-1"}},
        "command": ["python", "train.py"],
        "env": {"HF_TOKEN": "${{ secrets.hf.token }}"},
        "resources": {"cpu": 2, "memory": 8, "disk": 20, "gpu": {"type": "nvidia-l4", "count": 1}},
        "params": {"epochs": 1, "learning_rate": "0.0001"},
        "model": {"name": "facebook-opt-125m"},
        "dataset": {"name": "squad"},
    },
    "status": {
        "ready": False,
        "observedGeneration": 3,
        "conditions": [
            {
                "type": "Complete",
                "status": "False",
                "reason": "DatasetNotReady",
                "message": "waiting for Dataset squad",
                "lastTransitionTime": "2024-05-01T10:00:00Z",
                "observedGeneration": 3,
            }
        ],
        "artifacts": {"url": "s3://bucket/0a1b/artifacts"},
        "buildUpload": {
            "signedURL": "https://s3.example/put?sig=1",
            "requestID": "req-1",
            "expiration": "2024-05-01T10:15:00Z",
            "storedMD5Checksum": "0123456789abcdef0123456789abcdef",
        },
    },
}


def test_model_round_trips_with_exact_camel_case_names() -> None:
    model = resources.parse(copy.deepcopy(FULL_MODEL))
    assert isinstance(model, resources.Model)
    assert model.spec.build is not None
    assert model.spec.build.upload is not None
    assert model.spec.build.upload.md5_checksum == "0123456789abcdef0123456789ABCDEF"
    assert model.status is not None
    assert model.status.build_upload is not None
    assert model.status.build_upload.signed_url == "https://s3.example/put?sig=1"
    assert model.status.build_upload.expiration == dt.datetime(2024, 5, 1, 10, 15, tzinfo=dt.UTC)
    assert resources.to_dict(model) == FULL_MODEL


def test_python_names_build_the_same_wire_object() -> None:
    model = resources.Model(
        metadata=types.ObjectMeta(name="opt"),
        spec=resources.ModelSpec(
            image="img",
            build=types.Build(git=types.BuildGit(url="https://github.com/a/b", tag="v1")),
            resources=types.Resources(gpu=types.GPUResources(count=1)),
        ),
        status=types.StatusWithArtifacts(
            build_upload=types.UploadStatus(signed_url="https://u", request_id="r", stored_md5_checksum="ab" * 16),
        ),
    )
    assert resources.to_dict(model) == {
        "apiVersion": "substratus.ai/v1",
        "kind": "Model",
        "metadata": {"name": "opt"},
        "spec": {
            "image": "img",
            "build": {"git": {"url": "https://github.com/a/b", "tag": "v1"}},
            "resources": {"gpu": {"count": 1}},
        },
        "status": {"buildUpload": {"signedURL": "https://u", "requestID": "r", "storedMD5Checksum": "ab" * 16}},
    }


@pytest.mark.parametrize("suspend", [None, True, False])
def test_notebook_suspend_unset_true_and_false_stay_distinct(suspend: bool | None) -> None:
    spec: dict[str, Any] = {"image": "substratusai/base"}
    if suspend is not None:
        spec["suspend"] = suspend
    obj = {"apiVersion": "substratus.ai/v1", "kind": "Notebook", "metadata": {"name": "nb"}, "spec": spec}
    notebook = resources.parse(obj)
    assert isinstance(notebook, resources.Notebook)
    assert notebook.spec.suspend is suspend
    assert resources.to_dict(notebook) == obj
    assert ("suspend" in resources.to_dict(notebook)["spec"]) == (suspend is not None)


def test_params_keep_integers_and_strings_apart() -> None:
    spec = resources.DatasetSpec.model_validate({"image": "i", "params": {"n": 3, "s": "3", "neg": -1, "empty": ""}})
    assert spec.params == {"n": 3, "s": "3", "neg": -1, "empty": ""}
    assert isinstance(spec.params["n"], int)
    assert isinstance(spec.params["s"], str)
    assert resources.to_dict(spec)["params"] == {"n": 3, "s": "3", "neg": -1, "empty": ""}


@pytest.mark.parametrize("value", [True, 0.5, None, [1], {"a": 1}])
def test_params_refuse_what_int_or_string_refuses(value: object) -> None:
    with pytest.raises(ValidationError):
        resources.DatasetSpec.model_validate({"image": "i", "params": {"x": value}})


def test_times_are_written_in_utc_whole_seconds() -> None:
    when = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    cond = types.Condition(type="Complete", status="True", reason="JobComplete", last_transition_time=when)
    assert resources.to_dict(cond) == {
        "type": "Complete",
        "status": "True",
        "reason": "JobComplete",
        "message": "",
        "lastTransitionTime": "2024-05-01T10:00:00Z",
    }


def test_live_object_with_unknown_fields_parses_and_keeps_metadata() -> None:
    live = copy.deepcopy(FULL_MODEL)
    live["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Apply"}]
    live["metadata"]["creationTimestamp"] = "2024-05-01T09:00:00Z"
    live["spec"]["someFutureField"] = {"x": 1}
    live["status"]["someFutureStatus"] = "y"
    model = resources.parse(live)
    out = resources.to_dict(model)
    assert out["metadata"]["managedFields"] == live["metadata"]["managedFields"]
    assert out["metadata"]["creationTimestamp"] == "2024-05-01T09:00:00Z"
    assert "someFutureField" not in out["spec"]


def test_status_condition_lookup() -> None:
    model = resources.parse(copy.deepcopy(FULL_MODEL))
    assert model.status is not None
    complete = model.status.condition(types.ConditionType.COMPLETE)
    assert complete is not None
    assert complete.reason == types.Reason.DATASET_NOT_READY
    assert model.status.condition("Built") is None


def test_every_example_parses_and_round_trips_unchanged() -> None:
    docs = _example_docs()
    assert {d["kind"] for d in docs} == {"Model", "Dataset", "Server", "Notebook"}
    for doc in docs:
        assert resources.to_dict(resources.parse(doc)) == doc, doc["metadata"]["name"]


def test_examples_cover_import_fine_tune_and_the_api_reference() -> None:
    models = [resources.parse(d) for d in _example_docs() if d["kind"] == "Model"]
    names = {m.metadata.name for m in models}
    assert "facebook-opt-125m" in names  # API.md
    assert any(isinstance(m, resources.Model) and m.spec.model and m.spec.dataset for m in models)  # fine-tune
    assert any(isinstance(m, resources.Model) and not m.spec.model and not m.spec.dataset for m in models)  # import
