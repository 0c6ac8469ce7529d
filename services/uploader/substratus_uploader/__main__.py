"""Run the uploader service: `python -m substratus_uploader`."""

from __future__ import annotations

from collections.abc import Mapping

from substratus_common.runtime import service


def tasks(ctx: service.Context) -> Mapping[str, service.RootTask]:
    return {"idle": service.idle}


def main() -> None:
    service.main("uploader", tasks)


if __name__ == "__main__":
    main()
