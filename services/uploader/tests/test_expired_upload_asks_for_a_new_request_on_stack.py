"""On the stack: when the signed URL expires before an upload, storage refuses a late PUT and the
resource says to set a new requestID; a new requestID gets a new URL that works."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable

import httpx

from .conftest import Platform, md5_hex


def test_an_expired_url_is_refused_and_a_new_request_id_gets_a_new_one(platform: Callable[..., Platform]) -> None:
    p = platform({"SUBSTRATUS_SIGNED_URL_EXPIRY_S": "8", "SUBSTRATUS_UPLOAD_POLL_INTERVAL_S": "0.5"})
    body = b"late tarball " + secrets.token_bytes(512)
    md5 = md5_hex(body)
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
    }
    p.apply_model("late", md5, "r1")
    first = p.wait_upload("late", lambda u, c: u.get("requestID") == "r1" and "signedURL" in u, "a URL for r1")

    p.wait_upload("late", lambda u, c: c.get("reason") == "UploadExpired", "Uploaded reason UploadExpired")
    condition = p.uploaded("late")
    assert condition["status"] == "False"
    assert "set a new spec.build.upload.requestID" in condition["message"]
    assert "signedURL" not in p.upload_status("late")
    late = httpx.put(first["signedURL"], content=body, headers=headers)
    assert late.status_code == 403, late.text

    p.apply_model("late", md5, "r2")
    second = p.wait_upload("late", lambda u, c: u.get("requestID") == "r2" and "signedURL" in u, "a URL for r2")
    assert second["signedURL"] != first["signedURL"]
    assert httpx.put(second["signedURL"], content=body, headers=headers).status_code == 200
    p.wait_upload("late", lambda u, c: c.get("reason") == "UploadFound", "Uploaded=True")
    for signed in (first["signedURL"], second["signedURL"]):
        assert signed.split("?")[1] not in p.logs(), "a signed URL in a log line"
