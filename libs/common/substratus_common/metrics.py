"""Prometheus metrics shared by the runtime of every service."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class RuntimeMetrics:
    """The metrics every service exports; one registry per service process (tests make many)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.handled = Counter(
            "substratus_messages_handled",
            "Messages handled, by outcome (ack, nak, term, dead).",
            ["outcome"],
            registry=self.registry,
        )
        self.handler_seconds = Histogram(
            "substratus_handler_seconds", "Time spent in a message handler.", registry=self.registry
        )
        self.in_flight = Gauge("substratus_handlers_in_flight", "Handlers running now.", registry=self.registry)
        self.dead_lettered = Counter(
            "substratus_messages_dead_lettered",
            "Messages sent to SUBSTRATUS_DEAD, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "substratus_workqueue_depth", "Keys waiting for a worker in the work queue.", registry=self.registry
        )
        self.held = Gauge(
            "substratus_messages_held",
            "Messages held unacked: queued for a key or in a pass over it.",
            registry=self.registry,
        )
        self.retries = Counter(
            "substratus_reconcile_retries",
            "Passes over a key that failed and will be retried, by kind (temporary: the error's own"
            " delay; backoff: the key's growing backoff; outage: NATS or the API server away, not"
            " counted towards the delivery limit).",
            ["kind"],
            registry=self.registry,
        )
        self.give_ups = Counter(
            "substratus_give_ups",
            "Keys given up on (a failure reported on the resource), by condition reason.",
            ["reason"],
            registry=self.registry,
        )
        self.published = Counter(
            "substratus_events_published", "Events published to the bus.", ["stream"], registry=self.registry
        )
        self.bus_connected = Gauge(
            "substratus_bus_connected",
            "1 while the NATS connection is up, 0 while nats-py reconnects (alert when 0 for minutes).",
            registry=self.registry,
        )
        self.bus_disconnects = Counter(
            "substratus_bus_disconnects",
            "NATS connections lost (a server restart, a network cut, a half-open link found by pings).",
            registry=self.registry,
        )
        self.reports_resent = Counter(
            "substratus_reports_resent",
            "Reports published again because the status did not say them after report_resend_s"
            " (the status writer gave up on one, or it was lost).",
            registry=self.registry,
        )
