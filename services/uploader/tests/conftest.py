"""Fixtures for the uploader's tests on the local stack: watcher, status writer and uploader as real
processes against the session's stack, in a fresh namespace per test."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually


@dataclass
class Platform:
    stack: Stack
    namespace: str
    services: list[ServiceProcess]

    def apply_model(self, name: str, md5: str, request_id: str) -> None:
        manifest = {
            "apiVersion": "substratus.ai/v1",
            "kind": "Model",
            "metadata": {"name": name},
            "spec": {"build": {"upload": {"md5Checksum": md5, "requestID": request_id}}, "params": {"n": 1}},
        }
        self.stack.kubectl("apply", "-n", self.namespace, "-f", "-", input=json.dumps(manifest))

    def get(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(
            self.stack.kubectl("get", "model", name, "-n", self.namespace, "-o", "json").stdout
        )
        return obj

    def upload_status(self, name: str) -> dict[str, Any]:
        return _upload_of(self.get(name))

    def uploaded(self, name: str) -> dict[str, Any]:
        return _uploaded_of(self.get(name))

    def wait_upload(
        self, name: str, check: Callable[[dict[str, Any], dict[str, Any]], bool], what: str, timeout: float = 60
    ) -> dict[str, Any]:
        def poll() -> dict[str, Any]:
            # One read per poll: the upload fields and the condition must come from the same object.
            obj = self.get(name)
            upload, condition = _upload_of(obj), _uploaded_of(obj)
            assert check(upload, condition), f"buildUpload={_redact(upload)} Uploaded={condition}"
            return upload

        return eventually(poll, timeout, f"model/{name}: {what}")

    def logs(self) -> str:
        return "".join(s.logs() for s in self.services)


def _upload_of(obj: dict[str, Any]) -> dict[str, Any]:
    return dict((obj.get("status") or {}).get("buildUpload") or {})


def _uploaded_of(obj: dict[str, Any]) -> dict[str, Any]:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Uploaded":
            found: dict[str, Any] = condition
            return found
    return {}


def _redact(upload: Mapping[str, Any]) -> dict[str, Any]:
    return {k: ("<signed URL>" if k == "signedURL" else v) for k, v in upload.items()}


def md5_hex(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()


@pytest.fixture
def platform(stack: Stack, namespace: str, run_service: Callable[..., ServiceProcess]) -> Callable[..., Platform]:
    """``platform(uploader_env={...})`` starts the watcher, the status writer and the uploader."""

    def start(uploader_env: Mapping[str, str] | None = None) -> Platform:
        services = [run_service("watcher"), run_service("status-writer"), run_service("uploader", env=uploader_env)]
        return Platform(stack, namespace, services)

    return start
