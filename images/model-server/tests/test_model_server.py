"""The model-server: the completion handler, and the HTTP server answering on a real socket."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from model_server import __main__ as server_main
from model_server import completions
from substratus_workload import ngram

MODEL = ngram.train("hello world. " * 20, 4, "t")


def test_a_completion_continues_the_prompt() -> None:
    body = completions.complete(MODEL, "m", {"prompt": "hel", "max_tokens": 8})
    assert body["object"] == "text_completion"
    assert body["model"] == "m"
    assert body["choices"][0]["text"] == "lo world"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 8, "total_tokens": 11}


def test_n_choices_and_a_prompt_list() -> None:
    body = completions.complete(MODEL, "m", {"prompt": ["hel"], "max_tokens": 4, "n": 3})
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({"prompt": 3}, "'prompt'"),
        ({"max_tokens": -1}, "'max_tokens'"),
        ({"max_tokens": True}, "'max_tokens'"),
        ({"n": 99}, "'n'"),
    ],
)
def test_bad_requests_are_refused(body: object, message: str) -> None:
    with pytest.raises(completions.RequestError, match=message):
        completions.complete(MODEL, "m", body)


@pytest.fixture
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), server_main.make_handler(MODEL, "m"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def _post(url: str, body: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_http_readiness_and_completions(url: str) -> None:
    with urllib.request.urlopen(url + "/", timeout=10) as response:
        assert json.load(response)["status"] == "ok"
    status, body = _post(url + "/v1/completions", b'{"prompt": "hel", "max_tokens": 8}')
    assert (status, body["choices"][0]["text"]) == (200, "lo world")
    status, body = _post(url + "/v1/completions", b"not json")
    assert status == 400
    assert "not JSON" in body["error"]["message"]
    status, _ = _post(url + "/v2/nothing", b"{}")
    assert status == 404
