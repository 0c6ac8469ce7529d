"""The example a new user applies on ``make up`` — ``examples/facebook-opt-125m.yaml``, the Model and
Server of the API reference — becomes ready, the Server on the local L4 GPU node."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from .server_platform import Platform, platform_fixture  # noqa: F401  (the fixture)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "facebook-opt-125m.yaml"


def test_the_example_server_becomes_ready(platform: Callable[..., Platform]) -> None:
    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} == {
        ("Model", "facebook-opt-125m"),
        ("Server", "facebook-opt-125m"),
    }
    p = platform()
    p.apply(EXAMPLE.read_text())  # both at once: the Server waits for the Model by itself
    p.wait_ready("model", "facebook-opt-125m")
    p.wait_ready("server", "facebook-opt-125m", timeout=60)
    (pod,) = p.items("pods", "substratus.ai/kind=servers,substratus.ai/name=facebook-opt-125m")
    assert pod["spec"]["nodeName"] == "gpu-l4"
    assert p.get("service", "facebook-opt-125m-server") is not None
