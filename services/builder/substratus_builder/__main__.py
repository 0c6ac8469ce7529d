"""Run the builder service: `python -m substratus_builder`.

Consumes changes of every kind and of their Jobs, builds the image of each resource with
``spec.build`` (a Kaniko Job, or buildah here with ``SUBSTRATUS_BUILDER_EXECUTOR=local``), and
reports ``Built`` and the image, which the status writer sets as ``spec.image``.
"""

from __future__ import annotations

import shutil

from substratus_builder import builder, local
from substratus_common.runtime import reconciler


def make(runtime: reconciler.Runtime) -> builder.Builder:
    executor = None
    if runtime.settings.builder_executor == "local":
        for tool in ("buildah", "git"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"the local executor needs {tool}; tools/bootstrap.sh installs it")
        executor = local.LocalExecutor(runtime.settings, runtime.storage)
    return builder.Builder(runtime, executor)


def main() -> None:
    reconciler.main("builder", make, storage=lambda settings: settings.builder_executor == "local")


if __name__ == "__main__":
    main()
