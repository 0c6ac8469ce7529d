"""Run the server-manager service: `python -m substratus_server_manager`.

Consumes changes of Servers, of their Deployments and Pods, and of Models (a Model appearing or
turning ready wakes the Servers that wait for it); applies each Server's ConfigMap, Deployment
and Service once its Model is ready, and reports ``Serving``.
"""

from __future__ import annotations

from prometheus_client import Counter

from substratus_common.runtime import reconciler
from substratus_server_manager import server_manager


def make(runtime: reconciler.Runtime) -> server_manager.ServerManager:
    applied = Counter(
        "substratus_server_deployments_applied",
        "Times the server-manager applied a Server's Deployment (a new or changed spec).",
        registry=runtime.metrics.registry,
    )
    return server_manager.ServerManager(runtime, on_apply=applied.inc)


def main() -> None:
    reconciler.main("server-manager", make)


if __name__ == "__main__":
    main()
