"""The words of readiness shared by the status writer, the CRD columns, the reference and the CLI.

The status writer derives a ``Ready`` condition from all others (docs/adr/120); reasons in
``FAILURE_REASONS`` mean someone must act: Ready names them first, and their Events are Warnings.
"""

from __future__ import annotations

from substratus_common.api.types import Reason

READY = "Ready"
"""The condition the status writer derives from all others (never reported by a service)."""

PENDING = "Pending"
"""Ready's reason while a condition it needs has not been reported yet."""

RECONCILING = "Reconciling"
"""Ready's reason while a condition it needs was computed for an older generation."""

FAILURE_REASONS: frozenset[str] = frozenset(
    {Reason.JOB_FAILED, Reason.INVALID, Reason.FORBIDDEN, Reason.RECONCILE_FAILED, Reason.UPLOAD_EXPIRED}
)
"""Reasons that mean the user (or an operator) must act."""
