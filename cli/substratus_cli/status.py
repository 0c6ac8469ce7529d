"""``substratus status KIND/NAME``: a resource, why it is (not) ready, its children and its last events.

    substratus status model/opt-125m -n team-a
    substratus status datasets -A            # every Dataset in every namespace
    substratus status model/opt-125m --json | jq .children

Reads the resource and every child that carries its labels (Jobs, Pods, Deployment, Service, PVC,
Secret, ConfigMap; ``substratus_common.api.labels``) through kubectl, so kubeconfig, context and
default namespace are kubectl's; and the last few lifecycle events from the bus at $NATS_URL
(the same read-only reader as ``substratus events``). Prints a tree, coloured on a terminal and
plain when piped. A resource that does not exist exits 1 with a message saying so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from substratus_cli import query, reader, render, tree
from substratus_common import config
from substratus_common.api import labels, resources
from substratus_common.bus import connection
from substratus_common.bus.errors import BusError

Object = dict[str, Any]

CHILD_TYPES = "jobs,pods,deployments,services,persistentvolumeclaims,secrets,configmaps"
KUBECTL_TIMEOUT_S = 60.0
BUS_TIMEOUT_S = 15.0
"""Connecting to the bus and reading a resource's events, together; past it the events are left out."""


class StatusError(Exception):
    """What the user is told on stderr before exit 1."""


@dataclass(frozen=True)
class Target:
    plural: str
    name: str | None

    @classmethod
    def parse(cls, text: str) -> Target:
        kind, _, name = text.partition("/")
        if "/" in text and not name:
            raise ValueError(f"{text!r}: give KIND/NAME or KIND")
        return cls(query.plural(kind), query.name(name) if name else None)

    @property
    def kind(self) -> str:
        return resources.kind_info_for_plural(self.plural).kind

    @property
    def resource(self) -> str:
        """The fully qualified resource for kubectl (no clash with another group's ``models``)."""
        return f"{self.plural}.{resources.GROUP}"


def _target(value: str) -> Target:
    try:
        return Target.parse(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "status",
        help="a resource with its conditions, children and last events, as a tree",
        description="Show a Substratus resource: whether it is ready and what blocks it, its conditions "
        "with their ages, every child (Jobs, Pods, Deployment, Service, PVC, Secret, ConfigMap) with its "
        "state, and the last lifecycle events from the bus ($NATS_URL). Reads through kubectl.",
    )
    parser.add_argument(
        "target",
        type=_target,
        metavar="KIND[/NAME]",
        help=f"e.g. model/opt-125m; a kind alone shows all ({', '.join(query.PLURALS)})",
    )
    parser.add_argument("-n", "--namespace", type=_flag(query.namespace), help="namespace (default: kubectl's)")
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="look in every namespace")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a tree")
    parser.add_argument("--events", type=int, default=5, metavar="N", help="how many bus events to show (0: none)")
    parser.add_argument("--context", help="kubeconfig context (default: kubectl's)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: kubectl's)")
    parser.add_argument(
        "--kubectl", default=os.environ.get("KUBECTL", "kubectl"), help="kubectl binary (default: $KUBECTL or kubectl)"
    )
    parser.set_defaults(run=run)


