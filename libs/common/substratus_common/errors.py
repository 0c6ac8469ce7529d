"""What a handler raises, and what the runtime does with it (kopf / Temporal style).

The one table from error to ack is ``runtime/acks.py`` (docs/adr/101):

- :class:`PermanentError`: the user must change something. The runtime reports a condition with
  ``reason`` and ``message`` on the resource and terminates its messages (no redelivery).
- any other error whose ``retryable`` is False (kube ``Forbidden``/``Invalid``, storage refusals):
  the same, at the first attempt, with the reason ``Forbidden`` or ``Invalid``.
- :class:`TemporaryError`: another pass after ``delay_s`` (or after the key's growing backoff).
- an outage (``outage`` True: NATS or the API server unreachable, 429, 502-504): the key's growing
  backoff, without counting towards the max deliveries (up to ``max_outage_retries``).
- anything else (API 500, storage trouble, the unexpected): the key's growing backoff, then
  SUBSTRATUS_DEAD and ``ReconcileFailed`` after the consumer's max deliveries.
"""

from __future__ import annotations


class PermanentError(Exception):
    """Retrying cannot help; ``reason`` is a condition reason (CamelCase), ``message`` says what to fix."""

    retryable = False

    def __init__(self, message: str, *, reason: str = "Invalid", condition: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.condition = condition
        """The condition type to report on; the service's main condition when None."""


class TemporaryError(Exception):
    """Something outside us is not ready yet; the message comes back after ``delay_s``."""

    retryable = True

    def __init__(self, message: str, *, delay_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.delay_s = delay_s


def is_outage(error: BaseException) -> bool:
    """Whether the error says a dependency is away (NATS, the API server unreachable, 429/503):
    such a pass is retried with the key's backoff without using up its delivery limit, so a
    minutes-long outage ends in convergence, not ``ReconcileFailed`` (docs/adr/101)."""
    return bool(getattr(error, "outage", False))


def is_retryable(error: BaseException) -> bool:
    """Errors from any layer say whether a retry can help through a ``retryable`` attribute."""
    return bool(getattr(error, "retryable", True))
