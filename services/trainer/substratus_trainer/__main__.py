"""Run the trainer service: `python -m substratus_trainer`.

Consumes changes of Models and Datasets and of their Jobs, runs each as a Job once it has an
image and its dependencies are ready, and reports ``Complete`` and the artifacts URL.
"""

from __future__ import annotations

from collections.abc import Mapping

from substratus_common.api.types import ConditionType
from substratus_common.runtime import manager, manager_service, service
from substratus_common.workloads import gpu_table_file
from substratus_trainer import trainer

SPEC = manager.Spec(
    durable="trainer",
    owned=("models", "datasets"),
    child_kinds=("job",),
    depends_on=("models", "datasets"),
    condition=ConditionType.COMPLETE,
)


async def setup(ctx: service.Context) -> Mapping[str, service.RootTask]:
    settings = ctx.settings
    table = gpu_table_file.TableFile(settings.gpu_types_file)
    bus, kube = await manager_service.connect(ctx)
    work = trainer.Trainer(kube, settings, table)
    loop = manager.Manager(
        bus,
        kube,
        settings,
        SPEC,
        work.reconcile,
        dependencies=work.dependencies,
        baseline=work.baseline,
        metrics=ctx.metrics,
    )
    return await manager_service.root_tasks(ctx, loop)


def main() -> None:
    service.main("trainer", setup)


if __name__ == "__main__":
    main()
