"""On the stack: a Model with spec.build.upload gets a signed URL; storage refuses another body;
the right body is noticed without the client, verified, and the URL cleared; a new requestID for
the same MD5 needs no upload at all. The URL never shows up in a service's log; storage refuses it
for another key (check 23, docs/reliability.md)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

from .conftest import Platform, md5_hex


def test_upload_through_the_signed_url_ends_uploaded(platform: Callable[..., Platform]) -> None:
    p = platform()
    body = b"\x1f\x8b tarball " + secrets.token_bytes(2048)
    md5 = md5_hex(body)
    p.apply_model("up", md5, "r1")

    upload = p.wait_upload(
        "up",
        lambda u, c: u.get("requestID") == "r1" and "signedURL" in u and c.get("reason") == "AwaitingUpload",
        "a signed URL for r1",
    )
    url = upload["signedURL"]
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
    }
    refused = httpx.put(url, content=b"another body", headers=headers)
    assert refused.status_code in (400, 403), refused.text
    # The signature binds the key too: the same query on another object's path is refused.
    parts = urlsplit(url)
    elsewhere = urlunsplit(parts._replace(path=parts.path.rsplit("/", 1)[0] + "/someone-else.tar.gz"))
    refused = httpx.put(elsewhere, content=body, headers=headers)
    assert refused.status_code == 403, refused.text
    accepted = httpx.put(url, content=body, headers=headers)
    assert accepted.status_code == 200, accepted.text

    final = p.wait_upload(
        "up", lambda u, c: c.get("status") == "True" and c.get("reason") == "UploadFound", "Uploaded=True"
    )
    assert final == {"requestID": "r1", "storedMD5Checksum": md5}

    # Same tarball, new request: storage already holds it, so no URL is handed out.
    p.apply_model("up", md5, "r2")
    again = p.wait_upload(
        "up", lambda u, c: u.get("requestID") == "r2" and c.get("status") == "True", "Uploaded=True for r2"
    )
    assert again == {"requestID": "r2", "storedMD5Checksum": md5}
    assert '"msg": "upload already stored"' in p.logs()
    assert url not in p.logs()
    assert url.split("?")[1] not in p.logs()
