"""The container contract: params.json and PARAM_ env, secret references, sorted env, owner and labels."""

from __future__ import annotations

import json

import pytest

from substratus_common.api import labels
from substratus_common.api.resources import Model
from substratus_common.workloads import contract

OBJ = {
    "apiVersion": "substratus.ai/v1",
    "kind": "Model",
    "metadata": {
        "name": "opt",
        "namespace": "ns",
        "uid": "u-1",
        "generation": 3,
        "annotations": {"substratus.dev/simulate": "fail", "kubectl.kubernetes.io/last-applied-configuration": "{}"},
    },
    "spec": {"image": "img", "params": {"epochs": 1, "learning_rate": "0.1"}},
}


def test_params_configmap_holds_params_json_with_types_kept() -> None:
    cm = contract.params_configmap(OBJ, {"b": "2", "a": 1}, "modeller")
    assert cm["metadata"]["name"] == "opt-model-params"
    assert cm["metadata"]["namespace"] == "ns"
    assert json.loads(cm["data"]["params.json"]) == {"a": 1, "b": "2"}
    assert cm["data"]["params.json"].index('"a"') < cm["data"]["params.json"].index('"b"')
    assert cm["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "substratus.ai/v1",
            "kind": "Model",
            "name": "opt",
            "uid": "u-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert labels.owner_of(cm["metadata"]["labels"]) == ("models", "opt")
    assert cm["metadata"]["labels"][labels.ROLE] == "modeller"


def test_env_has_param_vars_secret_refs_and_is_sorted() -> None:
    spec = Model.model_validate(
        {
            **OBJ,
            "spec": {
                "image": "img",
                "params": {"epochs": 1, "learning_rate": "0.1"},
                "env": {"HF_TOKEN": "${{ secrets.hf.token }}", "A": "plain"},
            },
        }
    ).spec
    env = contract.container_env(spec)
    assert [e["name"] for e in env] == ["A", "HF_TOKEN", "PARAM_EPOCHS", "PARAM_LEARNING_RATE"]
    assert env[0] == {"name": "A", "value": "plain"}
    assert env[1] == {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}
    assert env[2] == {"name": "PARAM_EPOCHS", "value": "1"}


def test_user_env_wins_over_a_derived_param_var() -> None:
    spec = Model.model_validate({**OBJ, "spec": {"image": "img", "params": {"x": 1}, "env": {"PARAM_X": "mine"}}}).spec
    assert contract.container_env(spec) == [{"name": "PARAM_X", "value": "mine"}]


@pytest.mark.parametrize(
    ("value", "ref"),
    [
        ("${{ secrets.hf.token }}", ("hf", "token")),
        ("${{secrets.my-secret.api.key}}", ("my-secret", "api.key")),
        ("plain", None),
        ("$HOME", None),
    ],
)
def test_secret_references(value: str, ref: tuple[str, str] | None) -> None:
    assert contract.secret_ref(value) == ref


def test_a_malformed_secret_reference_names_the_variable() -> None:
    with pytest.raises(contract.ContractError, match=r"spec\.env\.TOKEN: .*secrets\.<name>\.<key>"):
        contract.env_var("TOKEN", "Bearer ${{ secrets.hf }}")


def test_only_substratus_dev_annotations_pass_to_pods() -> None:
    assert contract.pass_through_annotations(OBJ) == {"substratus.dev/simulate": "fail"}


def test_spec_hash_ignores_build_and_key_order() -> None:
    a = contract.spec_hash({"image": "i", "params": {"a": 1, "b": 2}, "build": {"git": {"url": "x"}}})
    b = contract.spec_hash({"params": {"b": 2, "a": 1}, "image": "i"})
    assert a == b
    assert contract.spec_hash({"image": "i", "params": {"a": 2}}) != b
