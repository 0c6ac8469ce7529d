"""The Servers a new user applies on ``make up`` become ready: the API reference's
``examples/facebook-opt-125m.yaml`` (Model and Server, the Server on the local L4 GPU node) and
``examples/server-facebook-opt-125m-squad.yaml`` (serving the fine-tuned Model, on the T4 node),
applied together with the Dataset and fine-tune they wait for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .server_platform import Platform, platform_fixture  # noqa: F401  (the fixture)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
FILES = (
    "server-facebook-opt-125m-squad.yaml",
    "model-finetune-opt-125m-squad.yaml",
    "dataset-squad.yaml",
    "facebook-opt-125m.yaml",
)


def _docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for name in FILES:
        docs += [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]
    return [d for d in docs if "image" in d["spec"]]  # a build needs the builder, not run here


def test_the_example_servers_become_ready(platform: Callable[..., Platform]) -> None:
    docs = _docs()
    servers = sorted(d["metadata"]["name"] for d in docs if d["kind"] == "Server")
    assert servers == ["facebook-opt-125m", "facebook-opt-125m-squad"]
    p = platform()
    p.apply(yaml.safe_dump_all(docs))  # all at once: each waits for what it needs by itself
    nodes = {}
    for name in servers:
        p.wait_ready("server", name, timeout=120)
        (pod,) = p.items("pods", f"substratus.ai/kind=servers,substratus.ai/name={name}")
        nodes[name] = pod["spec"]["nodeName"]
        assert p.get("service", f"{name}-server") is not None
    assert nodes == {"facebook-opt-125m": "gpu-l4", "facebook-opt-125m-squad": "gpu-t4"}
