"""A Notebook applied before its Model and Dataset waits with the reasons that name them
(``ModelNotFound``, then ``DatasetNotReady`` while the Dataset loads), then becomes ready by
itself, with both mounted read-only."""

from __future__ import annotations

from collections.abc import Callable

from .notebook_platform import Platform, platform_fixture  # noqa: F401  (the fixture)

NOTEBOOK = """
apiVersion: substratus.ai/v1
kind: Notebook
metadata: {name: explore}
spec:
  image: quay.io/jupyter/base-notebook
  model: {name: opt}
  dataset: {name: squad}
"""

MODEL = """
apiVersion: substratus.ai/v1
kind: Model
metadata: {name: opt}
spec:
  image: substratusai/model-loader-huggingface
  params: {name: facebook/opt-125m}
"""

# The data loader's Pod runs for a while, so the Notebook is seen waiting for a loading Dataset.
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


def test_notebook_waits_for_its_dataset_then_starts_by_itself(platform: Callable[..., Platform]) -> None:
    p = platform(trainer=True)
    p.apply(NOTEBOOK)
    p.wait_serving("explore", "ModelNotFound")
    waiting = p.serving("explore")
    assert waiting["status"] == "False"
    assert "Model opt not found" in waiting["message"]
    assert "Dataset squad not found" in waiting["message"]
    assert p.get("pod", "explore-notebook") is None

    p.apply(MODEL)
    p.apply(SLOW_DATASET)
    notebook = p.wait_serving("explore", "DatasetNotReady")
    assert notebook["status"]["ready"] is False
    assert "Dataset squad is not ready" in p.serving("explore")["message"]
    assert p.get("pod", "explore-notebook") is None

    # No user action from here: the Dataset completing wakes the Notebook.
    ready = p.wait_serving("explore", "PodReady", timeout=90)
    assert ready["status"]["ready"] is True
    assert (p.must("dataset", "squad").get("status") or {}).get("ready") is True
    pod = p.must("pod", "explore-notebook")
    mounts = {m["mountPath"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["/content/model"]["readOnly"] is True
    assert mounts["/content/data"]["readOnly"] is True
