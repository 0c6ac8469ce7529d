"""Once the stack has applied the CRDs (as `make up` does before it prints its next steps), the four
kinds are Established and served under the category ``ai``: ``kubectl get ai`` works at once
instead of failing with "the server doesn't have a resource type "ai"" for a moment."""

from __future__ import annotations

from substratus_local.stack import Stack

KINDS = {"models.substratus.ai", "datasets.substratus.ai", "servers.substratus.ai", "notebooks.substratus.ai"}


def test_crds_are_served_under_ai_once_applied(stack: Stack, namespace: str) -> None:
    assert stack.apply_crds() is True  # applying again returns only once they are served
    served = stack.kubectl("api-resources", "--categories=ai", "-o", "name").stdout.split()
    assert set(served) == KINDS
    listed = stack.kubectl("get", "ai", "-n", namespace, check=False)
    assert listed.returncode == 0, listed.stderr
    assert "No resources found" in listed.stderr
    for crd in KINDS:
        established = stack.kubectl(
            "get", "crd", crd, "-o", "jsonpath={.status.conditions[?(@.type=='Established')].status}"
        ).stdout
        assert established == "True", crd
