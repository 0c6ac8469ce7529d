"""What the status-writer tests share: a Model to report on, reports published as a service would,
and reads of the resource as a user sees it with kubectl."""

from __future__ import annotations

import json
from typing import Any

from substratus_common.bus import connection
from substratus_common.events import payloads
from substratus_common.runtime import report
from substratus_local.stack import Stack

Object = dict[str, Any]

MODEL = """
apiVersion: substratus.ai/v1
kind: Model
metadata: {{name: {name}, namespace: {ns}}}
spec:
  image: {image}
  params: {{name: facebook/opt-125m}}
"""


def apply_model(
    stack: Stack, namespace: str, name: str, image: str = "substratusai/model-loader-huggingface"
) -> Object:
    stack.kubectl("apply", "-f", "-", input=MODEL.format(name=name, ns=namespace, image=image))
    return get(stack, namespace, name)


def get(stack: Stack, namespace: str, name: str) -> Object:
    obj: Object = json.loads(
        stack.kubectl("get", "model", name, "-n", namespace, "-o", "json", "--show-managed-fields").stdout
    )
    return obj


def condition(obj: Object, type_: str) -> Object:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            found: Object = c
            return found
    return {}


def status_managers(obj: Object) -> dict[str, Object]:
    """Field managers of the status subresource and the status fields each owns."""
    return {
        entry["manager"]: entry.get("fieldsV1", {}).get("f:status", {})
        for entry in obj["metadata"].get("managedFields", [])
        if entry.get("subresource") == "status"
    }


async def publish(
    bus: connection.Bus,
    obj: Object,
    service: str,
    *conditions: tuple[str, str, str, str],
    generation: int | None = None,
    image: str | None = None,
) -> payloads.StatusReport:
    """Publish a status report about ``obj`` as ``service`` would (at its generation unless given)."""
    made = report.report_for(obj, service, report.conditions(*conditions), image=image)
    if generation is not None:
        made = payloads.StatusReport(**{**_fields(made), "generation": generation})
    await report.publish(bus, made, "models")
    return made


def _fields(made: payloads.StatusReport) -> dict[str, Any]:
    return {f: getattr(made, f) for f in made.__struct_fields__}
