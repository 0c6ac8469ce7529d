"""Run the server-manager service: `python -m substratus_server_manager`.

Consumes changes of Servers, of their Deployments and Pods, and of Models (a Model turning ready
wakes the Servers that wait for it); applies each Server's ConfigMap, Deployment and Service once
its Model is ready, and reports ``Serving``.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter

from substratus_common.api.types import ConditionType
from substratus_common.runtime import manager, manager_service, service
from substratus_common.workloads import gpu_table_file
from substratus_server_manager import server_manager

SPEC = manager.Spec(
    durable="server-manager",
    owned=("servers",),
    # Deployment changes carry readiness; Pod changes carry why a Pod cannot be scheduled or start.
    child_kinds=("deployment", "pod"),
    depends_on=("models",),
    condition=ConditionType.SERVING,
    # A Server waiting for its Model says ModelNotFound, then ModelNotReady once the Model appears.
    wake_on_every_change=True,
)


async def setup(ctx: service.Context) -> Mapping[str, service.RootTask]:
    settings = ctx.settings
    table = gpu_table_file.TableFile(settings.gpu_types_file)
    applied = Counter(
        "substratus_server_deployments_applied",
        "Times the server-manager applied a Server's children (a new or changed spec).",
        registry=ctx.metrics.registry,
    )
    bus, kube = await manager_service.connect(ctx)
    work = server_manager.ServerManager(kube, settings, table.current, on_apply=applied.inc)
    loop = manager.Manager(
        bus,
        kube,
        settings,
        SPEC,
        work.reconcile,
        dependencies=work.dependencies,
        metrics=ctx.metrics,
    )
    return await manager_service.root_tasks(ctx, loop)


def main() -> None:
    service.main("server-manager", setup)


if __name__ == "__main__":
    main()
