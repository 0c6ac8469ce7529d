"""Run the trainer service: `python -m substratus_trainer`.

Consumes changes of Models and Datasets and of their Jobs, runs each as a Job once it has an
image and its dependencies are ready, and reports ``Complete`` and the artifacts URL.
"""

from __future__ import annotations

from substratus_common.runtime import reconciler
from substratus_common.workloads import gpu_table_file
from substratus_trainer import trainer


def make(runtime: reconciler.Runtime) -> trainer.Trainer:
    table = gpu_table_file.TableFile(runtime.settings.gpu_types_file)
    return trainer.Trainer(runtime.kube, runtime.settings, table, runtime.view)


def main() -> None:
    reconciler.main("trainer", make)


if __name__ == "__main__":
    main()
