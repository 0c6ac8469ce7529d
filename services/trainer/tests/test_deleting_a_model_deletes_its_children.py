"""Deleting a Model deletes its Job and params ConfigMap (ownerReferences, garbage collector)."""

from __future__ import annotations

from collections.abc import Callable

from substratus_local.testing import eventually

from .trainer_platform import Platform, platform_fixture  # noqa: F401  (the fixture)

MODEL = """
apiVersion: substratus.ai/v1
kind: Model
metadata: {name: gone}
spec:
  image: substratusai/model-loader-huggingface
  params: {name: facebook/opt-125m}
"""


def test_deleting_a_model_deletes_its_children(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(MODEL)
    p.wait_ready("model", "gone")
    assert p.get("job", "gone-modeller") is not None
    assert p.get("configmap", "gone-model-params") is not None

    p.stack.kubectl("delete", "model", "gone", "-n", p.namespace)
    eventually(lambda: p.get("job", "gone-modeller") is None, 60, "Job deleted with its Model")
    eventually(lambda: p.get("configmap", "gone-model-params") is None, 60, "ConfigMap deleted with its Model")
    assert p.get("serviceaccount", "substratus-modeller") is not None  # shared by the namespace's Models
