"""Run the notebook-manager service: `python -m substratus_notebook_manager`.

Consumes changes of Notebooks and of their Pods, and of the Models and Datasets they wait for;
keeps each Notebook's token Secret, ``/content`` PVC and Pod in line with ``spec.suspend``, and
reports ``Serving`` and the artifacts URL.
"""

from __future__ import annotations

from collections.abc import Mapping

from substratus_common.api.types import ConditionType
from substratus_common.runtime import manager, manager_service, service
from substratus_common.workloads import gpu_table_file
from substratus_notebook_manager import notebook

SPEC = manager.Spec(
    durable="notebook-manager",
    owned=("notebooks",),
    child_kinds=("pod",),
    depends_on=("models", "datasets"),
    condition=ConditionType.SERVING,
)


async def setup(ctx: service.Context) -> Mapping[str, service.RootTask]:
    settings = ctx.settings
    table = gpu_table_file.TableFile(settings.gpu_types_file)
    bus, kube = await manager_service.connect(ctx)
    work = notebook.NotebookManager(kube, settings, table)
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
    service.main("notebook-manager", setup)


if __name__ == "__main__":
    main()
