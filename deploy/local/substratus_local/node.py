"""The local stack's real node: containerd, kubelet and kube-proxy in a network namespace of the
stack (``netns.py``), registered beside the kwok nodes (ADR 021), with the admission policy that
sends Pods of local-registry images to it (ADR 022), and a teardown that leaves nothing (ADR 023).

The stack (``stack.py``) calls :func:`start` after the control plane, NATS, S3 and the registry,
and :func:`stop` first on ``down``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from substratus_local import binaries, netns, node_config, node_images

if TYPE_CHECKING:
    from substratus_local.stack import Stack

PROCESSES = ("containerd", "kubelet", "kube-proxy")
CGROUP_ROOT = Path("/sys/fs/cgroup")
POLICY_NAME = "substratus-local-real-node"
ENDPOINTS_NAME = "kubernetes-substratus-local"
K8S_NAMESPACE = "k8s.io"  # containerd's namespace for the CRI


class NodeError(RuntimeError):
    """The real node did not start; the message names the step and where its log is."""


def paths(stack: Stack) -> node_config.NodePaths:
    return node_config.NodePaths(stack.root / "node", netns.RUN_DIR / f"c-{netns.stack_id(stack.root)}")


def cgroup_root(net: netns.NodeNetwork) -> str:
    return f"/substratus-{net.id}"


def shim_socket_dir(net: netns.NodeNetwork) -> Path:
    return netns.RUN_DIR / f"s-{net.id}"


def node_ports(stack: Stack) -> list[int]:
    """The stack's servers that Pods and the node reach on the veth's host end."""
    return [stack.port(name) for name in ("apiserver", "nats", "s3", "s3-filer", "registry")]


# ---- start -----------------------------------------------------------------------------------


def start(stack: Stack, log: Callable[[str], None] | None = None) -> netns.NodeNetwork:
    """Start whatever part of the node is not running; wait until the Node is Ready."""
    say = log or (lambda _: None)
    if os.geteuid() != 0:
        raise NodeError(
            "the real node needs root (network namespace, mounts, cgroups): run as root or `make up REAL_NODE=0`"
        )
    bins = binaries.ensure(["kubelet", "kube-proxy", "containerd", "containerd-shim-runc-v2", "ctr"])
    runc = shutil.which("runc")
    if runc is None or not Path("/usr/lib/cni/bridge").exists() or shutil.which("nft") is None:
        raise NodeError("the real node needs Debian's runc, containernetworking-plugins and nftables (make bootstrap)")
    with netns.host_lock():
        netns.save_host_state(netns.others_running(stack.root))
        net = netns.claim(stack.root)
        netns.create(net, node_ports(stack))
    p = paths(stack)
    _write_files(stack, net, p, runc, bins)
    _make_cgroup_root(cgroup_root(net))
    env = {"PATH": f"{bins['containerd'].parent}:{os.environ.get('PATH', '')}"}
    if not stack.alive("containerd"):
        started = time.monotonic()
        stack.spawn_in_netns("containerd", net, [str(bins["containerd"]), f"--config={p.containerd_config}"], env)
        stack.wait_for("containerd", lambda: _ctr(bins, p, "version").returncode == 0, 30, "containerd")
        archive = node_images.pause_archive()
        _ctr(bins, p, "images", "import", str(archive), check=True)
        say(f"started containerd in {time.monotonic() - started:.1f}s")
    _publish_api_endpoint(stack, net)
    _apply_policy(stack)
    if not stack.alive("kubelet"):
        started = time.monotonic()
        stack.spawn_in_netns("kubelet", net, _kubelet_argv(stack, net, p, bins), env)
        stack.wait_for("real node Ready", lambda: _node_ready(stack), 90, "kubelet")
        say(f"real node {node_config.NODE_NAME} Ready {time.monotonic() - started:.1f}s after the kubelet started")
    if not stack.alive("kube-proxy"):
        started = time.monotonic()
        argv = [str(bins["kube-proxy"]), f"--config={p.base / 'kube-proxy.yaml'}"]
        stack.spawn_in_netns("kube-proxy", net, argv, env)
        url = f"http://{net.node_ip}:10256/healthz"
        stack.wait_for("kube-proxy", lambda: stack.http_ok(url), 60, "kube-proxy")
        say(f"started kube-proxy in {time.monotonic() - started:.1f}s")
    return net


def _ctr(
    bins: dict[str, Path], p: node_config.NodePaths, *args: str, check: bool = False
) -> subprocess.CompletedProcess[str]:
    cmd = [str(bins["ctr"]), f"--address={p.containerd_socket}", f"--namespace={K8S_NAMESPACE}", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if check and result.returncode != 0:
        raise NodeError(f"`{' '.join(cmd)}` failed: {result.stderr.strip()}")
    return result


def _write_files(
    stack: Stack, net: netns.NodeNetwork, p: node_config.NodePaths, runc: str, bins: dict[str, Path]
) -> None:
    # The kubelet's own sockets (pod-resources, device plugins) stay under its root directory.
    if len(str(p.kubelet_root / "device-plugins" / "kubelet.sock")) > 107:
        raise NodeError(f"stack root too deep for the kubelet's unix sockets (107 bytes at most): {stack.root}")
    for directory in (p.base, p.sockets, p.containerd_root, p.containerd_state, p.cni_conf_dir, p.cni_ipam_dir, p.etc):
        directory.mkdir(parents=True, exist_ok=True)
    sockets = shim_socket_dir(net)
    sockets.mkdir(parents=True, exist_ok=True)
    _write(p.containerd_config, node_config.containerd_toml(p, node_images.PAUSE_IMAGE, runc, sockets))
    # Images are named 127.0.0.1:<port>/... as the builder pushes them; the node pulls them from
    # the registry on the veth's host end, over plain HTTP.
    for name in registry_names(stack):
        hosts = p.registry_hosts / name
        hosts.mkdir(parents=True, exist_ok=True)
        upstream = f"{net.host_ip}:{stack.port('registry')}"
        _write(hosts / "hosts.toml", node_config.registry_hosts_toml(upstream))
    gateway = net.pod_cidr.rsplit(".", 1)[0] + ".1"
    conflist = node_config.cni_conflist(f"substratus-{net.id}", net.pod_cidr, gateway, p.cni_ipam_dir)
    _write(p.cni_conf_dir / "10-substratus.conflist", conflist)
    _write(p.etc / "resolv.conf", "# no DNS on the local stack's real node\n")
    ca = stack.pki_dir / "ca.crt"
    server = f"https://{net.host_ip}:{stack.port('apiserver')}"
    certs = p.base / "pki"
    node_config.issue_client_cert(
        stack.pki_dir, "kubelet-client", f"system:node:{node_config.NODE_NAME}", "system:nodes", certs
    )
    node_config.issue_client_cert(stack.pki_dir, "kube-proxy-client", "system:kube-proxy", None, certs)
    for stem in ("kubelet", "kube-proxy"):
        kubeconfig = node_config.kubeconfig(server, ca, certs / f"{stem}-client.crt", certs / f"{stem}-client.key")
        _write(p.base / f"{stem}.kubeconfig", kubeconfig)
    kubelet = node_config.kubelet_config(p, net.node_ip, ca, cgroup_root(net))
    _write(p.base / "kubelet.yaml", json.dumps(kubelet, indent=2) + "\n")
    proxy = node_config.kube_proxy_config(p.base / "kube-proxy.kubeconfig", net.node_ip, net.pod_cidr)
    _write(p.base / "kube-proxy.yaml", json.dumps(proxy, indent=2) + "\n")


def _write(path: Path, text: str) -> None:
    """Write only a changed file: kube-proxy exits when its configuration file changes."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _kubelet_argv(stack: Stack, net: netns.NodeNetwork, p: node_config.NodePaths, bins: dict[str, Path]) -> list[str]:
    label = "=".join(node_config.NODE_LABEL)
    return [
        str(bins["kubelet"]),
        f"--config={p.base / 'kubelet.yaml'}",
        f"--kubeconfig={p.base / 'kubelet.kubeconfig'}",
        f"--root-dir={p.kubelet_root}",
        f"--hostname-override={node_config.NODE_NAME}",
        f"--node-ip={net.node_ip}",
        f"--node-labels={label}",
        f"--cert-dir={p.base / 'kubelet-certs'}",
        "--v=1",
    ]


