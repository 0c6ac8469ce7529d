"""Run the status-writer service: `python -m substratus_status_writer`."""

from __future__ import annotations

from collections.abc import Mapping

from substratus_common.runtime import service


def tasks(ctx: service.Context) -> Mapping[str, service.RootTask]:
    return {"idle": service.idle}


def main() -> None:
    service.main("status-writer", tasks)


if __name__ == "__main__":
    main()
