"""The Substratus API (substratus.ai/v1): pydantic types and CRD generation.

- ``types``: shared types (Build, Resources, ObjectRef, Condition, Status, ...), condition types and reasons.
- ``resources``: the kinds Model, Dataset, Server, Notebook; ``parse``, ``to_dict``, ``kind_info``,
  ``validation_message``.
- ``crd``: ``python -m substratus_common.api.crd deploy/crds`` (``make crds``).
"""
