"""`python -m substratus_local up|down|status`: the local stack behind `make up` and `make down`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from substratus_local import binaries, netns, node, node_images, stack, workloads

console = Console(stderr=True)


def _summary(s: stack.Stack) -> None:
    table = Table(title="Substratus local stack", show_header=True)
    table.add_column("component")
    table.add_column("running")
    table.add_column("pid")
    for name, alive in s.running().items():
        table.add_row(name, "yes" if alive else "[red]no[/red]", str(s.pid(name) or "-"))
    console.print(table)


def _log(line: str) -> None:
    console.print(f"  {line}")


def _real_workloads(s: stack.Stack, images: bool) -> None:
    """What `kubectl apply -f examples/local/` needs on the real node (workloads.py)."""
    if images:
        started = time.monotonic()
        workloads.push_images(s, _log)
        _log(f"images in the registry in {time.monotonic() - started:.1f}s")
    else:
        _log("images skipped (IMAGES=0): make images LOCAL=1 IMAGES=storage, then IMAGES=workloads")
    started = time.monotonic()
    workloads.ensure_storage_secret(s)
    workloads.ensure_content_volumes(s)
    _log(f"Secret {workloads.NAMESPACE}/{workloads.SECRET} and Notebook volumes in {time.monotonic() - started:.1f}s")


def up(root: Path, services: bool, real_node: bool, images: bool = True) -> int:
    started = time.monotonic()
    s = stack.Stack(root, with_services=services, real_node=real_node)
    try:
        s.up(log=_log)
        if s.apply_crds():
            console.print("  applied deploy/crds/")
        if real_node:
            _real_workloads(s, images)
    except (
        stack.StackError,
        binaries.BuildError,
        node.NodeError,
        netns.NetworkError,
        node_images.ImageError,
        workloads.WorkloadsError,
    ) as error:
        console.print(f"[red]make up failed:[/red] {error}")
        return 1
    _summary(s)
    console.print(f"ready in {time.monotonic() - started:.1f}s. Next steps:")
    console.print(f"  source {root / 'env'} && kubectl get nodes")
    console.print(
        "  kubectl apply -f examples/local/ && kubectl get ai"
        if real_node
        else "  kubectl apply -f examples/ && kubectl get ai"
    )
    console.print(f"  logs: {root / 'logs'}/    stop: make down")
    return 0


def down(root: Path) -> int:
    stopped = stack.Stack(root).down()
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
    return 0


def status(root: Path) -> int:
    s = stack.Stack(root, with_services=True)
    _summary(s)
    return 0 if all(s.running().values()) else 3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="substratus-local", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "build"])
    parser.add_argument("--root", type=Path, default=Path(".dev"), help="state directory (default: .dev)")
    parser.add_argument("--no-services", action="store_true", help="start only the infrastructure")
    parser.add_argument("--no-real-node", action="store_true", help="kwok nodes only, no real kubelet (ADR 021)")
    parser.add_argument(
        "--no-images",
        action="store_true",
        help="do not build and push the storage and reference images (also IMAGES=0)",
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.command == "up":
        images = not args.no_images and os.environ.get("IMAGES", "1") != "0"
        sys.exit(up(root, services=not args.no_services, real_node=not args.no_real_node, images=images))
    if args.command == "down":
        sys.exit(down(root))
    if args.command == "build":
        binaries.ensure()
        sys.exit(0)
    sys.exit(status(root))


if __name__ == "__main__":
    main()
