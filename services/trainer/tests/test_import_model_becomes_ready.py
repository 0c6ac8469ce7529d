"""An import Model becomes ready with exactly one Job carrying the image, command, params file and
env, mounts and requests; its artifacts URL is reported; a Dataset does the same with a data loader."""

from __future__ import annotations

import json
from collections.abc import Callable

from substratus_common.api import artifacts
from substratus_local.testing import eventually

from .trainer_platform import Platform, platform_fixture  # noqa: F401  (the fixture)

MODEL = """
apiVersion: substratus.ai/v1
kind: Model
metadata: {name: opt}
spec:
  image: substratusai/model-loader-huggingface
  command: [python, load.py]
  params: {name: facebook/opt-125m, epochs: 2}
  env: {HF_TOKEN: "${{ secrets.hf.token }}", LOG_LEVEL: debug}
  resources: {cpu: 2, memory: 4, disk: 10}
"""

DATASET = """
apiVersion: substratus.ai/v1
kind: Dataset
metadata: {name: squad}
spec:
  image: substratusai/dataset-loader-huggingface
  params: {name: squad}
"""


def test_an_import_model_becomes_ready_with_one_job(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(MODEL)
    want_url = artifacts.artifacts_url("s3://substratus", "local", p.namespace, "models", "opt")
    eventually(
        lambda: ((p.get("model", "opt") or {}).get("status") or {}).get("artifacts", {}).get("url") == want_url,
        60,
        "artifacts URL reported",
    )
    model = p.wait_ready("model", "opt")
    complete = p.condition("model", "opt")
    assert (complete["status"], complete["reason"]) == ("True", "JobComplete")
    assert complete["observedGeneration"] == model["metadata"]["generation"]

    (job,) = p.items("jobs")
    assert job["metadata"]["name"] == "opt-modeller"
    assert job["metadata"]["ownerReferences"][0]["uid"] == model["metadata"]["uid"]
    pod = job["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    assert main["image"] == "substratusai/model-loader-huggingface"
    assert main["command"] == ["python", "load.py"]
    assert main["env"] == [
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
        {"name": "LOG_LEVEL", "value": "debug"},
        {"name": "PARAM_EPOCHS", "value": "2"},
        {"name": "PARAM_NAME", "value": "facebook/opt-125m"},
    ]
    assert main["resources"]["requests"] == {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "10Gi"}
    mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
    assert mounts["/content/params.json"]["subPath"] == "params.json"
    assert mounts["/content/artifacts"].get("readOnly") is not True
    assert pod["serviceAccountName"] == "substratus-modeller"
    assert p.get("serviceaccount", "substratus-modeller") is not None

    cm = p.get("configmap", "opt-model-params")
    assert cm is not None
    assert json.loads(cm["data"]["params.json"]) == {"epochs": 2, "name": "facebook/opt-125m"}


def test_a_dataset_becomes_ready_with_a_data_loader_job(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(DATASET)
    dataset = p.wait_ready("dataset", "squad")
    assert dataset["status"]["artifacts"]["url"].endswith("/artifacts")
    (job,) = p.items("jobs")
    assert job["metadata"]["name"] == "squad-data-loader"
    assert job["spec"]["template"]["spec"]["containers"][0]["name"] == "data-loader"
