"""Object storage for artifacts and uploads: one interface, three backends.

- :mod:`.base`: the :class:`~.base.Storage` protocol, :class:`~.base.ObjectInfo` and
  :class:`~.base.SignedPut` (whose ``repr`` never shows the URL), and MD5 helpers.
- :mod:`.backends`: ``backends.from_settings(settings)`` picks the backend from
  ``settings.bucket_url`` (``s3://``, ``gs://``, ``file://``).
- :mod:`.s3` (aioboto3, any S3 endpoint), :mod:`.gcs` (gcloud-aio-storage, V4 signing),
  :mod:`.local` (a directory, for tests).
- :mod:`.errors`: every transport error translated once into retryable or permanent.
- :mod:`.transfer`: a directory to and from a key prefix (``upload_dir``, ``download_prefix``),
  bounded concurrency and retries, and ``storage_for(url)`` for ``s3://bucket/prefix`` URLs.
- :mod:`.helper`: the ``substratus-storage`` console script of portable workload Pods
  (``download`` in an init container, ``upload-on-exit`` in a native sidecar; docs/adr/053).

Signed URLs are secrets for their lifetime: nothing in this package logs them or puts them in an
exception message.
"""
