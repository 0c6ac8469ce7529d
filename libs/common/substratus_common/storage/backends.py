"""The storage backend for ``settings.bucket_url``: ``s3://bucket``, ``gs://bucket`` or ``file:///dir``.

The S3 and GCS clients are imported when one is made: aioboto3 alone is some 40 MiB and a second
of CPU in every process that imports the runtime, most of which never touch storage.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from substratus_common import config
from substratus_common.storage import base, local


def from_settings(settings: config.Settings) -> base.Storage:
    """The backend for the configured bucket; ValueError for a URL we cannot use."""
    parts = urlsplit(settings.bucket_url)
    if parts.scheme in ("s3", "gs"):
        if not parts.netloc or parts.path.strip("/"):
            raise ValueError(f"bucket_url must be {parts.scheme}://<bucket>, not {settings.bucket_url!r}")
        if parts.scheme == "s3":
            from substratus_common.storage import s3  # imported here: see the docstring

            return s3.S3Storage(
                parts.netloc,
                endpoint_url=settings.s3_endpoint_url,
                region=settings.s3_region,
                public_endpoint_url=settings.s3_public_endpoint_url,
            )
        from substratus_common.storage import gcs  # imported here: see the docstring

        return gcs.GCSStorage(parts.netloc, endpoint_url=settings.gcs_endpoint_url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(f"bucket_url must be file:///<absolute dir>, not {settings.bucket_url!r}")
        return local.LocalStorage(Path(unquote(parts.path)))
    raise ValueError(f"bucket_url must start with s3://, gs:// or file://, not {settings.bucket_url!r}")
