"""An upload build waits (``Built=False/AwaitingUpload``) until the uploader has verified the
tarball with the requested MD5, then builds it: here with the local executor, so the image that
comes out of the uploaded directory is real and read back from the registry."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile
from collections.abc import Callable

import httpx

from substratus_local.testing import eventually

from .builder_platform import BuilderPlatform, builder_platform_fixture  # noqa: F401  (the fixture)

ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
LOCAL = {"SUBSTRATUS_BUILDER_EXECUTOR": "local", "SUBSTRATUS_REGISTRY_INSECURE": "true"}


def _tarball(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def test_upload_build_waits_for_the_verified_upload(builder_platform: Callable[..., BuilderPlatform]) -> None:
    body = _tarball({"Dockerfile": b"FROM scratch\nCOPY data.txt /data.txt\n", "data.txt": b"uploaded\n"})
    md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
    p = builder_platform(builder_env=LOCAL, uploader=True)
    p.apply(
        f"""
apiVersion: substratus.ai/v1
kind: Dataset
metadata: {{name: up}}
spec:
  build:
    upload: {{md5Checksum: {md5.upper()}, requestID: r1}}
"""
    )
    waiting = p.wait_condition("dataset", "up", "AwaitingUpload")
    assert md5 in waiting["message"]

    def signed_url() -> str:
        upload = ((p.get("dataset", "up") or {}).get("status") or {}).get("buildUpload") or {}
        assert upload.get("signedURL"), upload
        return str(upload["signedURL"])

    url = eventually(signed_url, 60, "a signed upload URL")
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-MD5": base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode(),
    }
    assert httpx.put(url, content=body, headers=headers, timeout=30).status_code == 200

    built = p.wait_condition("dataset", "up", "JobComplete", timeout=120)
    assert built["status"] == "True"
    repository = f"local-dataset-{p.namespace}-up"
    dataset = p.get("dataset", "up")
    assert dataset is not None
    assert dataset["spec"]["image"] == f"{p.stack.registry}/{repository}:{md5}"

    # The uploader and the builder both report at the generation setting the image made.
    def both_current() -> bool:
        obj = p.get("dataset", "up") or {}
        generation = obj["metadata"]["generation"]
        for type_ in ("Uploaded", "Built"):
            condition = p.condition("dataset", "up", type_)
            assert condition.get("status") == "True", condition
            assert condition.get("observedGeneration") == generation, condition
        return True

    eventually(both_current, 60, "Uploaded and Built at the current generation")

    registry = f"http://{p.stack.registry}/v2/{repository}"
    manifest = httpx.get(f"{registry}/manifests/{md5}", headers={"Accept": ACCEPT}, timeout=10)
    assert manifest.status_code == 200, manifest.text
    (layer,) = manifest.json()["layers"]
    blob = httpx.get(f"{registry}/blobs/{layer['digest']}", timeout=10, follow_redirects=True)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.content))) as tar:
        member = tar.extractfile("data.txt")
        assert member is not None
        assert member.read() == b"uploaded\n"
