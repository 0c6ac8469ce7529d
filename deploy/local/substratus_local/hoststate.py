"""A snapshot of the host state a real node can change, to check that ``down`` left nothing.

What a node touches outside its state directory: mounts, network namespaces, links, cgroups,
processes, netfilter tables and chains, the global sysctls the kubelet sets, and a few shared
directories (``/var/log/containers``, libcni's cache, containerd's and our ``/run`` dirs).
Compare two snapshots with :func:`difference`; processes are compared by what refers to the
stack (its root in the command line), since other programs on the machine come and go.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from dataclasses import dataclass, fields
from pathlib import Path

from substratus_local import netns

SYSCTLS = (*netns.KUBELET_SYSCTLS, "net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables")
WATCHED_DIRS = (
    Path("/var/log/containers"),
    Path("/var/log/pods"),
    Path("/var/lib/cni"),
    Path("/run/containerd"),
    Path("/run/netns"),
    netns.RUN_DIR,
)


def _lines(*cmd: str) -> frozenset[str]:
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(line.strip() for line in out.splitlines() if line.strip())


# Other programs on the machine (image builds with buildah or mmdebstrap) mount and make cgroups of
# their own meanwhile; a node mounts only under its stack's root and these host paths.
NODE_MOUNT_PLACES = ("/run/netns", "/run/containerd", "/run/substratus-local", "/var/lib/kubelet", "/var/lib/cni")
IGNORED_CGROUPS = ("libpod", "buildah")


def _mounts(stack_root: Path) -> frozenset[str]:
    places = (str(stack_root.resolve()), *NODE_MOUNT_PLACES)
    with contextlib.suppress(OSError):
        points = (line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines())
        return frozenset(p for p in points if p.startswith(places))
    return frozenset()


def _cgroups() -> frozenset[str]:
    root = Path("/sys/fs/cgroup")
    found = set()
    for hierarchy in root.iterdir() if root.is_dir() else []:
        for directory, _, _ in os.walk(hierarchy):
            if not any(word in directory for word in IGNORED_CGROUPS):
                found.add(directory)
    return frozenset(found)


def _processes(stack_root: Path) -> frozenset[str]:
    """Processes naming the stack: its root, or its sockets' directory (shims name only that)."""
    markers = (str(stack_root.resolve()), str(netns.RUN_DIR / f"c-{netns.stack_id(stack_root)}"))
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if any(m in cmdline for m in markers) and str(os.getpid()) != proc.name:
                    found.add(f"{proc.name} {cmdline.strip()}")
    return frozenset(found)


def _sysctls() -> frozenset[str]:
    values = set()
    for key in SYSCTLS:
        with contextlib.suppress(OSError):
            values.add(f"{key}={(Path('/proc/sys') / key).read_text().strip()}")
    return frozenset(values)


def _files() -> frozenset[str]:
    found = set()
    found |= {str(f) for f in netns.SHARED_FILES if f.exists()}
    for directory in WATCHED_DIRS:
        if directory.exists():
            found.add(str(directory))
            for path in directory.rglob("*"):
                # A log link says whose Pod it is by its target: keep that in the snapshot.
                found.add(f"{path} -> {os.readlink(path)}" if path.is_symlink() else str(path))
    # The shared flock file (and its directory) stay: removing them would race other stacks.
    found -= {str(netns.RUN_DIR), str(netns.RUN_DIR / "lock")}
    return frozenset(found)


@dataclass(frozen=True)
class Snapshot:
    mounts: frozenset[str]
    netns: frozenset[str]
    links: frozenset[str]
    cgroups: frozenset[str]
    processes: frozenset[str]
    nft_tables: frozenset[str]
    iptables_chains: frozenset[str]
    sysctls: frozenset[str]
    files: frozenset[str]
    other_roots: frozenset[str]


def take(stack_root: Path) -> Snapshot:
    chains = _lines("iptables-nft-save") | _lines("iptables-legacy-save")
    return Snapshot(
        mounts=_mounts(stack_root),
        netns=_lines("ip", "netns", "list"),
        links=frozenset(line.split(":")[1].strip().split("@")[0] for line in _lines("ip", "-o", "link", "show")),
        cgroups=_cgroups(),
        processes=_processes(stack_root),
        nft_tables=_lines("nft", "list", "tables"),
        # Chain names and policies, not their packet counters.
        iptables_chains=frozenset(" ".join(c.split()[:2]) for c in chains if c.startswith((":", "*"))),
        sysctls=_sysctls(),
        files=_files(),
        other_roots=_other_roots(stack_root),
    )


_OTHER_ID = re.compile(r"(?:substratus-|sbx|s-|c-|nodes/)([0-9a-f]{8})")
# containerd's loopback results name a sandbox, not its stack: compared only when no other node runs.
_UNATTRIBUTED = ("/var/lib/cni/results/cni-loopback-",)
SHARED = (
    str(netns.RUN_DIR / "host-state.json"),
    str(netns.RUN_DIR / "nodes"),
    *map(str, WATCHED_DIRS),
    *map(str, netns.SHARED_FILES),
)


def _foreign(item: str, own_id: str, own_root: str, other_roots: tuple[str, ...]) -> bool:
    """Whether ``item`` belongs to another stack's real node (its id or its root in it)."""
    if any(m.group(1) != own_id for m in _OTHER_ID.finditer(item)):
        return True
    if any(root in item for root in other_roots):
        return True
    if " -> " in item:  # a log link: ours only if it points into our stack
        return not item.split(" -> ", 1)[1].startswith(own_root)
    return False


def difference(before: Snapshot, after: Snapshot, stack_root: Path) -> dict[str, list[str]]:
    """What ``after`` has that ``before`` had not, or lost, per kind; empty when nothing changed.

    Real nodes of other stacks may start and stop meanwhile: what carries their id or root is
    left out, and while one runs, so are the state all nodes share (global sysctls, shared dirs)."""
    own_id = netns.stack_id(stack_root)
    others = tuple(sorted(before.other_roots | after.other_roots))
    shared_too = bool(others)
    diff = {}
    for f in fields(Snapshot):
        if f.name == "other_roots":
            continue
        old, new = getattr(before, f.name), getattr(after, f.name)
        changed = sorted(f"+ {x}" for x in new - old) + sorted(f"- {x}" for x in old - new)
        changed = [c for c in changed if not _foreign(c[2:], own_id, str(stack_root.resolve()), others)]
        if shared_too:
            changed = [
                c
                for c in changed
                if f.name != "sysctls" and c[2:] not in SHARED and not c[2:].startswith(_UNATTRIBUTED)
            ]
        if changed:
            diff[f.name] = changed
    return diff


def _other_roots(stack_root: Path) -> frozenset[str]:
    """Roots of the other stacks whose real node holds a claim now."""
    roots = set()
    for claim in (netns.RUN_DIR / "nodes").glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            root = str(json.loads(claim.read_text())["root"])
            if root != str(stack_root.resolve()):
                roots.add(root)
    return frozenset(roots)
