"""Run the notebook-manager service: `python -m substratus_notebook_manager`."""

from __future__ import annotations

from collections.abc import Mapping

from substratus_common.runtime import service


def tasks(ctx: service.Context) -> Mapping[str, service.RootTask]:
    return {"idle": service.idle}


def main() -> None:
    service.main("notebook-manager", tasks)


if __name__ == "__main__":
    main()
