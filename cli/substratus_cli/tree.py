"""What ``substratus status`` shows, from objects as kubectl returns them (no I/O).

:func:`build` turns a Substratus resource, the children that carry its labels and the last bus
events into a :class:`Node` tree (the resource, its conditions with ages, each child with its
state, Pods under the Job or Deployment that owns them); :func:`to_rich` renders it for a
terminal (colour only when the console has a terminal), :func:`to_json` for ``--json``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rich.text import Text
from rich.tree import Tree

from substratus_common.api import readiness

Object = dict[str, Any]
Health = Literal["ok", "progress", "bad", "none"]

# Children by the order a user reads them: what configures the workload, then what runs it.
CHILD_ORDER = ("ConfigMap", "Secret", "PersistentVolumeClaim", "Job", "Deployment", "Service", "Pod")
_STYLE: dict[Health, str] = {"ok": "green", "progress": "yellow", "bad": "bold red", "none": "dim"}


@dataclass
class Node:
    """One line of the tree and what hangs under it."""

    label: str
    state: str = ""
    health: Health = "none"
    detail: str = ""
    data: Object = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)


def parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(since: object, now: dt.datetime) -> str:
    """kubectl's short age: ``45s``, ``12m``, ``3h``, ``5d``; ``?`` for no time."""
    when = parse_time(since)
    if when is None:
        return "?"
    seconds = max(0, int((now - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _conditions(obj: Object) -> list[Object]:
    return list((obj.get("status") or {}).get("conditions") or [])


def _condition(obj: Object, type_: str) -> Object | None:
    return next((c for c in _conditions(obj) if c.get("type") == type_), None)


def condition_health(condition: Object) -> Health:
    if condition.get("status") == "True":
        return "ok"
    return "bad" if condition.get("reason") in readiness.FAILURE_REASONS else "progress"


def job_state(job: Object) -> tuple[str, Health]:
    status = job.get("status") or {}
    for c in status.get("conditions") or []:
        if c.get("status") != "True":
            continue
        if c.get("type") == "Complete":
            return "Complete", "ok"
        if c.get("type") == "Failed":
            why = ": ".join(str(p) for p in (c.get("reason"), c.get("message")) if p)
            return f"Failed ({why})" if why else "Failed", "bad"
    if status.get("active"):
        return f"Running ({status['active']} active)", "progress"
    return "Pending", "progress"


def pod_state(pod: Object) -> tuple[str, Health]:
    status = pod.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    containers = status.get("containerStatuses") or []
    ready = sum(1 for c in containers if c.get("ready"))
    for c in containers:
        waiting = (c.get("state") or {}).get("waiting") or {}
        terminated = (c.get("state") or {}).get("terminated") or {}
        if waiting.get("reason") and waiting["reason"] not in ("ContainerCreating", "PodInitializing"):
            return f"{phase}, {c.get('name')}: {waiting['reason']}", "bad"
        if terminated.get("exitCode"):
            return f"{phase}, {c.get('name')} exited {terminated['exitCode']} ({terminated.get('reason', '')})", "bad"
    text = f"{phase}, ready {ready}/{len(containers)}" if containers else phase
    if phase == "Succeeded":
        return text, "ok"
    if phase == "Failed":
        return text, "bad"
    return text, "ok" if containers and ready == len(containers) else "progress"


def deployment_state(deployment: Object) -> tuple[str, Health]:
    status = deployment.get("status") or {}
    want = int((deployment.get("spec") or {}).get("replicas") or 0)
    ready = int(status.get("readyReplicas") or 0)
    return f"ready {ready}/{want}", "ok" if want and ready >= want else "progress"


def service_state(service: Object) -> tuple[str, Health]:
    spec = service.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    return f"{spec.get('type', 'ClusterIP')} {spec.get('clusterIP', '')} {ports}".strip(), "ok"


def pvc_state(pvc: Object) -> tuple[str, Health]:
    phase = str((pvc.get("status") or {}).get("phase") or "Pending")
    return phase, "ok" if phase == "Bound" else "progress"


def keys_state(obj: Object) -> tuple[str, Health]:
    keys = sorted({*(obj.get("data") or {}), *(obj.get("binaryData") or {}), *(obj.get("stringData") or {})})
    return f"{len(keys)} key{'s' if len(keys) != 1 else ''}" + (f" ({', '.join(keys)})" if keys else ""), "ok"


_STATES = {
    "Job": job_state,
    "Pod": pod_state,
    "Deployment": deployment_state,
    "Service": service_state,
    "PersistentVolumeClaim": pvc_state,
    "ConfigMap": keys_state,
    "Secret": keys_state,
}


def child_node(obj: Object, now: dt.datetime) -> Node:
    kind, meta = str(obj.get("kind")), obj.get("metadata") or {}
    describe = _STATES.get(kind)
    state, health = describe(obj) if describe is not None else ("", "none")
    created = age(meta.get("creationTimestamp"), now)
    data = {"kind": kind, "name": meta.get("name"), "state": state, "health": health, "age": created}
    return Node(f"{kind} {meta.get('name')}", state, health, f"age {created}", data)


def _owner_uids(obj: Object) -> list[str]:
    return [str(r.get("uid")) for r in (obj.get("metadata") or {}).get("ownerReferences") or []]


def _owner_names(obj: Object, kind: str) -> list[str]:
    return [
        str(r.get("name")) for r in (obj.get("metadata") or {}).get("ownerReferences") or [] if r.get("kind") == kind
    ]


def _sort_key(obj: Object) -> tuple[int, str]:
    kind = str(obj.get("kind"))
    rank = CHILD_ORDER.index(kind) if kind in CHILD_ORDER else len(CHILD_ORDER)
    return rank, str((obj.get("metadata") or {}).get("name"))


def children(objects: Iterable[Object], now: dt.datetime) -> list[Node]:
    """Child nodes; a Pod goes under the Job (by uid) or Deployment (through its ReplicaSet) that owns it."""
    items = sorted(objects, key=_sort_key)
    nodes: list[Node] = []
    by_uid: dict[str, Node] = {}
    by_deployment: dict[str, Node] = {}
    for obj in items:
        if obj.get("kind") == "Pod":
            continue
        node = child_node(obj, now)
        nodes.append(node)
        by_uid[str((obj.get("metadata") or {}).get("uid"))] = node
        if obj.get("kind") == "Deployment":
            by_deployment[str((obj.get("metadata") or {}).get("name"))] = node
    for obj in items:
        if obj.get("kind") != "Pod":
            continue
        node = child_node(obj, now)
        parent = next((by_uid[u] for u in _owner_uids(obj) if u in by_uid), None)
        if parent is None:
            # A Deployment's Pod is owned by a ReplicaSet named <deployment>-<hash>.
            sets = _owner_names(obj, "ReplicaSet")
            parent = next(
                (by_deployment[s.rsplit("-", 1)[0]] for s in sets if s.rsplit("-", 1)[0] in by_deployment), None
            )
        (parent.children if parent is not None else nodes).append(node)
    return nodes


def build(resource: Object, owned: Iterable[Object], events: Sequence[str] | None, now: dt.datetime) -> Node:
    """The tree of one resource. ``events`` None: the bus was not read (its line says why elsewhere)."""
    meta = resource.get("metadata") or {}
    status = resource.get("status") or {}
    ready = _condition(resource, readiness.READY)
    health: Health
    if status.get("ready") is True:
        state, health = "Ready", "ok"
    else:
        state = "Not ready"
        health = condition_health(ready) if ready is not None else "progress"
    why = f"{ready.get('reason')}: {ready.get('message') or ''}".rstrip(": ") if ready is not None else ""
    root = Node(
        f"{resource.get('kind')} {meta.get('namespace')}/{meta.get('name')}",
        state,
        health,
        why,
        {
            "kind": resource.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "ready": bool(status.get("ready")),
            "generation": meta.get("generation"),
            "observedGeneration": status.get("observedGeneration"),
            "image": (resource.get("spec") or {}).get("image"),
            "age": age(meta.get("creationTimestamp"), now),
        },
    )
    conditions = Node("Conditions", data={"section": "conditions"})
    width = max((len(str(c.get("type"))) for c in _conditions(resource)), default=0)
    for c in sorted(_conditions(resource), key=lambda c: (c.get("type") == readiness.READY, str(c.get("type")))):
        since = age(c.get("lastTransitionTime"), now)
        conditions.children.append(
            Node(
                f"{c.get('type')!s:<{width}}",
                f"{c.get('status')!s:<5} {c.get('reason')}",
                condition_health(c),
                f"{since}  {c.get('message') or ''}".strip(),
                {**{k: c.get(k) for k in ("type", "status", "reason", "message", "lastTransitionTime")}, "age": since},
            )
        )
    if not conditions.children:
        conditions.children.append(Node("no conditions reported yet", health="progress"))
    root.children.append(conditions)
    root.children.extend(children(owned, now))
    if events is not None:
        section = Node(f"Events (bus, last {len(events)})", data={"section": "events"})
        section.children = [Node(line) for line in events] or [Node("none stored")]
        root.children.append(section)
    return root


def _text(node: Node) -> Text:
    text = Text(node.label, style="bold" if node.data.get("section") is None and not node.children else "")
    if node.state:
        text.append("  ")
        text.append(node.state, style=_STYLE[node.health])
    if node.detail:
        text.append("  ")
        text.append(node.detail, style="red" if node.health == "bad" else "dim")
    return text


def to_rich(node: Node) -> Tree:
    tree = Tree(_text(node), guide_style="dim")

    def add(parent: Tree, children_: Sequence[Node]) -> None:
        for child in children_:
            add(parent.add(_text(child)), child.children)

    add(tree, node.children)
    return tree


def to_json(node: Node) -> Object:
    """``--json``: the resource, its conditions, its children (nested) and the bus events."""
    out: Object = {**node.data, "state": node.state, "why": node.detail}
    out["conditions"] = []
    out["children"] = []
    out["events"] = None

    def child_json(child: Node) -> Object:
        return {**child.data, "children": [child_json(c) for c in child.children]}

    for child in node.children:
        section = child.data.get("section")
        if section == "conditions":
            out["conditions"] = [c.data for c in child.children if c.data]
        elif section == "events":
            out["events"] = [c.label for c in child.children if c.label != "none stored"]
        else:
            out["children"].append(child_json(child))
    return out
