"""A git build on the stack (kwok completes the build Pod): the build Job clones the tag and runs
Kaniko with the expected arguments, then ``spec.image`` is set, ``Built=True``, and the Model goes on
to its modeller Job with that image and becomes ready."""

from __future__ import annotations

import json
from collections.abc import Callable

from .builder_platform import BuilderPlatform, builder_platform_fixture  # noqa: F401  (the fixture)

MODEL = """
apiVersion: substratus.ai/v1
kind: Model
metadata:
  name: loader
  annotations: {substratus.dev/simulate-delay: 3s}
spec:
  build:
    git:
      url: https://github.com/substratusai/images
      path: model-loader-huggingface
      tag: v0.1.0
  params: {name: facebook/opt-125m}
"""


def test_git_build_sets_the_image_and_the_model_runs(builder_platform: Callable[..., BuilderPlatform]) -> None:
    p = builder_platform(trainer=True)
    p.apply(MODEL)
    image = f"{p.stack.registry}/local-model-{p.namespace}-loader:v0.1.0"

    # While the build runs, the trainer waits for the image and says so.
    running = p.wait_condition("model", "loader", "JobNotComplete")
    assert "kubectl logs -f job/loader-model-bld" in running["message"]
    waiting = p.wait_condition("model", "loader", "JobNotComplete", type_="Complete")
    assert "waiting for the image" in waiting["message"]

    job = p.get("job", "loader-model-bld")
    assert job is not None
    pod = job["spec"]["template"]["spec"]
    (clone,) = pod["initContainers"]
    assert [*clone["command"], *clone["args"]] == [
        "git",
        "clone",
        "--depth=1",
        "--single-branch",
        "--branch=v0.1.0",
        "--",
        "https://github.com/substratusai/images",
        "/workspace/source",
    ]
    (kaniko,) = pod["containers"]
    assert kaniko["image"].startswith("ghcr.io/osscontainertools/kaniko:v")
    assert kaniko["args"] == [
        "--context=dir:///workspace/source/model-loader-huggingface",
        "--dockerfile=Dockerfile",
        f"--destination={image}",
    ]

    model = p.wait_ready("model", "loader", timeout=120)
    assert model["spec"]["image"] == image
    built = p.condition("model", "loader")
    assert (built["status"], built["reason"]) == ("True", "JobComplete")
    assert built["observedGeneration"] == model["metadata"]["generation"] == 2  # setting the image is generation 2
    fields = p.stack.kubectl(
        "get", "model", "loader", "-n", p.namespace, "--show-managed-fields", "-o", "jsonpath={.metadata.managedFields}"
    )
    owners = {f["manager"] for f in json.loads(fields.stdout) if '"f:image"' in json.dumps(f.get("fieldsV1"))}
    assert owners == {"substratus-builder"}

    modeller = p.get("job", "loader-modeller")
    assert modeller is not None
    assert modeller["spec"]["template"]["spec"]["containers"][0]["image"] == image
