"""``kubectl applybuild`` says why it stopped: storage refused the PUT, or the request expired."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from substratus_cli import applybuild

MANIFEST = {"apiVersion": "substratus.ai/v1", "kind": "Model", "metadata": {"name": "m"}, "spec": {}}


@dataclass
class FakeKubectl:
    """Answers ``get`` with the applied object plus whatever status the test sets."""

    status: Any = None
    applied: dict[str, Any] = field(default_factory=dict)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.applied = obj
        return obj

    def get(self, kind: str, name: str) -> dict[str, Any]:
        request_id = self.applied["spec"]["build"]["upload"]["requestID"]
        return {**self.applied, "status": self.status(request_id)}


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    return ctx


def _flow(kubectl: FakeKubectl, handler: Any, out: io.StringIO) -> applybuild.Flow:
    console = Console(file=out, markup=False, highlight=False, width=120)
    flow = applybuild.Flow(kubectl, console, poll_s=0.01, timeout_s=5)  # type: ignore[arg-type]
    flow.http = lambda: httpx.Client(transport=httpx.MockTransport(handler))
    return flow


def test_a_refused_put_names_the_storage_error(tmp_path: Path) -> None:
    kubectl = FakeKubectl(
        status=lambda rid: {
            "buildUpload": {"requestID": rid, "signedURL": "https://s3.example/b/k?X-Amz-Signature=abc"},
            "conditions": [{"type": "Uploaded", "status": "False", "reason": "AwaitingUpload"}],
        }
    )
    seen: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        request.read()
        return httpx.Response(403, text="<Error><Code>SignatureDoesNotMatch</Code><Message>nope</Message></Error>")

    out = io.StringIO()
    with pytest.raises(
        applybuild.ApplyBuildError, match=r"storage refused the upload \(HTTP 403\): SignatureDoesNotMatch"
    ):
        _flow(kubectl, refuse, out).run(MANIFEST, _context(tmp_path), "uploaded")
    sent = seen[0]
    assert sent.method == "PUT"
    assert sent.headers["Content-Type"] == "application/octet-stream"
    assert sent.headers["Content-MD5"]
    assert "transfer-encoding" not in sent.headers
    assert int(sent.headers["Content-Length"]) == len(sent.content)
    assert "X-Amz-Signature" not in out.getvalue()


def test_an_expired_request_says_to_run_again(tmp_path: Path) -> None:
    kubectl = FakeKubectl(
        status=lambda rid: {
            "buildUpload": {"requestID": rid},
            "conditions": [
                {"type": "Uploaded", "status": "False", "reason": "UploadExpired", "message": "the signed URL expired"}
            ],
        }
    )
    with pytest.raises(applybuild.ApplyBuildError, match=r"expired.*run again"):
        _flow(kubectl, lambda r: httpx.Response(500), io.StringIO()).run(MANIFEST, _context(tmp_path), "uploaded")
