"""Run the uploader service: `python -m substratus_uploader`.

Consumes changes of the four kinds; answers ``spec.build.upload`` with a signed PUT URL and
reports ``Uploaded`` once storage holds the tarball with the requested MD5.
"""

from __future__ import annotations

from substratus_common.runtime import reconciler
from substratus_uploader import uploader


def make(runtime: reconciler.Runtime) -> uploader.Uploader:
    assert runtime.storage is not None  # main asks for it
    return uploader.Uploader(runtime, runtime.storage)


def main() -> None:
    reconciler.main(uploader.SERVICE, make, storage=True)


if __name__ == "__main__":
    main()
