"""Run the uploader service: `python -m substratus_uploader`.

Consumes changes of Models, Datasets, Servers and Notebooks; for ``spec.build.upload`` it signs a
PUT URL, watches storage for the upload, verifies its MD5 and reports ``Uploaded``.
"""

from __future__ import annotations

from collections.abc import Mapping

from substratus_common.bus import connection
from substratus_common.events import envelope, streams
from substratus_common.kube import client
from substratus_common.runtime import consumer, service
from substratus_common.storage import backends
from substratus_uploader import uploader


async def setup(ctx: service.Context) -> Mapping[str, service.RootTask]:
    settings = ctx.settings
    storage = backends.from_settings(settings)
    ctx.resources.push_async_callback(storage.close)
    bus = await connection.connect(settings)
    ctx.resources.push_async_callback(bus.close)
    kube = await client.connect()
    ctx.resources.push_async_callback(kube.close)
    work = uploader.Uploader(bus, kube, storage, settings)
    ctx.resources.push_async_callback(work.close)
    await work.view.follow(bus)
    ctx.resources.push_async_callback(work.view.close)
    await work.resume_polling()
    options = consumer.ConsumerOptions(
        stream=streams.CHANGES,
        durable=uploader.SERVICE,
        filter_subjects=uploader.filter_subjects(),
        concurrency=settings.consumer_concurrency,
        ack_wait_s=settings.ack_wait_s,
        max_deliveries=settings.max_deliveries,
        backoff_s=settings.retry_backoff_s,
        accepts=envelope.is_change_type,
    )
    runner = consumer.Consumer(
        bus, settings.service, options, work.handle, on_give_up=work.give_up, metrics=ctx.metrics
    )
    ctx.add_readiness_check("consuming", lambda: runner.ready and work.view.loaded.is_set())

    async def consume(ctx: service.Context) -> None:
        await runner.run(ctx.stop, grace_s=settings.shutdown_grace_s)

    return {"consume-changes": consume}


def main() -> None:
    service.main(uploader.SERVICE, setup)


if __name__ == "__main__":
    main()
