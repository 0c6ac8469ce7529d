"""The real node's network: a namespace of its own joined to the host by a veth pair (as kind runs
a node in a container), on addresses the stack creates and removes.

Per stack, from one index ``n`` chosen free at start (ADR 021):

- network namespace ``substratus-<id>`` (``<id>``: 8 hex digits of the stack root's path);
- veth ``sbx<id>`` on the host, ``eth0`` in the namespace;
- link ``10.252.n.0/30``: host end ``.1``, node ``.2`` (the kubelet's node IP);
- Pod range ``10.253.n.0/24`` on the bridge ``cni0`` inside the namespace.

The API server, NATS, S3 and the registry keep binding 127.0.0.1; an nft table of ours on the host
(``ip substratus-<id>``) maps ``<host end>:<their ports>`` to 127.0.0.1, for packets from the veth
(with ``route_localnet`` on that veth only) and for the host's own connections. Nothing is bound to
or sent to the machine's own interfaces.

Host-wide state several stacks share lives under ``/run/substratus-local`` behind one flock: which
indexes are taken, and the kernel sysctls the first real node found (the kubelet changes a few
global ones; the last node to stop puts them back).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

RUN_DIR = Path("/run/substratus-local")
NETNS_DIR = Path("/run/netns")
LINK_PREFIX = "10.252"
POD_PREFIX = "10.253"
MAX_INDEX = 250

# Global (not per network namespace) sysctls the kubelet sets at start (its setupKernelTunables).
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)


class NetworkError(RuntimeError):
    """The node's network could not be made; the message says which command failed and why."""


def stack_id(root: Path) -> str:
    return hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class NodeNetwork:
    id: str
    index: int

    @property
    def netns(self) -> str:
        return f"substratus-{self.id}"

    @property
    def netns_path(self) -> Path:
        return NETNS_DIR / self.netns

    @property
    def host_veth(self) -> str:
        return f"sbx{self.id}"

    @property
    def host_ip(self) -> str:
        return f"{LINK_PREFIX}.{self.index}.1"

    @property
    def node_ip(self) -> str:
        return f"{LINK_PREFIX}.{self.index}.2"

    @property
    def link_cidr(self) -> str:
        return f"{LINK_PREFIX}.{self.index}.0/30"

    @property
    def pod_cidr(self) -> str:
        return f"{POD_PREFIX}.{self.index}.0/24"

    @property
    def nft_table(self) -> str:
        return f"substratus-{self.id}"


def run(*cmd: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(cmd), input=input, capture_output=True, text=True, timeout=60, check=False)
    if check and result.returncode != 0:
        raise NetworkError(f"`{' '.join(cmd)}` failed ({result.returncode}): {result.stderr.strip()}")
    return result


