"""The examples a new user applies on `make up` — a Dataset, an import Model and a fine-tune Model
of them — become ready (the fine-tune on the local L4 GPU node, after its dependencies)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .trainer_platform import Platform, platform_fixture  # noqa: F401  (the fixture)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _docs(*files: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for name in files:
        docs += [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]
    # Models and Datasets with an image (a build needs the builder, which this test does not run).
    return [d for d in docs if d["kind"] in ("Model", "Dataset") and "image" in d["spec"]]


def test_examples_become_ready(platform: Callable[..., Platform]) -> None:
    docs = _docs(
        "model-finetune-opt-125m-squad.yaml",
        "dataset-squad.yaml",
        "facebook-opt-125m.yaml",
        "model-import-falcon-7b-instruct.yaml",
    )
    assert {d["metadata"]["name"] for d in docs} == {
        "facebook-opt-125m-squad",
        "squad",
        "facebook-opt-125m",
        "falcon-7b-instruct",
    }
    p = platform()
    p.apply(yaml.safe_dump_all(docs))  # the fine-tune first: it waits for the others
    for doc in docs:
        p.wait_ready(doc["kind"].lower(), doc["metadata"]["name"], timeout=120)
    tuned = p.get("job", "facebook-opt-125m-squad-modeller")
    assert tuned is not None
    env = {e["name"]: e for e in tuned["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["HF_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "hf", "key": "token"}}
    assert env["PARAM_LEARNING_RATE"]["value"] == "0.0001"
    pods = p.items("pods", "substratus.ai/name=facebook-opt-125m-squad")
    assert pods[0]["spec"]["nodeName"] == "gpu-l4"
