"""A Job that fails gives JobFailed with the reason from the Job and its Pod; editing the spec runs
it again (a new Job replaces the old one) and the Model becomes ready."""

from __future__ import annotations

from collections.abc import Callable

from .trainer_platform import Platform, platform_fixture  # noqa: F401  (the fixture)

FAILING = """
apiVersion: substratus.ai/v1
kind: Model
metadata:
  name: flaky
  annotations: {substratus.dev/simulate: fail}
spec:
  image: substratusai/model-loader-huggingface
  params: {name: facebook/opt-125m}
"""


def test_failed_job_reports_why_and_an_edit_runs_it_again(platform: Callable[..., Platform]) -> None:
    p = platform(trainer_env={"SUBSTRATUS_JOB_BACKOFF_LIMIT": "0"})
    p.apply(FAILING)
    failed = p.wait_reason("model", "flaky", "JobFailed", timeout=90)
    assert failed["status"] == "False"
    assert "Job flaky-modeller failed" in failed["message"]
    assert "BackoffLimitExceeded" in failed["message"]
    assert "simulated failure" in failed["message"]  # the Pod's container message
    assert p.ready("model", "flaky") is False
    (old,) = p.items("jobs")

    # The user fixes the cause and edits the spec: a new run, no other action.
    p.stack.kubectl("annotate", "model", "flaky", "substratus.dev/simulate-", "-n", p.namespace)
    p.stack.kubectl(
        "patch", "model", "flaky", "-n", p.namespace, "--type=merge", "-p", '{"spec":{"params":{"name":"opt-350m"}}}'
    )
    model = p.wait_ready("model", "flaky", timeout=90)
    assert model["metadata"]["generation"] == 2
    (new,) = p.items("jobs")
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    assert new["metadata"]["annotations"]["substratus.ai/generation"] == "2"
    env = new["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "PARAM_NAME", "value": "opt-350m"} in env
