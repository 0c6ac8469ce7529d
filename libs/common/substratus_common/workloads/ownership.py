"""Never adopt what a resource does not control (fault checks, docs/reliability.md).

A child is found by its deterministic name (``<name>-modeller``, ``<name>-notebook-token``, …),
so an object of that name may belong to someone else: a user's own Job, or the child of an earlier
resource of the same name that the garbage collector has not removed yet. Only a child whose
controller reference is this resource's uid is used. One of an earlier incarnation is waited for;
anyone else's is reported on the resource, never taken over, overwritten or deleted.
"""

from __future__ import annotations

from typing import Any

from substratus_common import errors
from substratus_common.api.types import Reason

Object = dict[str, Any]


def controller_of(child: Object) -> dict[str, Any] | None:
    """The child's controller owner reference, or None."""
    refs = (child.get("metadata") or {}).get("ownerReferences") or []
    return next((r for r in refs if isinstance(r, dict) and r.get("controller")), None)


def refuse_foreign(child: Object, owner: Object, kind: str) -> dict[str, Any]:
    """The controller reference of ``child`` (a ``kind``) when it is an object of the owner's kind
    and name: this one, or an earlier incarnation of it. Otherwise a ``PermanentError``
    (``Invalid``) that names the object and its controller, and says to delete or rename it."""
    owner_kind, owner_name = str(owner.get("kind")), str((owner.get("metadata") or {}).get("name"))
    controller = controller_of(child)
    if controller is not None and (controller.get("kind"), controller.get("name")) == (owner_kind, owner_name):
        return controller
    name = (child.get("metadata") or {}).get("name")
    held_by = f"{controller.get('kind')} {controller.get('name')}" if controller is not None else "no controller"
    raise errors.PermanentError(
        f"{kind} {name} exists and does not belong to this {owner_kind} ({held_by}); delete or rename it",
        reason=Reason.INVALID,
    )


def check(child: Object, owner: Object, kind: str) -> None:
    """Raise unless ``child`` (a ``kind``) is controlled by ``owner`` (this incarnation) and not
    being deleted.

    - controlled by nothing or by anything else: :func:`refuse_foreign`'s ``PermanentError``;
    - controlled by an earlier object of the owner's kind and name, or being deleted: a
      ``TemporaryError`` (the garbage collector removes it; the pass comes back).
    """
    controller = refuse_foreign(child, owner, kind)
    meta, owner_kind = child.get("metadata") or {}, str(owner.get("kind"))
    if controller.get("uid") != (owner.get("metadata") or {}).get("uid"):
        raise errors.TemporaryError(
            f"waiting for {kind} {meta.get('name')} of a deleted {owner_kind} of the same name to be deleted",
            delay_s=1.0,
        )
    if meta.get("deletionTimestamp"):
        raise errors.TemporaryError(f"waiting for {kind} {meta.get('name')} to be deleted", delay_s=1.0)
