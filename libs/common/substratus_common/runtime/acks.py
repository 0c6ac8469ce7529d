"""The one table from what a pass over a key raised to what happens to it (docs/adr/101).

| raised | verdict |
| --- | --- |
| nothing | ``ACK``: the key's messages are acked (once every key they routed to has passed) |
| :class:`errors.PermanentError` | ``GIVE_UP`` with the error's reason and message |
| ``retryable`` is False, kube ``Forbidden`` or ``StorageRefused`` | ``GIVE_UP``, reason ``Forbidden`` |
| ``retryable`` is False, anything else | ``GIVE_UP``, reason ``Invalid`` |
| data that does not decode (msgspec) | ``DEAD`` at once (``undecodable``), reason ``Invalid`` |
| an outage (``errors.is_outage``: NATS away, API down, 429, 502-504) | ``RETRY``, backoff, uncounted |
| any ``RETRY`` whose error carries ``Retry-After`` | the next pass waits at least that long |
| :class:`errors.TemporaryError` with ``delay_s`` | ``RETRY`` after that delay |
| anything else (``TemporaryError`` without a delay too) | ``RETRY`` after the key's growing backoff |
| a ``RETRY`` on the last allowed attempt | ``DEAD`` (``max-deliveries``), reason ``ReconcileFailed`` |

``GIVE_UP``: the failure is reported on the key's resource and its messages are terminated.
``DEAD``: the messages go to SUBSTRATUS_DEAD first. Pure: the consumer does the I/O.
"Uncounted": the attempt does not use up ``max_attempts``, while the consumer allows (its
``max_outage_retries`` per key).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import msgspec

from substratus_common import errors
from substratus_common.api.types import Reason
from substratus_common.kube import errors as kube_errors
from substratus_common.storage import errors as storage_errors


class Action(enum.Enum):
    ACK = "ack"
    RETRY = "retry"
    GIVE_UP = "give-up"
    DEAD = "dead"


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str = ""
    """Condition reason to report (GIVE_UP, DEAD)."""
    message: str = ""
    """What the user reads on the condition (GIVE_UP, DEAD)."""
    delay_s: float | None = None
    """RETRY: the error's own delay; None means the key's backoff."""
    dead_reason: str = ""
    """DEAD: the dead letter's reason (``max-deliveries``, ``undecodable``)."""
    counted: bool = True
    """RETRY: whether this attempt uses up one of the key's ``max_attempts`` (an outage does not)."""
    at_least_s: float = 0.0
    """RETRY: the next pass waits at least this long (the server's ``Retry-After``), whatever the
    key's backoff says."""


ACK = Verdict(Action.ACK)


def message_of(error: BaseException) -> str:
    return str(getattr(error, "message", None) or error or type(error).__name__)


def refusal_reason(error: BaseException) -> str:
    """The condition reason of an error that retrying cannot fix."""
    if isinstance(error, errors.PermanentError):
        return error.reason
    if isinstance(error, kube_errors.Forbidden | storage_errors.StorageRefused):
        return Reason.FORBIDDEN.value
    return Reason.INVALID.value


def verdict(error: BaseException | None, attempt: int, max_attempts: int, *, outage_free: bool = True) -> Verdict:
    """What to do after attempt number ``attempt`` (1 for the first) of at most ``max_attempts``;
    ``outage_free``: whether the consumer still lets an outage retry go uncounted."""
    if error is None:
        return ACK
    if isinstance(error, msgspec.DecodeError | msgspec.ValidationError):
        return Verdict(Action.DEAD, Reason.INVALID.value, f"data does not decode: {error}", dead_reason="undecodable")
    if isinstance(error, errors.PermanentError) or not errors.is_retryable(error):
        return Verdict(Action.GIVE_UP, refusal_reason(error), message_of(error))
    if outage_free and errors.is_outage(error):
        return Verdict(Action.RETRY, counted=False, at_least_s=retry_after(error))
    if attempt >= max_attempts:
        return Verdict(
            Action.DEAD,
            Reason.RECONCILE_FAILED.value,
            f"gave up after {attempt} attempts: {message_of(error)}",
            dead_reason="max-deliveries",
        )
    delay = error.delay_s if isinstance(error, errors.TemporaryError) else None
    return Verdict(Action.RETRY, delay_s=delay, at_least_s=retry_after(error))


def retry_after(error: BaseException) -> float:
    """How long the server asked us to wait (``Retry-After``), 0 when it did not."""
    return float(getattr(error, "retry_after_s", None) or 0.0)
