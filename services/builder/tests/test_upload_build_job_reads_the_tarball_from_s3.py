"""With the Job executor an upload build creates no Job until the uploader verified the tarball; then
the build Job gives Kaniko the stored tarball as an ``s3://`` context with SeaweedFS's endpoint and
path-style addressing, and kwok's completed Pod sets ``spec.image`` to ``…:<md5>``."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import httpx

from substratus_common.api import artifacts
from substratus_local.testing import eventually

from .builder_platform import BuilderPlatform, builder_platform_fixture  # noqa: F401  (the fixture)


def test_upload_build_job_reads_the_tarball_from_s3(builder_platform: Callable[..., BuilderPlatform]) -> None:
    body = b"\x1f\x8b not really a tarball: kwok runs no container " + bytes(range(256))
    md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
    p = builder_platform(uploader=True)
    p.apply(
        f"""
apiVersion: substratus.ai/v1
kind: Server
metadata: {{name: srv}}
spec:
  build:
    upload: {{md5Checksum: {md5}, requestID: r1}}
  model: {{name: m}}
"""
    )
    p.wait_condition("server", "srv", "AwaitingUpload")
    p.wait_builder_handled("servers", "srv")
    assert p.get("job", "srv-server-bld") is None

    def signed_url() -> str:
        upload = ((p.get("server", "srv") or {}).get("status") or {}).get("buildUpload") or {}
        assert upload.get("signedURL"), upload
        return str(upload["signedURL"])

    url = eventually(signed_url, 60, "a signed upload URL")
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-MD5": base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode(),
    }
    assert httpx.put(url, content=body, headers=headers, timeout=30).status_code == 200

    built = p.wait_condition("server", "srv", "JobComplete", timeout=120)
    assert built["status"] == "True"
    server = p.get("server", "srv")
    assert server is not None
    assert server["spec"]["image"] == f"{p.stack.registry}/local-server-{p.namespace}-srv:{md5}"
    job = p.get("job", "srv-server-bld")
    assert job is not None
    (kaniko,) = job["spec"]["template"]["spec"]["containers"]
    key = artifacts.upload_key("local", p.namespace, "servers", "srv", md5)
    assert f"--context=s3://substratus/{key}" in kaniko["args"]
    env = {e["name"]: e["value"] for e in kaniko["env"]}
    assert env["S3_ENDPOINT"] == p.stack.s3_endpoint
    assert env["S3_FORCE_PATH_STYLE"] == "true"
