"""Run the builder service: `python -m substratus_builder`.

Consumes changes of every kind and of their Jobs, builds the image of each resource with
``spec.build`` (a Kaniko Job, or buildah here with ``SUBSTRATUS_BUILDER_EXECUTOR=local``), and
reports ``Built`` and the image, which the status writer sets as ``spec.image``.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping

from substratus_builder import builder, local
from substratus_common.api.types import ConditionType
from substratus_common.runtime import manager, manager_service, service
from substratus_common.storage import backends

SPEC = manager.Spec(
    durable="builder",
    owned=("models", "datasets", "servers", "notebooks"),
    child_kinds=("job",),
    condition=ConditionType.BUILT,
)


async def setup(ctx: service.Context) -> Mapping[str, service.RootTask]:
    settings = ctx.settings
    bus, kube = await manager_service.connect(ctx)
    executor = None
    if settings.builder_executor == "local":
        for tool in ("buildah", "git"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"the local executor needs {tool}; tools/bootstrap.sh installs it")
        storage = backends.from_settings(settings)
        ctx.resources.push_async_callback(storage.close)
        executor = local.LocalExecutor(settings, storage)
    work = builder.Builder(kube, settings, executor)
    loop = manager.Manager(bus, kube, settings, SPEC, work.reconcile, metrics=ctx.metrics)

    async def progress(obj: builder.Object, outcome: manager.Outcome) -> bool:
        meta = obj["metadata"]
        return await loop.publish(obj, outcome, f"{meta.get('uid')}/{meta.get('resourceVersion')}")

    work.progress = progress
    return await manager_service.root_tasks(ctx, loop)


def main() -> None:
    service.main("builder", setup)


if __name__ == "__main__":
    main()
