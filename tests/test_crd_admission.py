"""The real API server refuses invalid specs with a message naming the field, and accepts every example.

Runs against the local stack (the ``stack`` fixture installs deploy/crds at start).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from substratus_common.api import resources, types
from substratus_local.stack import Stack

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
UPLOAD = {"md5Checksum": "0123456789abcdef0123456789abcdef", "requestID": "r1"}
GIT = {"url": "https://github.com/substratusai/images", "path": "base"}


def _doc(kind: str, spec: dict[str, Any] | None, name: str = "bad") -> str:
    obj: dict[str, Any] = {"apiVersion": "substratus.ai/v1", "kind": kind, "metadata": {"name": name}}
    if spec is not None:
        obj["spec"] = spec
    return json.dumps(obj)


# (what, manifest, field path and words the API server's message must contain)
INVALID = [
    (
        "git and upload",
        _doc("Model", {"build": {"git": GIT, "upload": UPLOAD}}),
        ["spec.build", types.MSG_BUILD_ONE_OF],
    ),
    ("empty build", _doc("Dataset", {"build": {}}), ["spec.build", types.MSG_BUILD_ONE_OF]),
    (
        "tag and branch",
        _doc("Model", {"build": {"git": {**GIT, "tag": "v1", "branch": "main"}}}),
        ["spec.build.git", types.MSG_GIT_TAG_OR_BRANCH],
    ),
    ("neither image nor build", _doc("Dataset", {"params": {"a": 1}}), ["spec.image", types.MSG_IMAGE_OR_BUILD]),
    ("no spec", _doc("Model", None), ["spec", "Required value"]),
    ("negative cpu", _doc("Model", {"image": "i", "resources": {"cpu": -1}}), ["spec.resources.cpu", "0"]),
    ("negative memory", _doc("Notebook", {"image": "i", "resources": {"memory": -4}}), ["spec.resources.memory"]),
    ("negative disk", _doc("Dataset", {"image": "i", "resources": {"disk": -1}}), ["spec.resources.disk"]),
    (
        "negative gpu count",
        _doc(
            "Server", {"image": "i", "model": {"name": "m"}, "resources": {"gpu": {"type": "nvidia-l4", "count": -1}}}
        ),
        ["spec.resources.gpu.count"],
    ),
    ("empty model name", _doc("Server", {"image": "i", "model": {"name": ""}}), ["spec.model.name"]),
    ("server without model", _doc("Server", {"image": "i"}), ["spec.model", "Required value"]),
    ("bad dataset name", _doc("Model", {"image": "i", "dataset": {"name": "Not_A_Name"}}), ["spec.dataset.name"]),
    ("empty git url", _doc("Model", {"build": {"git": {"url": ""}}}), ["spec.build.git.url"]),
    ("git without url", _doc("Model", {"build": {"git": {"path": "x"}}}), ["spec.build.git.url", "Required value"]),
    (
        "bad md5",
        _doc("Notebook", {"build": {"upload": {**UPLOAD, "md5Checksum": "not-an-md5"}}}),
        ["spec.build.upload.md5Checksum"],
    ),
    ("float param", _doc("Model", {"image": "i", "params": {"lr": 0.5}}), ["spec.params.lr"]),
    ("suspend not a bool", _doc("Notebook", {"image": "i", "suspend": "yes"}), ["spec.suspend", "boolean"]),
    ("name too long", _doc("Notebook", {"image": "i"}, name="n" * 51), ["metadata.name", "at most 50"]),
    ("253-character name", _doc("Model", {"image": "i"}, name="n" * 253), ["metadata.name", "at most 53"]),
    (
        "10,000 params",
        _doc("Model", {"image": "i", "params": {f"p{i}": i for i in range(10_000)}}),
        ["spec.params", "must have at most 1000 items"],
    ),
    (
        "a reference into another namespace",
        _doc("Server", {"image": "i", "model": {"name": "m", "namespace": "other"}}),
        ['unknown field "spec.model.namespace"'],
    ),
]


def _example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


@pytest.mark.parametrize(("manifest", "expected"), [(c[1], c[2]) for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_manifest_is_refused_naming_the_field(
    stack: Stack, namespace: str, manifest: str, expected: list[str]
) -> None:
    result = stack.kubectl("create", "--dry-run=server", "-n", namespace, "-f", "-", input=manifest, check=False)
    assert result.returncode != 0, f"accepted: {manifest}"
    for words in expected:
        assert words in result.stderr, result.stderr


@pytest.mark.parametrize("path", _example_files(), ids=lambda p: p.name)
def test_example_applies_unchanged(stack: Stack, namespace: str, path: Path) -> None:
    result = stack.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path), "-o", "json")
    # Nothing the example says may be pruned or defaulted away by the API server.
    items = json.loads(result.stdout)
    applied = items["items"] if items.get("kind") == "List" else [items]
    for doc, live in zip([d for d in yaml.safe_load_all(path.read_text()) if d], applied, strict=True):
        assert live["spec"] == doc["spec"], doc["metadata"]["name"]


def test_examples_are_listed_under_category_ai(stack: Stack, namespace: str) -> None:
    for path in _example_files():
        stack.kubectl("apply", "-n", namespace, "-f", str(path))
    listed = set(stack.kubectl("get", "ai", "-n", namespace, "-o", "name").stdout.split())
    expected = {
        f"{resources.kind_info(d['kind']).singular}.substratus.ai/{d['metadata']['name']}"
        for p in _example_files()
        for d in yaml.safe_load_all(p.read_text())
        if d
    }
    assert listed == expected


def test_status_subresource_round_trips_and_shows_in_columns(stack: Stack, namespace: str) -> None:
    stack.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "notebook-opt-125m.yaml"))
    name = "facebook-opt-125m-squad"
    status = {
        "ready": False,
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Serving",
                "status": "False",
                "reason": "ModelNotReady",
                "message": "waiting for Model facebook-opt-125m-squad",
                "lastTransitionTime": "2024-05-01T10:00:00Z",
                "observedGeneration": 1,
            },
            # The status writer keeps Ready naming what blocks readiness; STATUS shows it (ADR 120).
            {
                "type": "Ready",
                "status": "False",
                "reason": "ModelNotReady",
                "message": "waiting for Model facebook-opt-125m-squad",
                "lastTransitionTime": "2024-05-01T10:00:00Z",
                "observedGeneration": 1,
            },
        ],
        "artifacts": {"url": "s3://bucket/x/artifacts"},
        "buildUpload": {
            "signedURL": "https://s3.example/put",
            "requestID": "r1",
            "expiration": "2024-05-01T10:15:00Z",
            "storedMD5Checksum": "0123456789abcdef0123456789abcdef",
        },
    }
    stack.kubectl(
        "patch", "notebook", name, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip
    live = json.loads(stack.kubectl("get", "notebook", name, "-n", namespace, "-o", "json").stdout)
    notebook = resources.parse(live)
    assert isinstance(notebook, resources.Notebook)
    assert notebook.spec.suspend is False  # false is kept, not dropped as unset
    assert notebook.status is not None
    assert resources.to_dict(notebook.status) == status

    table = stack.kubectl("get", "notebook", name, "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "STATUS", "IMAGE", "AGE"]
    assert table[1].split()[:4] == [name, "false", "ModelNotReady", "substratusai/base"]
