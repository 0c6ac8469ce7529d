"""A directory with a file past the multipart threshold goes to the stack's SeaweedFS and comes back
byte-identical, through the same settings and credentials a workload's helper gets."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import boto3
import pytest

from substratus_common import config
from substratus_common.storage import s3, transfer
from substratus_local.stack import BUCKET, Stack


@pytest.fixture
def settings(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> config.Settings:
    for name, value in stack.env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)  # the helper's credentials come from env, as in a Pod
    return config.Settings(
        bucket_url=stack.env["SUBSTRATUS_BUCKET_URL"], s3_endpoint_url=stack.env["SUBSTRATUS_S3_ENDPOINT_URL"]
    )


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


async def test_a_large_file_goes_up_in_parts_and_comes_back_identical(
    stack: Stack, settings: config.Settings, tmp_path: Path
) -> None:
    source = tmp_path / "artifacts"
    (source / "model").mkdir(parents=True)
    (source / "model" / "weights.safetensors").write_bytes(secrets.token_bytes(2 * s3.MULTIPART_BYTES + 12345))
    (source / "model" / "config.json").write_text('{"layers": 2}')
    (source / "README.md").write_text("# run\n")
    url = f"s3://{BUCKET}/{secrets.token_hex(8)}/artifacts"

    store, prefix = transfer.storage_for(url, settings)
    try:
        up = await transfer.upload_dir(store, source, prefix)
        assert up.files == 3
        info = await store.stat(f"{prefix}/model/weights.safetensors")
        assert info is not None
        assert info.size == 2 * s3.MULTIPART_BYTES + 12345
        down = await transfer.download_prefix(store, prefix, tmp_path / "back")
        assert down.files == 3
    finally:
        await store.close()
    assert _digests(tmp_path / "back") == _digests(source)
    # A multipart object's ETag is "<md5 of the parts' md5s>-<parts>", not the body's MD5.
    head = boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id=stack.state.s3_access_key,
        aws_secret_access_key=stack.state.s3_secret_key,
        region_name="us-east-1",
    ).head_object(Bucket=BUCKET, Key=f"{prefix}/model/weights.safetensors")
    assert head["ETag"].strip('"').endswith("-3"), head["ETag"]
