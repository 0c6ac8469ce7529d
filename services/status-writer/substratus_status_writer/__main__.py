"""Run the status writer: `python -m substratus_status_writer`.

The only writer of Substratus resources: consumes SUBSTRATUS_STATUS and applies each report.
"""

from __future__ import annotations

from collections.abc import Mapping

from substratus_common.bus import connection
from substratus_common.events import envelope, payloads, streams, subjects
from substratus_common.kube import client
from substratus_common.runtime import consumer, service
from substratus_status_writer import writer


async def setup(ctx: service.Context) -> Mapping[str, service.RootTask]:
    settings = ctx.settings
    bus = await connection.connect(settings)
    ctx.resources.push_async_callback(bus.close)
    kube = await client.connect()
    ctx.resources.push_async_callback(kube.close)
    apply = writer.Writer(kube, ctx.metrics)

    async def handle(delivery: consumer.Delivery) -> None:
        report = payloads.decode_data(delivery.event, payloads.StatusReport)
        writer.check_origin(report, delivery.subject)
        await apply.apply(report)

    options = consumer.ConsumerOptions(
        stream=streams.STATUS,
        durable="status-writer",
        filter_subjects=[f"{subjects.PREFIX}.{subjects.STATUS}.>"],
        concurrency=settings.consumer_concurrency,
        ack_wait_s=settings.ack_wait_s,
        max_deliveries=settings.max_deliveries,
        backoff_s=settings.retry_backoff_s,
        accepts=lambda event_type: event_type == envelope.STATUS_TYPE,
    )
    runner = consumer.Consumer(bus, settings.service, options, handle, metrics=ctx.metrics)
    ctx.add_readiness_check("consuming", lambda: runner.ready)

    async def consume(ctx: service.Context) -> None:
        await runner.run(ctx.stop, grace_s=settings.shutdown_grace_s)

    return {"consume-status": consume}


def main() -> None:
    service.main("status-writer", setup)


if __name__ == "__main__":
    main()