def _make_cgroup_root(root: str) -> None:
    """The kubelet wants its cgroup root to exist in every hierarchy."""
    for hierarchy in _hierarchies():
        (hierarchy / root.lstrip("/")).mkdir(exist_ok=True)


def _hierarchies() -> list[Path]:
    if not CGROUP_ROOT.is_dir():
        return []
    return [h for h in sorted(CGROUP_ROOT.iterdir()) if h.is_dir() and (h / "cgroup.procs").exists()]


def _node_ready(stack: Stack) -> bool:
    out = stack.kubectl(
        "get",
        "node",
        node_config.NODE_NAME,
        "-o",
        'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
        check=False,
    ).stdout
    return out.strip() == "True"


def _publish_api_endpoint(stack: Stack, net: netns.NodeNetwork) -> None:
    """The ``kubernetes`` Service's endpoint, so Pods reach the API server through its ClusterIP
    (the API server runs with ``--endpoint-reconciler-type=none``: it advertises 127.0.0.1)."""
    slice_ = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": ENDPOINTS_NAME,
            "namespace": "default",
            "labels": {
                "kubernetes.io/service-name": "kubernetes",
                "endpointslice.kubernetes.io/managed-by": "substratus-local",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [net.host_ip], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": stack.port("apiserver"), "protocol": "TCP"}],
    }
    stack.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=substratus-local",
        "-f",
        "-",
        input=json.dumps(slice_),
    )


