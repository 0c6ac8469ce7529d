"""Where a resource's artifacts and uploads live in the bucket (deterministic, cluster-scoped).

``<bucket>/<md5("clusters/<cluster>/namespaces/<ns>/<plural>/<name>")>/artifacts``: re-applying the
same manifest in a new cluster with the same name re-attaches its data. Uploads of a build context
go to ``<same>/uploads/<md5 of the tarball>.tar.gz``.
"""

from __future__ import annotations

import hashlib
import re

_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")


def resource_prefix(cluster: str, namespace: str, plural: str, name: str) -> str:
    """The hashed key prefix of one resource (no slashes at either end)."""
    path = f"clusters/{cluster}/namespaces/{namespace}/{plural}/{name}"
    return hashlib.md5(path.encode(), usedforsecurity=False).hexdigest()


def artifacts_key(cluster: str, namespace: str, plural: str, name: str) -> str:
    """Key prefix of the artifacts inside the bucket."""
    return f"{resource_prefix(cluster, namespace, plural, name)}/artifacts"


def upload_key(cluster: str, namespace: str, plural: str, name: str, md5_hex: str) -> str:
    """Key of an uploaded build context whose MD5 (hex) is ``md5_hex``."""
    if not _MD5_HEX.match(md5_hex):
        raise ValueError(f"md5 must be 32 lowercase hex characters, not {md5_hex!r}")
    return f"{resource_prefix(cluster, namespace, plural, name)}/uploads/{md5_hex}.tar.gz"


def join_url(bucket_url: str, key: str) -> str:
    """``s3://bucket`` + ``a/b`` → ``s3://bucket/a/b``."""
    return f"{bucket_url.rstrip('/')}/{key.lstrip('/')}"


def artifacts_url(bucket_url: str, cluster: str, namespace: str, plural: str, name: str) -> str:
    """The ``status.artifacts.url`` of a resource, e.g. ``s3://substratus/<md5>/artifacts``."""
    return join_url(bucket_url, artifacts_key(cluster, namespace, plural, name))
