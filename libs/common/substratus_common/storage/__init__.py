"""Object storage for artifacts and uploads: one interface, three backends.

- :mod:`.base`: the :class:`~.base.Storage` protocol, :class:`~.base.ObjectInfo` and
  :class:`~.base.SignedPut` (whose ``repr`` never shows the URL), and MD5 helpers.
- :mod:`.backends`: ``backends.from_settings(settings)`` picks the backend from
  ``settings.bucket_url`` (``s3://``, ``gs://``, ``file://``).
- :mod:`.s3` (aioboto3, any S3 endpoint), :mod:`.gcs` (gcloud-aio-storage, V4 signing),
  :mod:`.local` (a directory, for tests).
- :mod:`.errors`: every transport error translated once into retryable or permanent.

Signed URLs are secrets for their lifetime: nothing in this package logs them or puts them in an
exception message.
"""
