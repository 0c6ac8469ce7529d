"""Failpoints: named points where a test or a benchmark makes the process misbehave on purpose.

Like etcd's gofail, but switched on only by ``SUBSTRATUS_FAILPOINTS`` (comma-separated names,
e.g. ``before-ack``), which no deployment sets. Points:

- ``before-ack`` (:func:`hit`): a consumer's handler succeeded (its writes are done) but the
  message is not acked; the process ends like ``kill -9``: no cleanup, no ack, no drain. With
  ``SUBSTRATUS_FAILPOINT_NAMESPACE`` set, only a pass over a resource of that namespace ends it (a
  test's own Models, not the deletions of an earlier test's namespace on a shared stack).
- ``slow-reconcile`` (:func:`delay`): every reconcile pass of a reconciler service (trainer,
  server-manager, notebook-manager, builder, uploader) first waits
  ``SUBSTRATUS_RECONCILE_DELAY_S`` seconds (default 1), inside the pass, so the key stays busy
  while it waits. ``make bench`` uses it to show that replicas add capacity.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

log = logging.getLogger(__name__)

ENV = "SUBSTRATUS_FAILPOINTS"
DELAY_ENV = "SUBSTRATUS_RECONCILE_DELAY_S"
NAMESPACE_ENV = "SUBSTRATUS_FAILPOINT_NAMESPACE"
SLOW_RECONCILE = "slow-reconcile"
EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL


def active() -> frozenset[str]:
    return frozenset(name.strip() for name in os.environ.get(ENV, "").split(",") if name.strip())


_ACTIVE = active()


def hit(name: str, namespace: str | None = None) -> None:
    """End the process now when failpoint ``name`` is switched on (and ``namespace`` is the one
    ``SUBSTRATUS_FAILPOINT_NAMESPACE`` names, when it is set); otherwise do nothing."""
    only = os.environ.get(NAMESPACE_ENV)
    if name in _ACTIVE and (not only or namespace == only):
        log.warning("failpoint hit; exiting abruptly", extra={"failpoint": name})
        sys.stderr.flush()
        os._exit(EXIT_CODE)


def delay_s(name: str = SLOW_RECONCILE) -> float:
    """Seconds failpoint ``name`` waits when switched on (``SUBSTRATUS_RECONCILE_DELAY_S``), else 0."""
    if name not in _ACTIVE:
        return 0.0
    try:
        return max(float(os.environ.get(DELAY_ENV, "1")), 0.0)
    except ValueError:
        return 1.0


async def delay(name: str = SLOW_RECONCILE) -> None:
    """Wait :func:`delay_s` seconds when failpoint ``name`` is switched on; otherwise return at once."""
    seconds = delay_s(name)
    if seconds > 0:
        await asyncio.sleep(seconds)  # the point of this failpoint is a fixed, slow pass
