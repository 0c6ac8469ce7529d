"""A Job named like a Model's (``<name>-modeller``) that the Model does not control is someone
else's: the Model says so in ``Complete`` and the Job is left exactly as it was (no owner added,
not replaced, not deleted). Once it is gone and the Model is changed, the Model runs. The same
for the Model's params ConfigMap (``<name>-model-params``): never overwritten. kwok simulates the
Job's Pod."""

from __future__ import annotations

import json
from collections.abc import Callable

from substratus_local.testing import eventually

from .trainer_platform import Platform, platform_fixture  # noqa: F401  (the fixture)

FOREIGN = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "opt-modeller", "labels": {"team": "someone-else"}},
    "spec": {
        "suspend": True,
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "work", "image": "their/image:1"}]}},
    },
}
MODEL = {
    "apiVersion": "substratus.ai/v1",
    "kind": "Model",
    "metadata": {"name": "opt"},
    "spec": {"image": "substratusai/model-loader-huggingface", "params": {"name": "facebook/opt-125m"}},
}


def test_a_job_the_model_does_not_control_is_reported_and_left_alone(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(json.dumps(FOREIGN))
    before = p.get("job", "opt-modeller")
    assert before is not None
    p.apply(json.dumps(MODEL))

    condition = p.wait_reason("model", "opt", "Invalid")
    assert condition["status"] == "False"
    assert condition["message"] == (
        "Job opt-modeller exists and does not belong to this Model (no controller); delete or rename it"
    )
    after = p.get("job", "opt-modeller")
    assert after is not None
    assert after["metadata"]["uid"] == before["metadata"]["uid"], "not replaced"
    assert after["metadata"].get("ownerReferences") is None, "not adopted"
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "their/image:1", "not overwritten"
    assert p.ready("model", "opt") is False

    p.stack.kubectl("delete", "job", "opt-modeller", "-n", p.namespace, "--wait=true")
    p.stack.kubectl("annotate", "model", "opt", "-n", p.namespace, "substratus.ai/retry=1")
    p.wait_ready("model", "opt")
    job = p.get("job", "opt-modeller")
    assert job is not None
    assert job["metadata"]["ownerReferences"][0]["name"] == "opt"
    eventually(lambda: p.condition("model", "opt")["reason"] == "JobComplete", 30, "JobComplete")


def test_a_configmap_the_model_does_not_control_is_not_overwritten(platform: Callable[..., Platform]) -> None:
    p = platform()
    theirs = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "opt-model-params"},
        "data": {"params.json": '{"theirs": true}', "other": "kept"},
    }
    p.apply(json.dumps(theirs))
    before = p.get("configmap", "opt-model-params")
    assert before is not None
    p.apply(json.dumps(MODEL))

    condition = p.wait_reason("model", "opt", "Invalid")
    assert condition["message"] == (
        "ConfigMap opt-model-params exists and does not belong to this Model (no controller); delete or rename it"
    )
    after = p.get("configmap", "opt-model-params")
    assert after is not None
    assert after["data"] == theirs["data"], "not overwritten"
    assert after["metadata"].get("ownerReferences") is None, "not adopted"
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert p.get("job", "opt-modeller") is None, "no Job reads someone else's params"
