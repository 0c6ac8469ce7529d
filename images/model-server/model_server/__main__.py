"""``python -m model_server``: serve ``/content/model`` on port 8080 (``PORT`` overrides).

``GET /`` answers 200 once the model is loaded (the Server's readiness probe); ``POST
/v1/completions`` completes a prompt; ``GET /v1/models`` names the model. The model name is the
param ``name`` (default ``model``). Threads: one request does not hold up the probe.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from substratus_workload import contract, ngram

from model_server import completions

MAX_BODY = 1024 * 1024


def make_handler(model: ngram.Model, name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, body: Mapping[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._send(status, {"error": {"message": message, "type": "invalid_request_error"}})

        def do_GET(self) -> None:
            if self.path == "/":
                self._send(200, {"status": "ok", "model": name, "order": model.order})
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "substratus"}]})
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self) -> None:
            if self.path != "/v1/completions":
                self._error(404, f"no route {self.path}")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._error(413, f"the body is larger than {MAX_BODY} bytes")
                return
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                self._send(200, completions.complete(model, name, body))
            except json.JSONDecodeError as error:
                self._error(400, f"the body is not JSON: {error}")
            except completions.RequestError as error:
                self._error(400, str(error))

        def log_message(self, format: str, *args: Any) -> None:
            print(f"{self.address_string()} {format % args}", file=sys.stderr, flush=True)

    return Handler


def main(root: Path, env: Mapping[str, str]) -> int:
    try:
        params = contract.load_params(root, env)
        model = ngram.load(root / "model")
        port = int(env.get("PORT", "8080"))
    except (contract.ParamError, ngram.ModelError, ValueError) as error:
        return contract.fail(f"cannot serve: {error}", 1)
    name = contract.param_str(params, "name", "model") or "model"
    server = ThreadingHTTPServer(("0.0.0.0", port), make_handler(model, name))
    print(f"serving {name} ({model.order}-gram, {model.characters} characters) on :{port}", flush=True)
    # PID 1 ignores SIGTERM unless it handles it: stop serving so the Pod ends without its grace period.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(contract.content_root(), os.environ))
