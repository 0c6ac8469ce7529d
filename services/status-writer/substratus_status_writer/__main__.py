"""Run the status writer: `python -m substratus_status_writer`.

The only writer of Substratus resources: consumes SUBSTRATUS_STATUS on the keyed consumer, so the
reports queued for one resource become one apply per reporting service (docs/adr/103), and
follows the four kinds on SUBSTRATUS_CHANGES, so a report is applied without reading the resource
from the API first (docs/adr/136).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from substratus_common.bus import connection
from substratus_common.events import envelope, payloads, streams, subjects
from substratus_common.kube import client
from substratus_common.runtime import consumer, service, view
from substratus_status_writer import writer


def route(delivery: consumer.Delivery) -> Iterable[subjects.ResourceKey]:
    """Each report on its own: one that does not decode goes to SUBSTRATUS_DEAD, one that disagrees
    with its subject is refused (PermanentError), before it can join the resource's queue."""
    report = payloads.decode_data(delivery.event, payloads.StatusReport)
    writer.check_origin(report, delivery.subject)
    return (delivery.subject.key,)


async def setup(ctx: service.Context) -> Mapping[str, service.RootTask]:
    settings = ctx.settings
    bus = await connection.connect(settings)
    ctx.resources.push_async_callback(bus.close)
    ctx.watch_bus(bus)
    kube = await client.connect()
    ctx.resources.push_async_callback(kube.close)
    known = view.View(writer.PLURALS)
    await known.follow(bus)
    ctx.resources.push_async_callback(known.close)
    apply = writer.Writer(kube, ctx.metrics, known)
    ctx.resources.push_async_callback(apply.events.aclose)  # flush queued Kubernetes Events, bounded

    async def handle(key: subjects.ResourceKey, deliveries: Sequence[consumer.Delivery]) -> None:
        await apply.apply_all([payloads.decode_data(d.event, payloads.StatusReport) for d in deliveries])

    options = consumer.options(
        settings,
        stream=streams.STATUS,
        durable="status-writer",
        filter_subjects=[f"{subjects.PREFIX}.{subjects.STATUS}.>"],
        accepts=lambda event_type: event_type == envelope.STATUS_TYPE,
    )
    runner = consumer.KeyedConsumer(bus, settings.service, options, handle, route=route, metrics=ctx.metrics)
    ctx.add_readiness_check("consuming", lambda: runner.ready and known.loaded.is_set())

    async def consume(ctx: service.Context) -> None:
        await runner.run(ctx.stop, grace_s=settings.shutdown_grace_s)

    return {"consume-status": consume}


def main() -> None:
    service.main("status-writer", setup)


if __name__ == "__main__":
    main()
