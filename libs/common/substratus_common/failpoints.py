"""Failpoints: end the process abruptly at a named point, to test what a crash leaves behind.

Like etcd's gofail, but switched on only by ``SUBSTRATUS_FAILPOINTS`` (comma-separated names,
e.g. ``before-ack``), which no deployment sets. A hit behaves like ``kill -9``: no cleanup, no
ack, no drain. Points:

- ``before-ack``: a consumer's handler succeeded (its writes are done) but the message is not acked.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

ENV = "SUBSTRATUS_FAILPOINTS"
EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL


def active() -> frozenset[str]:
    return frozenset(name.strip() for name in os.environ.get(ENV, "").split(",") if name.strip())


_ACTIVE = active()


def hit(name: str) -> None:
    """End the process now when failpoint ``name`` is switched on; otherwise do nothing."""
    if name in _ACTIVE:
        log.warning("failpoint hit; exiting abruptly", extra={"failpoint": name})
        sys.stderr.flush()
        os._exit(EXIT_CODE)