def in_netns(net: NodeNetwork, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("nsenter", f"--net={net.netns_path}", "--", *cmd, check=check)


@contextlib.contextmanager
def host_lock() -> Iterator[None]:
    """One stack at a time changes host-wide state (indexes, saved sysctls)."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with (RUN_DIR / "lock").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _claims() -> dict[str, dict[str, object]]:
    """Live claims: ``{id: {"index": n, "root": path}}``; a claim whose netns is gone is stale."""
    claims = {}
    for path in sorted((RUN_DIR / "nodes").glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            claim = json.loads(path.read_text())
            if (NETNS_DIR / f"substratus-{path.stem}").exists():
                claims[path.stem] = claim
                continue
        path.unlink(missing_ok=True)
    return claims


def _host_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    routes = json.loads(run("ip", "-j", "-4", "route", "show", "table", "all").stdout or "[]")
    nets = []
    for route in routes:
        dst = route.get("dst", "")
        if dst and dst != "default":
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False))
    return nets


def claim(root: Path) -> NodeNetwork:
    """This stack's network (the same one if it already holds a claim); call under ``host_lock``."""
    sid = stack_id(root)
    claims = _claims()
    if sid in claims:
        return NodeNetwork(sid, int(str(claims[sid]["index"])))
    taken = {int(str(c["index"])) for c in claims.values()}
    host = _host_networks()
    for index in range(1, MAX_INDEX + 1):
        if index in taken:
            continue
        ours = [ipaddress.ip_network(f"{p}.{index}.0/24") for p in (LINK_PREFIX, POD_PREFIX)]
        if any(o.overlaps(h) for o in ours for h in host):
            continue
        (RUN_DIR / "nodes").mkdir(parents=True, exist_ok=True)
        (RUN_DIR / "nodes" / f"{sid}.json").write_text(json.dumps({"index": index, "root": str(root)}) + "\n")
        return NodeNetwork(sid, index)
    raise NetworkError(f"no free address range left under {LINK_PREFIX}.0.0/16 and {POD_PREFIX}.0.0/16")


def release(net: NodeNetwork) -> bool:
    """Drop this stack's claim; True when no other real node is left (call under ``host_lock``)."""
    (RUN_DIR / "nodes" / f"{net.id}.json").unlink(missing_ok=True)
    if _claims():
        return False
    with contextlib.suppress(OSError):
        (RUN_DIR / "nodes").rmdir()
    return True


def existing(root: Path) -> NodeNetwork | None:
    """The network this stack claimed, whether or not its namespace still exists."""
    sid = stack_id(root)
    with contextlib.suppress(OSError, ValueError, KeyError):
        claim_ = json.loads((RUN_DIR / "nodes" / f"{sid}.json").read_text())
        return NodeNetwork(sid, int(claim_["index"]))
    if (NETNS_DIR / f"substratus-{sid}").exists():
        return NodeNetwork(sid, 0)  # claim lost: the namespace and veth are still removed by name
    return None


# ---- sysctls ---------------------------------------------------------------------------------


# Host directories the node's programs create when missing (ip netns, libcni's cache, the kubelet's
# log links); the last node to stop removes those that did not exist before the first one, if empty.
SHARED_DIRS = (
    Path("/run/netns"),
    Path("/var/lib/cni/results"),
    Path("/var/lib/cni"),
    Path("/var/log/containers"),
    Path("/var/log/pods"),
)
# Files the node's iptables calls create when missing (the kubelet's, in the node's namespace).
SHARED_FILES = (Path("/run/xtables.lock"),)


def save_host_state(others_running: bool) -> None:
    """Remember the global sysctls and which shared directories exist, before the first real node
    changes them (under ``host_lock``, before ``claim``)."""
    saved = RUN_DIR / "host-state.json"
    if saved.exists() and others_running:
        return  # another node already runs: what it saved is the machine's own state
    values = {}
    for key in KUBELET_SYSCTLS:
        with contextlib.suppress(OSError):
            values[key] = (Path("/proc/sys") / key).read_text().strip()
    missing = [str(d) for d in (*SHARED_DIRS, *SHARED_FILES) if not d.exists()]
    saved.write_text(json.dumps({"sysctls": values, "missing_dirs": missing}, indent=2) + "\n")


def others_running(root: Path) -> bool:
    """Whether a real node of another stack holds a claim (under ``host_lock``)."""
    return any(sid != stack_id(root) for sid in _claims())


def restore_host_state() -> None:
    """Put back what ``save_host_state`` found; only when no real node is left (under ``host_lock``)."""
    saved = RUN_DIR / "host-state.json"
    if not saved.exists():
        return
    state = json.loads(saved.read_text())
    for key, value in state["sysctls"].items():
        with contextlib.suppress(OSError):
            (Path("/proc/sys") / key).write_text(value + "\n")
    for directory in state["missing_dirs"]:
        path = Path(directory)
        if path == NETNS_DIR:  # `ip netns add` made it a mount point of its own
            run("umount", directory, check=False)
        with contextlib.suppress(OSError):
            if path in SHARED_FILES:
                path.unlink()
            else:
                path.rmdir()  # only if empty: never another program's files
    saved.unlink()


# ---- links and the host's port map -----------------------------------------------------------


def create(net: NodeNetwork, host_ports: list[int]) -> None:
    """The namespace, the veth pair and its addresses, and the host's port map; idempotent."""
    if not net.netns_path.exists():
        run("ip", "netns", "add", net.netns)
    if run("ip", "link", "show", net.host_veth, check=False).returncode != 0:
        run("ip", "link", "add", net.host_veth, "type", "veth", "peer", "name", f"{net.host_veth}n")
        run("ip", "link", "set", f"{net.host_veth}n", "netns", net.netns, "name", "eth0")
        run("ip", "addr", "add", f"{net.host_ip}/30", "dev", net.host_veth)
        run("ip", "link", "set", net.host_veth, "up")
        in_netns(net, "ip", "addr", "add", f"{net.node_ip}/30", "dev", "eth0")
        in_netns(net, "ip", "link", "set", "lo", "up")
        in_netns(net, "ip", "link", "set", "eth0", "up")
        in_netns(net, "ip", "route", "add", "default", "via", net.host_ip)
    # Packets from the node to <host end>:<port> may be delivered to 127.0.0.1 (this veth only).
    Path(f"/proc/sys/net/ipv4/conf/{net.host_veth}/route_localnet").write_text("1\n")
    if run("nft", "list", "table", "ip", net.nft_table, check=False).returncode != 0:
        map_ports(net, host_ports)  # once: replacing it would drop the map for running Pods


def map_ports(net: NodeNetwork, ports: list[int]) -> None:
    """``<host end>:<port>`` -> ``127.0.0.1:<port>`` for the stack's servers (replaces the table)."""
    run("nft", "delete", "table", "ip", net.nft_table, check=False)
    port_set = ", ".join(str(p) for p in sorted(set(ports)))
    rules = f"""
table ip {net.nft_table} {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    iifname "{net.host_veth}" ip daddr {net.host_ip} tcp dport {{ {port_set} }} dnat to 127.0.0.1
  }}
  chain output {{
    type nat hook output priority -100; policy accept;
    ip daddr {net.host_ip} tcp dport {{ {port_set} }} dnat to 127.0.0.1
  }}
}}
"""
    run("nft", "-f", "-", input=rules)


def destroy(net: NodeNetwork) -> None:
    """Remove the port map, the veth pair (both ends go together) and the namespace."""
    run("nft", "delete", "table", "ip", net.nft_table, check=False)
    run("ip", "link", "delete", net.host_veth, check=False)
    if net.netns_path.exists():
        run("ip", "netns", "delete", net.netns, check=False)
