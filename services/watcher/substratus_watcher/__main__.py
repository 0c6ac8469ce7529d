"""Run the watcher service: `python -m substratus_watcher`.

One root task per watched type (the four kinds, and the labelled Jobs, Pods and Deployments; no
Pod of a Job, ADR 138), each listing then watching and publishing every change to SUBSTRATUS_CHANGES.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from substratus_common.api import labels
from substratus_common.bus import connection
from substratus_common.kube import client
from substratus_common.kube.resources import POD, SUBSTRATUS_KINDS, WATCHED_CHILDREN, ResourceType
from substratus_common.runtime import service
from substratus_watcher import known, publisher, sync


async def setup(ctx: service.Context) -> Mapping[str, service.RootTask]:
    bus = await connection.connect(ctx.settings)
    ctx.resources.push_async_callback(bus.close)
    ctx.watch_bus(bus)
    kube = await client.connect()
    ctx.resources.push_async_callback(kube.close)
    state, state_labels = await known.load(bus)
    sink = publisher.Publisher(bus, ctx.metrics, outage_wait_s=ctx.settings.nats_outage_wait_s)
    ctx.resources.push_async_callback(sink.close)  # before the bus closes: publishes in flight finish
    syncs: dict[str, sync.TypeSync] = {}
    for rt in (*SUBSTRATUS_KINDS, *WATCHED_CHILDREN):
        options = sync.Options(
            label_selector=_selector(rt),
            resync_s=ctx.settings.watch_resync_s,
            stall_s=ctx.settings.watch_stall_s,
            watch_timeout_s=ctx.settings.watch_timeout_s,
        )
        syncs[rt.plural] = sync.TypeSync(
            kube,
            rt,
            sink,
            known=state[rt],
            labels=state_labels[rt],
            options=options,
            stored=functools.partial(known.stored, bus, rt),
        )
    ctx.add_readiness_check("synced", lambda: all(s.synced.is_set() for s in syncs.values()))
    return {f"watch-{plural}": functools.partial(_watch, s) for plural, s in syncs.items()}


def _selector(rt: ResourceType) -> str | None:
    if rt in SUBSTRATUS_KINDS:
        return None
    return labels.POD_SELECTOR if rt == POD else labels.CHILD_SELECTOR


async def _watch(type_sync: sync.TypeSync, ctx: service.Context) -> None:
    await type_sync.run(ctx.stop)


def main() -> None:
    service.main("watcher", setup)


if __name__ == "__main__":
    main()
