"""A fine-tune Model applied before its base Model and Dataset waits with the reasons that name
them, then runs by itself once both are ready, with both mounted read-only."""

from __future__ import annotations

from collections.abc import Callable

from .trainer_platform import Platform, platform_fixture  # noqa: F401  (the fixture)

FINETUNE = """
apiVersion: substratus.ai/v1
kind: Model
metadata: {name: tuned}
spec:
  image: substratusai/model-trainer-huggingface
  model: {name: base}
  dataset: {name: squad}
  params: {epochs: 1}
"""

BASE = """
apiVersion: substratus.ai/v1
kind: Model
metadata: {name: base}
spec:
  image: substratusai/model-loader-huggingface
  params: {name: facebook/opt-125m}
"""

# The data loader's Pod runs for a while, so the fine-tune is seen waiting for a running Dataset.
SLOW_DATASET = """
apiVersion: substratus.ai/v1
kind: Dataset
metadata:
  name: squad
  annotations: {substratus.dev/simulate-delay: 8s}
spec:
  image: substratusai/dataset-loader-huggingface
  params: {name: squad}
"""


def test_fine_tune_waits_then_runs_by_itself(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(FINETUNE)
    waiting = p.wait_reason("model", "tuned", "BaseModelNotFound")
    assert waiting["status"] == "False"
    assert "base Model base not found" in waiting["message"]
    assert "Dataset squad not found" in waiting["message"]
    assert p.items("jobs") == []

    p.apply(SLOW_DATASET)
    p.apply(BASE)
    p.wait_ready("model", "base")
    waiting = p.wait_reason("model", "tuned", "DatasetNotReady")
    assert "Dataset squad is not ready" in waiting["message"]
    assert p.get("job", "tuned-modeller") is None

    # No user action from here: the Dataset completing wakes the fine-tune.
    p.wait_ready("dataset", "squad")
    tuned = p.wait_ready("model", "tuned")
    assert tuned["status"]["conditions"][0]["reason"] == "JobComplete"

    job = p.get("job", "tuned-modeller")
    assert job is not None
    mounts = {m["mountPath"]: m for m in job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["/content/model"]["readOnly"] is True
    assert mounts["/content/data"]["readOnly"] is True
    assert mounts["/content/artifacts"].get("readOnly") is not True
    assert len(p.items("jobs", "substratus.ai/name=tuned")) == 1
