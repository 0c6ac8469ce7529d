"""With ``SUBSTRATUS_BUILDER_EXECUTOR=local`` (as ``make up`` runs it) a directory with a
``Containerfile`` (``FROM scratch`` and a ``COPY``) is really built by buildah, pushed to the stack's
registry, and the pushed manifest and its layer are read back from the registry's HTTP API."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import httpx

from .builder_platform import BuilderPlatform, builder_platform_fixture, git_repository  # noqa: F401

ACCEPT = ", ".join(
    ["application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"]
)
LOCAL = {"SUBSTRATUS_BUILDER_EXECUTOR": "local", "SUBSTRATUS_REGISTRY_INSECURE": "true"}


def test_local_executor_pushes_a_real_image(builder_platform: Callable[..., BuilderPlatform], tmp_path: Path) -> None:
    url = git_repository(
        tmp_path / "repo",
        {"images/hello/Containerfile": "FROM scratch\nCOPY hello.txt /hello.txt\n", "images/hello/hello.txt": "hi\n"},
        tag="v1",
    )
    p = builder_platform(builder_env=LOCAL)
    p.apply(
        f"""
apiVersion: substratus.ai/v1
kind: Model
metadata: {{name: hello}}
spec:
  build:
    git: {{url: "{url}", path: images/hello, tag: v1}}
"""
    )
    repository = f"local-model-{p.namespace}-hello"
    built = p.wait_condition("model", "hello", "JobComplete", timeout=120)
    assert built["status"] == "True"
    model = p.get("model", "hello")
    assert model is not None
    assert model["spec"]["image"] == f"{p.stack.registry}/{repository}:v1"
    assert built["observedGeneration"] == model["metadata"]["generation"]
    assert p.items("jobs") == []  # nothing ran in the cluster

    registry = f"http://{p.stack.registry}/v2/{repository}"
    response = httpx.get(f"{registry}/manifests/v1", headers={"Accept": ACCEPT}, timeout=10)
    assert response.status_code == 200, response.text
    manifest = response.json()
    (layer,) = manifest["layers"]
    blob = httpx.get(f"{registry}/blobs/{layer['digest']}", timeout=10, follow_redirects=True)
    assert blob.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.content))) as tar:
        member = tar.extractfile("hello.txt")
        assert member is not None
        assert member.read() == b"hi\n"
