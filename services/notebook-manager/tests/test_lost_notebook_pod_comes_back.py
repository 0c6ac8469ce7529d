"""A Notebook's Pod that disappears (its node lost, or a user's ``kubectl delete``) is created again
on the same PVC, and the Notebook is ready again without any user action."""

from __future__ import annotations

from collections.abc import Callable

from substratus_common.workloads import pod_status
from substratus_local.testing import eventually

from .notebook_platform import Platform, platform_fixture  # noqa: F401  (the fixture)

NOTEBOOK = """
apiVersion: substratus.ai/v1
kind: Notebook
metadata: {name: keep}
spec:
  image: quay.io/jupyter/base-notebook
"""


def test_a_lost_pod_comes_back_on_the_same_claim(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(NOTEBOOK)
    p.wait_serving("keep", "PodReady")
    first = p.must("pod", "keep-notebook")
    claim = p.must("pvc", "keep-notebook-content")

    # What the pod garbage collector does to a Pod whose node is gone.
    p.kubectl("delete", "pod", "keep-notebook", "--force", "--grace-period=0")

    def replaced() -> bool:
        pod = p.get("pod", "keep-notebook") or {}
        assert pod, "no Pod yet"
        return bool(pod["metadata"]["uid"] != first["metadata"]["uid"])

    eventually(replaced, 60, "a new notebook Pod")
    eventually(lambda: pod_status.is_ready(p.must("pod", "keep-notebook")), 60, "the new Pod ready")
    p.wait_serving("keep", "PodReady")
    assert p.must("notebook", "keep")["status"]["ready"] is True
    assert p.must("pvc", "keep-notebook-content")["metadata"]["uid"] == claim["metadata"]["uid"]
