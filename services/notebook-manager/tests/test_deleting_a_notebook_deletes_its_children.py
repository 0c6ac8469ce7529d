"""Deleting a Notebook deletes its Pod, PVC, Secret and ConfigMap; a Notebook applied again under the
same name (even while the old children are still going) runs with its own children and a new token."""

from __future__ import annotations

from collections.abc import Callable

from substratus_local.testing import eventually

from .notebook_platform import Platform, platform_fixture  # noqa: F401  (the fixture)

NOTEBOOK = """
apiVersion: substratus.ai/v1
kind: Notebook
metadata: {name: again}
spec:
  image: quay.io/jupyter/base-notebook
"""

CHILDREN = (
    ("pod", "again-notebook"),
    ("pvc", "again-notebook-content"),
    ("secret", "again-notebook-token"),
    ("configmap", "again-notebook-params"),
)


def test_children_go_with_the_notebook_and_a_new_one_gets_its_own(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(NOTEBOOK)
    first = p.wait_serving("again", "PodReady")
    token = p.must("secret", "again-notebook-token")["data"]["token"]

    p.kubectl("delete", "notebook", "again", "--wait=false")
    p.wait_gone("notebook", "again")
    p.apply(NOTEBOOK)
    second = p.wait_serving("again", "PodReady", timeout=90)
    uid = second["metadata"]["uid"]
    assert uid != first["metadata"]["uid"]

    def owned_by_the_new_one() -> bool:
        for kind, name in CHILDREN:
            child = p.must(kind, name)
            owners = [r["uid"] for r in child["metadata"].get("ownerReferences") or []]
            assert owners == [uid], f"{kind}/{name}: {owners}"
        return True

    eventually(owned_by_the_new_one, 60, "every child owned by the new Notebook")
    assert p.must("secret", "again-notebook-token")["data"]["token"] != token
    p.wait_serving("again", "PodReady")

    p.kubectl("delete", "notebook", "again")
    for kind, name in CHILDREN:
        p.wait_gone(kind, name, timeout=60)
