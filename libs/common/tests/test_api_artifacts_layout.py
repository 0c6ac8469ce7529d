import hashlib

import pytest

from substratus_common.api import artifacts


def test_artifacts_url_is_the_md5_of_the_cluster_scoped_path() -> None:
    digest = hashlib.md5(b"clusters/prod/namespaces/team-a/models/llama").hexdigest()
    assert artifacts.artifacts_url("s3://bkt/", "prod", "team-a", "models", "llama") == f"s3://bkt/{digest}/artifacts"


def test_same_name_in_another_cluster_gets_another_prefix() -> None:
    a = artifacts.artifacts_key("one", "ns", "datasets", "d")
    b = artifacts.artifacts_key("two", "ns", "datasets", "d")
    assert a != b


def test_upload_key_sits_beside_the_artifacts() -> None:
    md5 = "0" * 32
    key = artifacts.upload_key("c", "ns", "models", "m", md5)
    assert key == f"{artifacts.resource_prefix('c', 'ns', 'models', 'm')}/uploads/{md5}.tar.gz"


def test_upload_key_refuses_something_that_is_not_an_md5() -> None:
    with pytest.raises(ValueError, match="md5 must be 32"):
        artifacts.upload_key("c", "ns", "models", "m", "../../etc/passwd")