def policy_yaml(registry_prefixes: list[str]) -> str:
    """The MutatingAdmissionPolicy of ADR 022, as JSON (valid YAML) for ``kubectl apply``."""
    key, value = node_config.NODE_LABEL
    taint = node_config.NODE_TAINT
    prefixes = "[" + ", ".join(f"'{p}'" for p in registry_prefixes) + "]"
    local = f"{prefixes}.exists(p, c.image.startsWith(p))"
    toleration = (
        f"{{'key': '{taint['key']}', 'operator': 'Equal', 'value': '{taint['value']}', 'effect': '{taint['effect']}'}}"
    )
    patch = (
        "(has(object.spec.tolerations) "
        f"? [JSONPatch{{op: 'add', path: '/spec/tolerations/-', value: {toleration}}}] "
        f": [JSONPatch{{op: 'add', path: '/spec/tolerations', value: [{toleration}]}}]) + "
        "(has(object.spec.nodeSelector) "
        f"? [JSONPatch{{op: 'add', path: '/spec/nodeSelector/' + jsonpatch.escapeKey('{key}'), value: '{value}'}}] "
        f": [JSONPatch{{op: 'add', path: '/spec/nodeSelector', value: {{'{key}': '{value}'}}}}])"
    )
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME},
        "spec": {
            "failurePolicy": "Fail",
            "reinvocationPolicy": "Never",
            "matchConstraints": {
                "resourceRules": [
                    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}
                ]
            },
            "matchConditions": [
                {
                    "name": "images-from-the-local-registry",
                    "expression": f"object.spec.containers.all(c, {local}) && "
                    f"(!has(object.spec.initContainers) || object.spec.initContainers.all(c, {local}))",
                },
                {
                    "name": "no-placement-of-its-own",
                    "expression": "!has(object.spec.nodeName) && "
                    "(!has(object.spec.nodeSelector) || size(object.spec.nodeSelector) == 0) && "
                    "(!has(object.spec.affinity) || !has(object.spec.affinity.nodeAffinity))",
                },
                {
                    "name": "no-gpu",
                    "expression": "!object.spec.containers.exists(c, has(c.resources) && "
                    "((has(c.resources.limits) && 'nvidia.com/gpu' in c.resources.limits) || "
                    "(has(c.resources.requests) && 'nvidia.com/gpu' in c.resources.requests)))",
                },
            ],
            "mutations": [{"patchType": "JSONPatch", "jsonPatch": {"expression": patch}}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY_NAME},
        "spec": {"policyName": POLICY_NAME},
    }
    return json.dumps(policy) + "\n---\n" + json.dumps(binding) + "\n"


