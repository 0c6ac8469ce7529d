"""``kubectl notebook`` writes only ``spec.suspend`` under its own field manager (the manifest of
``-f`` under kubectl's), resumes before and suspends after a session, and does nothing to a
Notebook that does not exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from substratus_cli import notebook


class FakeKubectl(notebook.Kubectl):
    def __init__(self, existing: dict[str, Any] | None) -> None:
        super().__init__("kubectl", None)
        self.existing = existing
        self.applied: list[tuple[str, dict[str, Any]]] = []

    def run(self, *args: str, input: str | None = None, timeout: float = 60) -> str:
        if args[:2] == ("config", "view"):
            return "team"
        raise AssertionError(f"unexpected kubectl {args}")

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.existing if kind == "notebook" else None

    def apply(self, obj: dict[str, Any], field_manager: str = notebook.FIELD_MANAGER) -> dict[str, Any]:
        self.applied.append((field_manager, obj))
        return obj


def _session(kubectl: FakeKubectl, tmp_path: Path) -> notebook.Session:
    session = notebook.Session(kubectl, notebook.Options(port=None, browser=False), tmp_path)
    session.stop.set()  # stopped before it is ready: the session ends at once
    return session


def test_minus_f_applies_the_manifest_as_kubectl_then_resumes_and_suspends(tmp_path: Path) -> None:
    manifest = {
        "apiVersion": "substratus.ai/v1",
        "kind": "Notebook",
        "metadata": {"name": "lab"},
        "spec": {"image": "jupyter", "suspend": True},
    }
    kubectl = FakeKubectl(existing=None)
    _session(kubectl, tmp_path).run("lab", manifest)
    assert kubectl.namespace == "team"  # the kubeconfig's current namespace, for every later call
    managers = [m for m, _ in kubectl.applied]
    assert managers == ["kubectl", "kubectl-notebook", "kubectl-notebook"]
    assert kubectl.applied[0][1]["spec"] == {"image": "jupyter"}
    assert kubectl.applied[1][1] == notebook.suspend_patch("lab", False)
    assert kubectl.applied[2][1] == notebook.suspend_patch("lab", True)


def test_no_suspend_leaves_it_running(tmp_path: Path) -> None:
    kubectl = FakeKubectl(existing={"metadata": {"name": "lab", "generation": 1}, "spec": {"suspend": True}})
    session = _session(kubectl, tmp_path)
    session.options.suspend_on_exit = False
    session.run("lab", None)
    assert [obj for _, obj in kubectl.applied] == [notebook.suspend_patch("lab", False)]


def test_a_missing_notebook_is_an_error_and_nothing_is_written(tmp_path: Path) -> None:
    kubectl = FakeKubectl(existing=None)
    with pytest.raises(notebook.NotebookError, match="notebook/lab not found in namespace team; create it with -f"):
        _session(kubectl, tmp_path).run("lab", None)
    assert kubectl.applied == []
