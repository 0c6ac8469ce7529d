"""A fine-tune waiting for its Dataset still starts by itself when the Dataset finished while the
trainer was killed (-9): the restarted trainer finds the waiting Model in its view of the stream."""

from __future__ import annotations

from collections.abc import Callable

from substratus_local.testing import eventually

from .trainer_platform import Platform, platform_fixture  # noqa: F401  (the fixture)

MANIFESTS = """
apiVersion: substratus.ai/v1
kind: Model
metadata: {name: tuned}
spec:
  image: substratusai/model-trainer-huggingface
  dataset: {name: squad}
---
apiVersion: substratus.ai/v1
kind: Dataset
metadata:
  name: squad
  annotations: {substratus.dev/simulate-delay: 6s}
spec:
  image: substratusai/dataset-loader-huggingface
"""


def test_waiting_model_wakes_after_a_trainer_restart(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(MANIFESTS)
    p.wait_reason("model", "tuned", "DatasetNotReady")
    eventually(lambda: p.get("job", "squad-data-loader"), 30, "data-loader Job created")
    p.trainer.kill()

    def loader_complete() -> bool:
        job = p.get("job", "squad-data-loader") or {}
        return any(
            c["type"] == "Complete" and c["status"] == "True" for c in job.get("status", {}).get("conditions", [])
        )

    eventually(loader_complete, 60, "data-loader Job complete while the trainer is down")
    assert p.ready("dataset", "squad") is False  # nobody reported it yet
    assert p.get("job", "tuned-modeller") is None

    p.trainer.start()
    p.wait_ready("dataset", "squad")
    p.wait_ready("model", "tuned")
    assert len(p.items("jobs", "substratus.ai/name=tuned")) == 1
