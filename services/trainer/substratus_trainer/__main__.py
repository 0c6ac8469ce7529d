"""Run the trainer service: `python -m substratus_trainer`.

Consumes changes of Models and Datasets and of their Jobs, runs each as a Job once it has an
image and its dependencies are ready, and reports ``Complete`` and the artifacts URL.
"""

from __future__ import annotations

from substratus_common.runtime import reconciler
from substratus_trainer import trainer


def main() -> None:
    reconciler.main("trainer", trainer.Trainer)


if __name__ == "__main__":
    main()
