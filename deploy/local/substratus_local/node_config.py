"""Configuration files of the real node: containerd, CNI, kubelet, kube-proxy, their kubeconfigs and
client certificates. Pure functions of the node's paths and addresses (what they must say is in
``docs/adr/021-a-real-node-beside-the-kwok-nodes.md``)."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NODE_NAME = "substratus-real-node"
NODE_LABEL = ("substratus.ai/real-node", "true")
NODE_TAINT = {"key": "substratus.ai/real-node", "value": "true", "effect": "NoSchedule"}
# The fixed name images for the local stack carry (ADR 028), whatever port its registry has.
REGISTRY_ALIAS = "registry.substratus.local"


@dataclass(frozen=True)
class NodePaths:
    """Everything the node writes lives under ``<stack root>/node`` (mounts included), except its
    unix sockets: ``sockets`` is a short directory of the stack (a socket path has at most 107
    bytes, and a stack root may be deep)."""

    base: Path
    sockets: Path

    @property
    def containerd_root(self) -> Path:
        return self.base / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.base / "containerd" / "state"

    @property
    def containerd_socket(self) -> Path:
        return self.sockets / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.base / "containerd" / "config.toml"

    @property
    def registry_hosts(self) -> Path:
        return self.base / "containerd" / "certs.d"

    @property
    def cni_conf_dir(self) -> Path:
        return self.base / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.base / "cni" / "ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.base / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.base / "pod-logs"

    @property
    def etc(self) -> Path:
        return self.base / "etc"


def containerd_toml(paths: NodePaths, sandbox_image: str, runc: str, shim_sockets: Path) -> str:
    p = paths
    return f"""# Written by the local stack for its real node.
version = 3
root = "{p.containerd_root}"
state = "{p.containerd_state}"
# NRI would open /var/run/nri/nri.sock, shared by every containerd on the machine.
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "{p.containerd_socket}"

[ttrpc]
  address = "{p.containerd_socket}.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.shim.v1.manager"]
  # Shim sockets (the path must be short) in a directory of this stack, not /run/containerd/s.
  socket_dir = "{shim_sockets}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{p.base / "containerd" / "opt"}"

[plugins."io.containerd.cri.v1.runtime"]
  # Processes here lack CAP_SYS_RESOURCE: a negative oom_score_adj would fail every sandbox.
  restrict_oom_score_adj = true
  # Sandbox network namespaces are mounted under the state dir, where teardown finds them.
  netns_mounts_under_state_dir = true
  enable_cdi = false

  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"

    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        Root = "{p.containerd_state / "runc"}"
        SystemdCgroup = false

  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{p.cni_conf_dir}"
    max_conf_num = 1

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"

  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{sandbox_image}"

  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "{p.registry_hosts}"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""


def registry_hosts_toml(upstream: str) -> str:
    """containerd's ``hosts.toml`` for ``127.0.0.1:<port>``: pulled over plain HTTP from ``upstream``
    (the registry's address as the node reaches it)."""
    return f'server = "http://{upstream}"\n\n[host."http://{upstream}"]\n  capabilities = ["pull", "resolve"]\n'


def cni_conflist(name: str, pod_cidr: str, gateway: str, ipam_dir: Path) -> str:
    conf = {
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": pod_cidr, "gateway": gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(conf, indent=2) + "\n"


def kubelet_config(paths: NodePaths, node_ip: str, ca_file: Path, cgroup_root: str) -> dict[str, object]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # This machine has cgroup v1 only; since 1.35 the kubelet refuses it unless told otherwise.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",  # no systemd here
        # Pods' cgroups under a root of this stack, so two stacks' kubelets never share `kubepods`.
        "cgroupRoot": cgroup_root,
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "address": node_ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "podLogsDir": str(paths.pod_logs),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        "registerWithTaints": [NODE_TAINT],
        "failSwapOn": False,
        "resolvConf": str(paths.etc / "resolv.conf"),
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 95,
        "imageGCLowThresholdPercent": 90,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "2%", "imagefs.available": "2%"},
        "nodeStatusReportFrequency": "10s",
        "nodeStatusUpdateFrequency": "5s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "maxPods": 50,
        "localStorageCapacityIsolation": True,
    }


def kube_proxy_config(kubeconfig: Path, node_ip: str, cluster_cidr: str) -> dict[str, object]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "nftables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "bindAddress": node_ip,
        "healthzBindAddress": f"{node_ip}:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "clusterCIDR": cluster_cidr,
        # The netfilter conntrack sysctls are global: leave them as they are.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


def kubeconfig(server: str, ca: Path, cert: Path, key: Path) -> str:
    """A kubeconfig for the node's components. The API server's certificate names 127.0.0.1 and
    ``kubernetes``, not the veth's host end, so the name checked is ``kubernetes``."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {"server": server, "certificate-authority": str(ca), "tls-server-name": "kubernetes"},
            }
        ],
        "users": [{"name": "node", "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "node"}}],
        "current-context": "local",
    }
    return json.dumps(config, indent=2) + "\n"


def issue_client_cert(pki: Path, stem: str, common_name: str, organization: str | None, out: Path) -> None:
    """A client certificate signed by the stack's CA (``pki/ca.*``), written to ``out/<stem>.*``."""
    if (out / f"{stem}.crt").exists():
        return
    ca_cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out.mkdir(parents=True, exist_ok=True)
    key_path = out / f"{stem}.key"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    (out / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
