"""The GPU-type table as the operator's file says *now*: re-read when the file changes.

``SUBSTRATUS_GPU_TYPES_FILE`` is typically a mounted ConfigMap; the kubelet swaps its contents in
place, so an operator adds a GPU type with ``kubectl edit configmap`` — no release, no restart.
A file that does not parse keeps the last good table (and says so in the log), so a typo in the
ConfigMap cannot stop every workload from being scheduled.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from substratus_common.workloads import gpus

log = logging.getLogger(__name__)


class TableFile:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._table = gpus.GPUTable.load(path)
        self._stamp = self._stat()

    def _stat(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def current(self) -> gpus.GPUTable:
        """The table, re-read if the file changed since it was last read."""
        stamp = self._stat()
        if stamp is None or stamp == self._stamp:
            return self._table
        try:
            self._table = gpus.GPUTable.load(self.path)
            log.info("GPU-type table reloaded", extra={"path": str(self.path), "types": self._table.types})
        except (OSError, ValueError) as error:
            log.warning("GPU-type table file is invalid; keeping the previous table", extra={"error": str(error)})
        self._stamp = stamp
        return self._table