def registry_names(stack: Stack) -> list[str]:
    """The names the node pulls from the stack's registry: its address and the fixed alias."""
    return [stack.registry, f"localhost:{stack.port('registry')}", node_config.REGISTRY_ALIAS]


def _apply_policy(stack: Stack) -> None:
    prefixes = [f"{name}/" for name in registry_names(stack)]
    stack.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=substratus-local",
        "-f",
        "-",
        input=policy_yaml(prefixes),
    )


# ---- stop ------------------------------------------------------------------------------------


def stop(stack: Stack) -> list[str]:
    """Tear the node down in the order that leaves nothing behind (ADR 023); what was stopped."""
    net = netns.existing(stack.root)
    p = paths(stack)
    if net is None and not p.base.exists():
        return []
    stopped: list[str] = []
    bins = binaries.ensure(["containerd", "ctr"])
    api = stack.alive("apiserver")
    if api:
        _delete_pods(stack)
    for name in ("kube-proxy", "kubelet"):
        if stack.pid(name) is not None:
            stack.stop_process(name)
            stopped.append(name)
    if net is not None and net.netns_path.exists() and p.containerd_config.exists():
        if not stack.alive("containerd"):  # crashed: start it again to remove what it left
            env = {"PATH": f"{bins['containerd'].parent}:{os.environ.get('PATH', '')}"}
            stack.spawn_in_netns("containerd", net, [str(bins["containerd"]), f"--config={p.containerd_config}"], env)
            with contextlib.suppress(Exception):
                stack.wait_for("containerd", lambda: _ctr(bins, p, "version").returncode == 0, 20, "containerd")
        _remove_containers(bins, p)
    if stack.pid("containerd") is not None:
        stack.stop_process("containerd")
        stopped.append("containerd")
    if api:
        stack.kubectl("delete", "node", node_config.NODE_NAME, "--ignore-not-found", "--wait=false", check=False)
        for kind, name in (
            ("mutatingadmissionpolicybinding", POLICY_NAME),
            ("mutatingadmissionpolicy", POLICY_NAME),
        ):
            stack.kubectl("delete", kind, name, "--ignore-not-found", check=False)
        stack.kubectl("delete", "endpointslice", ENDPOINTS_NAME, "-n", "default", "--ignore-not-found", check=False)
    _kill_shims(p)
    if net is not None:
        _kill_cgroup(cgroup_root(net))
    _unmount_under(p.base)
    if net is not None:
        with netns.host_lock():
            netns.destroy(net)
            shutil.rmtree(shim_socket_dir(net), ignore_errors=True)
            shutil.rmtree(p.sockets, ignore_errors=True)
            _remove_cni_cache(f"substratus-{net.id}")
            _remove_log_links(p.pod_logs)
            if netns.release(net):
                netns.restore_host_state()
    else:
        _remove_log_links(p.pod_logs)
    _remove_cgroup_dirs(cgroup_root(net) if net is not None else None)
    return stopped


