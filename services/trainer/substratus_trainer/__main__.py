"""Run the trainer service: `python -m substratus_trainer`."""

from __future__ import annotations

from collections.abc import Mapping

from substratus_common.runtime import service


def tasks(ctx: service.Context) -> Mapping[str, service.RootTask]:
    return {"idle": service.idle}


def main() -> None:
    service.main("trainer", tasks)


if __name__ == "__main__":
    main()
