"""Each service's ServiceAccount may do what its code needs and nothing else, checked on the local
API server with `kubectl auth can-i --as=system:serviceaccount:…` against the table below (written
from the services' code, not from the chart's permissions file, so the two check each other)."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import yaml

from substratus_local import binaries
from substratus_local.stack import REPO_ROOT, SERVICES, Stack

CHART = REPO_ROOT / "deploy" / "helm" / "substratus"

KINDS = ("models", "datasets", "servers", "notebooks")


def _sub(resource: str) -> str:
    return f"{resource}.substratus.ai"


# (verb, resource[/subresource]) a service may do, and what it must not, in any namespace.
ALLOWED: dict[str, list[tuple[str, str]]] = {
    "watcher": [
        *((verb, _sub(k)) for k in KINDS for verb in ("list", "watch")),
        *((verb, r) for r in ("jobs.batch", "pods", "deployments.apps") for verb in ("list", "watch")),
    ],
    "status-writer": [
        *(("get", _sub(k)) for k in KINDS),
        *(("patch", _sub(k)) for k in KINDS),  # spec.image after a build, under substratus-builder
        *(("patch", _sub(k) + "/status") for k in KINDS),
        *((verb, "events.events.k8s.io") for verb in ("create", "patch")),  # Events of transitions
    ],
    "builder": [
        *(("get", _sub(k)) for k in KINDS),
        *((verb, "jobs.batch") for verb in ("get", "create", "patch", "delete")),
        ("create", "serviceaccounts"),
        ("patch", "serviceaccounts"),
        ("list", "pods"),
        ("get", "namespaces"),
    ],
    "uploader": [("get", _sub(k)) for k in KINDS],
    "trainer": [
        ("get", _sub("models")),
        ("get", _sub("datasets")),
        ("update", _sub("models") + "/finalizers"),
        *((verb, "jobs.batch") for verb in ("get", "create", "patch", "delete")),
        *((verb, "serviceaccounts") for verb in ("create", "patch")),
        # Created first; read after AlreadyExists to check whose it is (ADR 134).
        *((verb, r) for r in ("configmaps", "persistentvolumeclaims") for verb in ("get", "create", "patch")),
        ("list", "pods"),
        ("get", "namespaces"),
    ],
    "server-manager": [
        ("get", _sub("servers")),
        ("get", _sub("models")),
        *((verb, "deployments.apps") for verb in ("get", "create", "patch")),
        *((verb, "serviceaccounts") for verb in ("create", "patch")),
        *((verb, r) for r in ("services", "configmaps") for verb in ("get", "create", "patch")),
        ("list", "pods"),
        ("get", "namespaces"),
    ],
    "notebook-manager": [
        ("get", _sub("notebooks")),
        ("get", _sub("models")),
        ("get", _sub("datasets")),
        *((verb, "pods") for verb in ("get", "create", "patch", "delete")),
        *((verb, "secrets") for verb in ("get", "create", "patch")),
        *((verb, "serviceaccounts") for verb in ("create", "patch")),
        # Created first; read after AlreadyExists to check whose it is (ADR 134).
        *((verb, r) for r in ("configmaps", "persistentvolumeclaims") for verb in ("get", "create", "patch")),
        ("get", "namespaces"),
    ],
}

EVERYONE_FORBIDDEN: list[tuple[str, str]] = [
    ("create", _sub("models")),
    ("delete", _sub("models")),
    ("update", _sub("models")),
    ("list", "secrets"),
    ("create", "pods/exec"),
    ("get", "nodes"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("impersonate", "serviceaccounts"),
    ("create", "persistentvolumes"),  # only with cloud=aws, below
    ("delete", "persistentvolumeclaims"),  # a Notebook's volume survives suspend; nobody deletes one
    ("delete", "configmaps"),  # children go with their owner (garbage collection)
]

FORBIDDEN: dict[str, list[tuple[str, str]]] = {
    "watcher": [
        ("get", "secrets"),
        ("create", "jobs.batch"),
        ("patch", _sub("models")),
        ("patch", _sub("models") + "/status"),
        ("delete", "pods"),
        ("list", "configmaps"),
    ],
    "status-writer": [
        ("list", _sub("models")),
        ("create", "jobs.batch"),
        ("get", "secrets"),
        ("patch", "configmaps"),
        ("update", _sub("models") + "/status"),
        ("delete", "events.events.k8s.io"),
        ("list", "events.events.k8s.io"),
        ("create", "events"),  # the core group's Events: only events.k8s.io is granted
    ],
    "builder": [
        ("patch", _sub("models")),  # spec.image is written by the status-writer
        ("patch", _sub("models") + "/status"),
        ("get", "secrets"),
        ("create", "deployments.apps"),
        ("create", "pods"),
        ("create", "configmaps"),
    ],
    "uploader": [
        ("list", _sub("models")),
        ("patch", _sub("models") + "/status"),
        ("create", "jobs.batch"),
        ("get", "secrets"),
        ("create", "configmaps"),
        ("list", "pods"),
    ],
    "trainer": [
        ("patch", _sub("models")),
        ("patch", _sub("models") + "/status"),
        ("get", _sub("servers")),
        ("create", "deployments.apps"),
        ("get", "secrets"),
        ("create", "pods"),
        ("delete", "pods"),
        ("list", "jobs.batch"),
    ],
    "server-manager": [
        ("patch", _sub("servers")),
        ("patch", _sub("servers") + "/status"),
        ("create", "jobs.batch"),
        ("get", "secrets"),
        ("create", "pods"),
        ("delete", "deployments.apps"),
    ],
    "notebook-manager": [
        ("patch", _sub("notebooks") + "/status"),
        ("create", "jobs.batch"),
        ("create", "deployments.apps"),
        ("delete", "secrets"),
        ("get", _sub("servers")),
        ("list", "pods"),
        ("list", "persistentvolumeclaims"),
    ],
}


def _render(release: str, namespace: str, *args: str) -> str:
    helm = binaries.ensure(["helm"])["helm"]
    result = subprocess.run(
        [str(helm), "template", release, str(CHART), "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _rbac_only(manifests: str) -> str:
    kinds = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    docs: list[dict[str, Any]] = [d for d in yaml.safe_load_all(manifests) if d and d["kind"] in kinds]
    return yaml.safe_dump_all(docs)


def _can_i(stack: Stack, account: str, verb: str, resource: str, namespace: str) -> bool:
    resource, _, subresource = resource.partition("/")
    args = ["auth", "can-i", verb, resource, "-n", namespace, f"--as={account}"]
    if subresource:
        args.append(f"--subresource={subresource}")
    result = stack.kubectl(*args, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl {' '.join(args)}: {result.stdout}{result.stderr}"
    return answer == "yes"


def _check(stack: Stack, release: str, namespace: str, table: list[tuple[str, str, str, bool]]) -> list[str]:
    """Rows (service, verb, resource, expected) that the API server answers otherwise."""
    workloads_ns = "any-user-namespace"  # managers act in every namespace; the namespace need not exist

    def one(row: tuple[str, str, str, bool]) -> str | None:
        service, verb, resource, expected = row
        account = f"system:serviceaccount:{namespace}:{release}-substratus-{service}"
        got = _can_i(stack, account, verb, resource, workloads_ns)
        if got != expected:
            return f"{service}: {verb} {resource}: {'allowed' if got else 'forbidden'}, expected the opposite"
        return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        return [r for r in pool.map(one, table) if r is not None]


def test_each_service_account_may_do_what_its_service_needs_and_nothing_else(stack: Stack, namespace: str) -> None:
    release = namespace
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=_rbac_only(_render(release, namespace)))
    try:
        table = [
            *((s, verb, r, True) for s in SERVICES for verb, r in ALLOWED[s]),
            *((s, verb, r, False) for s in SERVICES for verb, r in [*FORBIDDEN[s], *EVERYONE_FORBIDDEN]),
        ]
        assert len(table) > 150
        wrong = _check(stack, release, namespace, table)
        assert not wrong, "\n".join(wrong)
    finally:
        stack.kubectl("delete", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance={release}")


def test_on_eks_the_managers_may_also_write_persistent_volumes(stack: Stack, namespace: str) -> None:
    release = namespace
    manifests = _render(release, namespace, "--set", "cloud=aws")
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=_rbac_only(manifests))
    try:
        writers = ("trainer", "server-manager", "notebook-manager")
        table = [
            *((s, verb, "persistentvolumes", True) for s in writers for verb in ("create", "patch")),
            *((s, "delete", "persistentvolumes", False) for s in writers),
            *((s, "create", "persistentvolumes", False) for s in ("watcher", "status-writer", "builder", "uploader")),
        ]
        wrong = _check(stack, release, namespace, table)
        assert not wrong, "\n".join(wrong)
    finally:
        stack.kubectl("delete", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance={release}")