def _flag(parse: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse ``type``: argparse puts the flag's name in front of the message."""

    def convert(value: str) -> object:
        try:
            return parse(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


@dataclass(frozen=True)
class Kubectl:
    binary: str
    global_flags: tuple[str, ...] = ()

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [self.binary, *self.global_flags, *args],
                capture_output=True,
                text=True,
                timeout=KUBECTL_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise StatusError(f"kubectl failed: {error}") from error

    def json(self, *args: str) -> Object:
        done = self.run(*args, "-o", "json")
        if done.returncode != 0:
            raise StatusError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        found: Object = json.loads(done.stdout)
        return found

    def default_namespace(self) -> str:
        done = self.run("config", "view", "--minify", "-o", "jsonpath={..namespace}")
        return (done.stdout.strip() or "default") if done.returncode == 0 else "default"


def find(kubectl: Kubectl, target: Target, namespace: str | None, everywhere: bool) -> list[Object]:
    """The resources asked for; StatusError when a named one does not exist."""
    scope = ["-A"] if everywhere else ["-n", namespace] if namespace else []
    if target.name is not None and not everywhere:
        done = kubectl.run("get", target.resource, target.name, *scope, "-o", "json")
        if done.returncode != 0:
            if "NotFound" in done.stderr or "not found" in done.stderr:
                where = namespace or kubectl.default_namespace()
                raise StatusError(f'{target.kind.lower()} "{target.name}" not found in namespace "{where}"')
            raise StatusError(f"kubectl get {target.resource} {target.name}: {done.stderr.strip()}")
        return [json.loads(done.stdout)]
    selector = ["--field-selector", f"metadata.name={target.name}"] if target.name else []
    items: list[Object] = kubectl.json("get", target.resource, *scope, *selector).get("items", [])
    if target.name is not None and not items:
        raise StatusError(f'{target.kind.lower()} "{target.name}" not found in any namespace')
    for item in items:
        item.setdefault("kind", target.kind)
    return items


def owned(kubectl: Kubectl, resource: Object) -> list[Object]:
    """Every child that carries the resource's labels, in its namespace."""
    meta = resource["metadata"]
    plural = resources.kind_info(str(resource["kind"])).plural
    selector = f"{labels.OWNER_KIND}={plural},{labels.OWNER_NAME}={meta['name']}"
    items: list[Object] = kubectl.json("get", CHILD_TYPES, "-n", meta["namespace"], "-l", selector).get("items", [])
    return items


async def bus_events(resource: Object, limit: int, settings: config.Settings) -> list[str]:
    """The last ``limit`` events of the resource (and its children) the streams hold, as lines."""
    meta = resource["metadata"]
    q = query.Query(
        plural=resources.kind_info(str(resource["kind"])).plural, namespace=meta["namespace"], name=meta["name"]
    )
    lines: list[str] = []
    async with asyncio.timeout(BUS_TIMEOUT_S):
        bus = await connection.connect(settings, provision=False)
        try:
            stream = reader.read(bus, q.filters(), start=None, follow=False)
            async with contextlib.aclosing(stream):
                async for stored in stream:
                    text, _ = render.render(stored, as_json=False)
                    if text is not None:
                        lines = [*lines[-(limit - 1) :], text] if limit > 1 else [text]
        finally:
            await bus.close()
    return lines


def events_of(resource: Object, limit: int) -> tuple[list[str] | None, str | None]:
    """(lines, why they are missing): the bus is optional, a status is still worth showing without it."""
    if limit <= 0:
        return None, None
    settings = config.Settings(service="cli")
    try:
        return asyncio.run(bus_events(resource, limit, settings)), None
    except (BusError, TimeoutError, OSError) as error:
        detail = str(error) or f"no answer within {BUS_TIMEOUT_S:.0f}s"
        return None, f"events not read: cannot reach NATS at {settings.nats_url}: {detail} (set NATS_URL)"


def show(args: argparse.Namespace, out: Console, err: Console) -> int:
    flags: list[str] = []
    if args.context:
        flags += ["--context", args.context]
    if args.kubeconfig:
        flags += ["--kubeconfig", args.kubeconfig]
    kubectl = Kubectl(shutil.which(args.kubectl) or args.kubectl, tuple(flags))
    target: Target = args.target
    found = find(kubectl, target, args.namespace, args.all_namespaces)
    if not found:
        err.print(f"No {target.plural} found.")
        return 0
    now = dt.datetime.now(dt.UTC)
    trees: list[tree.Node] = []
    for resource in found:
        events, why = events_of(resource, args.events)
        node = tree.build(resource, owned(kubectl, resource), events, now)
        if why is not None:
            node.children.append(tree.Node(why, health="none"))
        trees.append(node)
    if args.json:
        docs = [tree.to_json(t) for t in trees]
        print(json.dumps(docs[0] if target.name and len(docs) == 1 else docs, indent=2))
        return 0
    for node in trees:
        out.print(tree.to_rich(node))
    return 0


def consoles() -> tuple[Console, Console]:
    """Colour only on a terminal (and never with NO_COLOR); piped output is plain and not wrapped."""
    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, no_color=True, width=10_000)
    return out, Console(stderr=True, highlight=False)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.CRITICAL)  # the bus layer's reconnect logs are for services
    out, err = consoles()
    try:
        return show(args, out, err)
    except StatusError as error:
        print(f"substratus status: {error}", file=sys.stderr)
        return 1
