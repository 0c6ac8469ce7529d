"""Run the notebook-manager service: `python -m substratus_notebook_manager`.

Consumes changes of Notebooks and of their Pods, and of the Models and Datasets they wait for;
keeps each Notebook's token Secret, ``/content`` PVC and Pod in line with ``spec.suspend``, and
reports ``Serving`` and the artifacts URL.
"""

from __future__ import annotations

from substratus_common.runtime import reconciler
from substratus_notebook_manager import notebook


def main() -> None:
    reconciler.main("notebook-manager", notebook.NotebookManager)


if __name__ == "__main__":
    main()
