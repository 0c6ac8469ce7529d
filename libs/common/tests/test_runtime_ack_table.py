"""The error → ack table (runtime.acks, docs/adr/101): one test per row."""

from __future__ import annotations

import msgspec
import pytest

from substratus_common import errors
from substratus_common.bus.errors import BusConfigError, BusError
from substratus_common.kube import errors as kube_errors
from substratus_common.runtime import acks
from substratus_common.storage import errors as storage_errors


def test_success_acks() -> None:
    assert acks.verdict(None, attempt=1, max_attempts=8) == acks.Verdict(acks.Action.ACK)


def test_a_permanent_error_gives_up_with_its_own_reason_and_message() -> None:
    error = errors.PermanentError("spec.params.x: must be a number", reason="Invalid")
    assert acks.verdict(error, 1, 8) == acks.Verdict(acks.Action.GIVE_UP, "Invalid", "spec.params.x: must be a number")
    quota = errors.PermanentError("over quota", reason="QuotaExceeded")
    assert acks.verdict(quota, 1, 8).reason == "QuotaExceeded"


@pytest.mark.parametrize(
    "error",
    [
        kube_errors.Forbidden("jobs.batch is forbidden: User cannot create", status=403),
        storage_errors.StorageRefused("put artifacts/x: 403 AccessDenied", status=403),
    ],
)
def test_a_kube_forbidden_or_storage_refusal_gives_up_as_forbidden_at_the_first_attempt(error: Exception) -> None:
    assert error.retryable is False  # type: ignore[attr-defined]
    assert acks.verdict(error, 1, 8) == acks.Verdict(acks.Action.GIVE_UP, "Forbidden", str(error))


@pytest.mark.parametrize(
    "error",
    [
        kube_errors.Invalid("Job.batch is invalid: spec.template: Required value", status=422),
        kube_errors.NotFound("namespaces x not found", status=404),
        BusConfigError("consumer trainer on SUBSTRATUS_CHANGES: filter subjects overlap"),
    ],
)
def test_any_other_error_that_is_not_retryable_gives_up_as_invalid_at_the_first_attempt(error: Exception) -> None:
    verdict = acks.verdict(error, 1, 8)
    assert (verdict.action, verdict.reason) == (acks.Action.GIVE_UP, "Invalid")
    assert verdict.message == str(error)


def test_data_that_does_not_decode_is_dead_at_once() -> None:
    try:
        msgspec.json.decode(b"[1]", type=dict[str, int])
    except msgspec.ValidationError as error:
        verdict = acks.verdict(error, 1, 8)
    assert (verdict.action, verdict.dead_reason, verdict.reason) == (acks.Action.DEAD, "undecodable", "Invalid")


def test_a_temporary_error_with_a_delay_is_retried_after_that_delay() -> None:
    verdict = acks.verdict(errors.TemporaryError("Dataset not uploaded yet", delay_s=7.5), 3, 8)
    assert verdict == acks.Verdict(acks.Action.RETRY, delay_s=7.5)


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("boom"),
        kube_errors.APIUnavailable("500 Internal Server Error", status=500),
        errors.TemporaryError("not yet"),
    ],
)
def test_anything_else_is_retried_with_the_keys_backoff(error: Exception) -> None:
    assert acks.verdict(error, 7, 8) == acks.Verdict(acks.Action.RETRY, delay_s=None)


@pytest.mark.parametrize("error", [RuntimeError("boom"), errors.TemporaryError("not yet", delay_s=1)])
def test_a_retry_on_the_last_allowed_attempt_is_dead_with_reconcile_failed(error: Exception) -> None:
    verdict = acks.verdict(error, 8, 8)
    assert (verdict.action, verdict.reason, verdict.dead_reason) == (
        acks.Action.DEAD,
        "ReconcileFailed",
        "max-deliveries",
    )
    assert verdict.message.startswith("gave up after 8 attempts: ")


@pytest.mark.parametrize(
    "error",
    [
        BusError("publishing to substratus.status.models.ns.m failed: nats: timeout"),
        kube_errors.APIUnavailable("GET /apis/batch/v1/jobs: ClientConnectorError(...)"),
        kube_errors.from_http(429, "Too Many Requests", b""),
        kube_errors.from_http(503, "Service Unavailable", b""),
    ],
)
def test_an_outage_is_retried_without_using_up_an_attempt(error: Exception) -> None:
    assert errors.is_outage(error)
    assert acks.verdict(error, 8, 8) == acks.Verdict(acks.Action.RETRY, counted=False)
    # Past the consumer's allowance an outage counts like any failure: every retry is bounded.
    assert acks.verdict(error, 8, 8, outage_free=False).action is acks.Action.DEAD


def test_a_500_is_not_an_outage_it_may_stay_broken() -> None:
    error = kube_errors.from_http(500, "Internal Server Error", b"")
    assert not errors.is_outage(error)
    assert acks.verdict(error, 8, 8).action is acks.Action.DEAD


def test_a_retry_after_from_the_api_server_is_the_least_wait_of_the_next_pass() -> None:
    throttled = kube_errors.from_http(429, "Too Many Requests", b"", retry_after="3")
    assert throttled.retry_after_s == 3.0
    assert acks.verdict(throttled, 1, 8) == acks.Verdict(acks.Action.RETRY, counted=False, at_least_s=3.0)
    # A Status body that says it (details.retryAfterSeconds) counts when the header is missing.
    body = b'{"kind":"Status","code":429,"reason":"TooManyRequests","details":{"retryAfterSeconds":2}}'
    assert kube_errors.from_http(429, "Too Many Requests", body).retry_after_s == 2.0
    assert kube_errors.from_http(429, "Too Many Requests", b"", retry_after="soon").retry_after_s is None
    assert kube_errors.from_http(503, "Unavailable", b"", retry_after="86400").retry_after_s == 300.0
