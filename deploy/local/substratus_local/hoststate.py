"""A snapshot of the host state a real node can change, to check that ``down`` left nothing.

What a node touches outside its state directory: mounts, network namespaces, links, cgroups,
processes, netfilter tables and chains, the global sysctls the kubelet sets, and a few shared
directories (``/var/log/containers``, libcni's cache, containerd's and our ``/run`` dirs).
Compare two snapshots with :func:`difference`; processes are compared by what refers to the
stack (its root in the command line), since other programs on the machine come and go.
"""

from __future__ import annotations

import contextlib
import os
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


# Image builds elsewhere on the machine (buildah) mount and make cgroups of their own meanwhile.
IGNORED_MOUNTS = ("/var/lib/containers/",)
IGNORED_CGROUPS = ("libpod", "buildah")


def _mounts() -> frozenset[str]:
    with contextlib.suppress(OSError):
        points = (line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines())
        return frozenset(p for p in points if not p.startswith(IGNORED_MOUNTS))
    return frozenset()


def _cgroups() -> frozenset[str]:
    root = Path("/sys/fs/cgroup")
    found = set()
    for hierarchy in root.iterdir() if root.is_dir() else []:
        for directory, _, _ in os.walk(hierarchy):
            if not any(word in directory for word in IGNORED_CGROUPS):
                found.add(directory)
    return frozenset(found)


def _processes(marker: str) -> frozenset[str]:
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if marker in cmdline and str(os.getpid()) != proc.name:
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
    for directory in WATCHED_DIRS:
        if directory.exists():
            found.add(str(directory))
            found |= {str(path) for path in directory.rglob("*")}
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


def take(stack_root: Path) -> Snapshot:
    chains = _lines("iptables-nft-save") | _lines("iptables-legacy-save")
    return Snapshot(
        mounts=_mounts(),
        netns=_lines("ip", "netns", "list"),
        links=frozenset(line.split(":")[1].strip().split("@")[0] for line in _lines("ip", "-o", "link", "show")),
        cgroups=_cgroups(),
        processes=_processes(str(stack_root)),
        nft_tables=_lines("nft", "list", "tables"),
        # Chain names and policies, not their packet counters.
        iptables_chains=frozenset(" ".join(c.split()[:2]) for c in chains if c.startswith((":", "*"))),
        sysctls=_sysctls(),
        files=_files(),
    )


def difference(before: Snapshot, after: Snapshot) -> dict[str, list[str]]:
    """What ``after`` has that ``before`` had not, or lost, per kind; empty when nothing changed."""
    diff = {}
    for f in fields(Snapshot):
        old, new = getattr(before, f.name), getattr(after, f.name)
        changed = sorted(f"+ {x}" for x in new - old) + sorted(f"- {x}" for x in old - new)
        if changed:
            diff[f.name] = changed
    return diff
