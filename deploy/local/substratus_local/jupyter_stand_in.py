"""What a notebook Pod's port 8888 answers on the local stack, where kwok runs no container.

kwok's ClusterPortForward for port 8888 (``kwok_config.notebook_simulation_yaml``) runs
``python -m substratus_local.jupyter_stand_in`` for each forwarded connection with the connection
as stdin/stdout: it answers one HTTP request, like Jupyter's ``/api`` for API calls and with a page
saying where the simulated ``/content`` is for anything else, then closes the connection.
"""

from __future__ import annotations

import json
import sys
from typing import BinaryIO

PAGE = """<!doctype html>
<html><head><title>Substratus notebook (simulated)</title></head>
<body>
<h1>Substratus notebook (simulated by kwok)</h1>
<p>This Pod runs no container on the local stack, so Jupyter does not answer here; on a real
cluster this port is Jupyter, and the token in the URL logs you in.</p>
<p>Files under <code>/content</code> are simulated by the directory <code>{content}</code>:
what you put there, <code>kubectl notebook</code> copies into its local directory.</p>
</body></html>
"""


def respond(request: BinaryIO, out: BinaryIO, content_dir: str) -> str:
    """Read one request from ``request`` and write the answer to ``out``; the request path."""
    first = request.readline().decode("latin-1").split()
    while True:
        line = request.readline()
        if not line or line in (b"\r\n", b"\n"):
            break
    path = first[1] if len(first) > 1 else "/"
    if path.split("?")[0].rstrip("/") == "/api":
        body, kind = json.dumps({"version": "simulated"}).encode(), "application/json"
    else:
        body, kind = PAGE.format(content=content_dir).encode(), "text/html; charset=utf-8"
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    out.write(head.encode() + body)
    out.flush()
    return path


def main() -> None:
    respond(sys.stdin.buffer, sys.stdout.buffer, sys.argv[1] if len(sys.argv) > 1 else "(not set)")


if __name__ == "__main__":
    main()