def _delete_pods(stack: Stack) -> None:
    """Pods on the node go first, so the kubelet stops their sandboxes through the CRI (CNI DEL)."""
    selector = f"spec.nodeName={node_config.NODE_NAME}"
    stack.kubectl(
        "delete", "pods", "-A", f"--field-selector={selector}", "--grace-period=1", "--wait=false", check=False
    )
    if stack.alive("kubelet"):
        with contextlib.suppress(Exception):
            stack.wait_for("Pods of the real node gone", lambda: _no_pods(stack, selector), 30, "kubelet")


def _no_pods(stack: Stack, selector: str) -> bool:
    out = stack.kubectl("get", "pods", "-A", f"--field-selector={selector}", "-o", "name", check=False)
    return out.returncode == 0 and not out.stdout.strip()


def _remove_containers(bins: dict[str, Path], p: node_config.NodePaths) -> None:
    """Whatever the kubelet did not remove: kill and delete every task and container."""
    tasks = _ctr(bins, p, "tasks", "ls", "-q").stdout.split()
    for task in tasks:
        _ctr(bins, p, "tasks", "kill", "-s", "SIGKILL", task)
    for task in tasks:
        for _ in range(50):
            if _ctr(bins, p, "tasks", "delete", "-f", task).returncode == 0:
                break
            if task not in _ctr(bins, p, "tasks", "ls", "-q").stdout.split():
                break
            time.sleep(0.1)
    for container in _ctr(bins, p, "containers", "ls", "-q").stdout.split():
        _ctr(bins, p, "containers", "delete", container)


def _kill_shims(p: node_config.NodePaths) -> None:
    """Shims outlive containerd (own process groups): kill those started for our socket, by PID."""
    needle = str(p.containerd_socket).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes()
            if b"containerd-shim" in cmdline and needle in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc.name), signal.SIGKILL)


def _cgroup_dirs(root: str) -> list[Path]:
    """Every cgroup under ``root`` in every hierarchy, deepest first."""
    found: list[Path] = []
    for hierarchy in _hierarchies():
        top = hierarchy / root.lstrip("/")
        if top.is_dir():
            found += [Path(d) for d, _, _ in os.walk(top)]
    return sorted(found, key=lambda d: len(d.parts), reverse=True)


def _kill_cgroup(root: str) -> None:
    for _ in range(50):
        pids = set()
        for d in _cgroup_dirs(root):
            with contextlib.suppress(OSError):
                pids |= {int(x) for x in (d / "cgroup.procs").read_text().split()}
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _remove_cgroup_dirs(root: str | None) -> None:
    if root is None:
        return
    for d in _cgroup_dirs(root):
        for _ in range(20):
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)  # a killed process may take a moment to leave the cgroup


def mounts_under(base: Path) -> list[str]:
    """Mount points at or under ``base`` (``/proc/self/mountinfo``, octal escapes decoded)."""
    prefix = str(base.resolve())
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


def _unmount_under(base: Path) -> None:
    for _ in range(5):
        points = mounts_under(base)
        if not points:
            return
        for point in sorted(points, key=lambda m: m.count("/"), reverse=True):
            if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _remove_cni_cache(network: str) -> None:
    """libcni's cached results of our sandboxes (left when CNI DEL never ran, e.g. after a crash):
    ``<network>-<sandbox>-eth0`` and containerd's loopback ``cni-loopback-<sandbox>-lo``."""
    results = Path("/var/lib/cni/results")
    if results.is_dir():
        for entry in results.glob(f"{network}-*"):
            sandbox = entry.name.removeprefix(f"{network}-").rsplit("-", 1)[0]
            (results / f"cni-loopback-{sandbox}-lo").unlink(missing_ok=True)
            entry.unlink(missing_ok=True)


def _remove_log_links(pod_logs: Path) -> None:
    """The kubelet links /var/log/containers/*.log to its Pods' logs (a fixed path)."""
    links = Path("/var/log/containers")
    if not links.is_dir():
        return
    for link in links.iterdir():
        with contextlib.suppress(OSError):
            if link.is_symlink() and os.readlink(link).startswith(str(pod_logs)):
                link.unlink()
