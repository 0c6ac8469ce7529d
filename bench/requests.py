"""API requests counted per client and verb, from the API server's own metrics.

``apiserver_request_total`` has no client label (no user agent, no field manager), so the
benchmark gives each client its own identity and lets the API server's flow control classify
its requests: every service (and the bare client of the floor) runs as its own ServiceAccount
(cluster-admin, so RBAC changes nothing), and one FlowSchema per (client, verb class) matches
that account's requests of that class. The counter
``apiserver_flowcontrol_dispatched_requests_total{flow_schema=...}`` then counts them exactly.
The FlowSchemas use the ``exempt`` priority level, so classifying never queues or throttles.

The manifest and parsing functions are pure; :func:`setup` and :func:`snapshot` talk to the stack.
"""

from __future__ import annotations

import json
import re
import ssl
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from substratus_local import stack as stack_mod

NAMESPACE = "substratus-bench"
STATUS_RESOURCES = [f"{plural}/status" for plural in ("models", "datasets", "servers", "notebooks")]
# Checked in this order (lower precedence first); the first class whose rule matches counts it.
VERB_CLASSES: tuple[tuple[str, list[str], list[str]], ...] = (
    ("patch-status", ["patch"], STATUS_RESOURCES),
    ("update-status", ["update"], STATUS_RESOURCES),
    ("get", ["get"], ["*"]),
    ("list", ["list"], ["*"]),
    ("watch", ["watch"], ["*"]),
    ("create", ["create"], ["*"]),
    ("update", ["update"], ["*"]),
    ("patch", ["patch"], ["*"]),
    ("delete", ["delete", "deletecollection"], ["*"]),
)
NON_RESOURCE = "discovery"  # /api, /apis, /version ...: non-resource URLs
ASIDE = frozenset({"watch"})  # long-running: shown, but not in the requests-per-Model figure
FIRST_PRECEDENCE = 300  # before the suggested schemas that would match a ServiceAccount (900, 9000)
METRIC = "apiserver_flowcontrol_dispatched_requests_total"


def account(client: str) -> str:
    return f"bench-{client}"


def schema_name(client: str, verb_class: str) -> str:
    return f"bench-{client}-{verb_class}"


def _schema(client: str, verb_class: str, precedence: int, rule: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": schema_name(client, verb_class)},
        "spec": {
            "priorityLevelConfiguration": {"name": "exempt"},
            "matchingPrecedence": precedence,
            "rules": [
                {
                    "subjects": [
                        {"kind": "ServiceAccount", "serviceAccount": {"name": account(client), "namespace": NAMESPACE}}
                    ],
                    **rule,
                }
            ],
        },
    }


def manifests(clients: Iterable[str]) -> list[dict[str, Any]]:
    """The namespace, and per client its ServiceAccount, cluster-admin binding and FlowSchemas."""
    docs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}]
    for client in clients:
        name = account(client)
        docs.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": NAMESPACE}})
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
            }
        )
        for offset, (verb_class, verbs, resources) in enumerate(VERB_CLASSES):
            rule = {
                "resourceRules": [
                    {
                        "verbs": verbs,
                        "apiGroups": ["*"],
                        "resources": resources,
                        "namespaces": ["*"],
                        "clusterScope": True,
                    }
                ]
            }
            docs.append(_schema(client, verb_class, FIRST_PRECEDENCE + offset, rule))
        rule = {"nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}
        docs.append(_schema(client, NON_RESOURCE, FIRST_PRECEDENCE + len(VERB_CLASSES), rule))
    return docs


_LABEL = re.compile(r'(\w+)="([^"]*)"')


def dispatched(metrics_text: str) -> Counter[str]:
    """Requests dispatched per FlowSchema, from the API server's ``/metrics`` text."""
    counts: Counter[str] = Counter()
    for line in metrics_text.splitlines():
        if not line.startswith(METRIC + "{"):
            continue
        labels_text, _, value = line.rpartition("} ")
        labels = dict(_LABEL.findall(labels_text))
        schema = labels.get("flow_schema")
        if schema:
            counts[schema] += int(float(value))
    return counts


@dataclass(frozen=True)
class Requests:
    """Requests per client and verb class between two snapshots."""

    by_client: dict[str, dict[str, int]]

    @classmethod
    def between(cls, before: Mapping[str, int], after: Mapping[str, int], clients: Iterable[str]) -> Requests:
        classes = [c for c, _, _ in VERB_CLASSES] + [NON_RESOURCE]
        out: dict[str, dict[str, int]] = {}
        for client in clients:
            counts = {c: after.get(schema_name(client, c), 0) - before.get(schema_name(client, c), 0) for c in classes}
            out[client] = {c: n for c, n in counts.items() if n}
        return cls(out)

    def by_verb(self, clients: Iterable[str]) -> dict[str, int]:
        """Summed over ``clients``, per verb class."""
        total: Counter[str] = Counter()
        for client in clients:
            total.update(self.by_client.get(client, {}))
        return dict(sorted(total.items()))

    def counted(self, clients: Iterable[str]) -> int:
        """Summed over ``clients``, watches aside."""
        return sum(n for verb, n in self.by_verb(clients).items() if verb not in ASIDE)


def setup(stack: stack_mod.Stack, clients: Iterable[str], out_dir: Path, hours: int = 48) -> dict[str, Path]:
    """Create the identities and FlowSchemas; a kubeconfig per client (a bound token of ``hours``)."""
    clients = list(clients)
    stack.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(manifests(clients)))
    admin = json.loads(stack.kubeconfig.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for client in clients:
        token = stack.kubectl("create", "token", account(client), "-n", NAMESPACE, f"--duration={hours}h").stdout
        config = {
            **admin,
            "users": [{"name": account(client), "user": {"token": token.strip()}}],
            "contexts": [
                {"name": "bench", "context": {"cluster": admin["clusters"][0]["name"], "user": account(client)}}
            ],
            "current-context": "bench",
        }
        path = out_dir / f"{client}.kubeconfig"
        path.write_text(json.dumps(config))
        path.chmod(0o600)
        paths[client] = path
    return paths


def metrics_text(stack: stack_mod.Stack) -> str:
    """The API server's ``/metrics``, read with the admin certificate."""
    ctx = ssl.create_default_context(cafile=str(stack.pki_dir / "ca.crt"))
    ctx.load_cert_chain(str(stack.pki_dir / "admin.crt"), str(stack.pki_dir / "admin.key"))
    response = httpx.get(f"{stack.apiserver_url}/metrics", verify=ctx, timeout=30)
    response.raise_for_status()
    return response.text


def snapshot(stack: stack_mod.Stack) -> Counter[str]:
    return dispatched(metrics_text(stack))
