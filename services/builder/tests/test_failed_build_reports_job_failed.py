"""A build whose Pod fails (kwok's ``substratus.dev/simulate: fail``, passed through from the
resource) reports ``Built=False/JobFailed`` with the Job's and the container's reason, never a silent
stall, and the resource is not ready."""

from __future__ import annotations

from collections.abc import Callable

from .builder_platform import BuilderPlatform, builder_platform_fixture  # noqa: F401  (the fixture)

DATASET = """
apiVersion: substratus.ai/v1
kind: Dataset
metadata:
  name: broken
  annotations: {substratus.dev/simulate: fail}
spec:
  build:
    git: {url: https://github.com/substratusai/images, path: dataset-loader, branch: main}
"""


def test_failed_build_reports_job_failed(builder_platform: Callable[..., BuilderPlatform]) -> None:
    p = builder_platform(builder_env={"SUBSTRATUS_BUILD_BACKOFF_LIMIT": "0"})
    p.apply(DATASET)
    failed = p.wait_condition("dataset", "broken", "JobFailed", timeout=90)
    assert failed["status"] == "False"
    message = failed["message"]
    assert "build Job broken-dataset-bld failed (BackoffLimitExceeded" in message
    assert "container build exited with code 1" in message
    assert "simulated failure" in message  # the Pod's container message
    assert "change spec.build to build again" in message
    dataset = p.get("dataset", "broken")
    assert dataset is not None
    assert "image" not in dataset["spec"]
    assert dataset["status"]["ready"] is False
    job = p.get("job", "broken-dataset-bld")
    assert job is not None
    assert job["spec"]["template"]["metadata"]["annotations"]["substratus.dev/simulate"] == "fail"
