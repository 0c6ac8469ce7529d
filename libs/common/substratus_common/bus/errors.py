"""Bus errors, translated once from nats-py: services never catch nats exceptions."""

from __future__ import annotations


class BusError(Exception):
    """The bus could not be reached or refused a request; retrying later may help."""

    retryable = True
    outage = True
    """NATS is away (see ``errors.is_outage``): a pass that failed on it does not use up its
    delivery limit."""


class BusConfigError(BusError):
    """A stream or consumer exists with settings we cannot change in place."""

    retryable = False
    outage = False


class StreamNotFound(BusError):
    """The stream does not exist (nothing provisioned it yet)."""

    retryable = False
    outage = False
