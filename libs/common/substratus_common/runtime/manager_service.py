"""A workload manager as a service: its connections, and its loop as the one named root task.

Every manager's main is then: :func:`connect`, build its reconciler and a
:class:`manager.Manager`, and return :func:`root_tasks` — the view is loaded before the consumer
starts, and ``/readyz`` turns green only when both are running.
"""

from __future__ import annotations

from collections.abc import Mapping

from substratus_common.bus import connection
from substratus_common.kube import client
from substratus_common.runtime import manager, service


async def connect(ctx: service.Context) -> tuple[connection.Bus, client.Kube]:
    """The bus (streams provisioned) and the Kubernetes client, both closed when the service stops."""
    bus = await connection.connect(ctx.settings)
    ctx.resources.push_async_callback(bus.close)
    kube = await client.connect()
    ctx.resources.push_async_callback(kube.close)
    return bus, kube


async def root_tasks(ctx: service.Context, loop: manager.Manager) -> Mapping[str, service.RootTask]:
    """Load the manager's view, register its readiness, and name its consume task."""
    await loop.start()
    ctx.add_readiness_check("consuming", lambda: loop.ready)

    async def consume(ctx: service.Context) -> None:
        await loop.run(ctx.stop)

    return {"consume-changes": consume}
