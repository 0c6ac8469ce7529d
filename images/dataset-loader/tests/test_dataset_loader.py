"""The dataset-loader: which source the params name, and a URL fetched into the artifacts."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dataset_loader import __main__ as loader
from substratus_workload import contract


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """An HTTP server over a folder holding corpus.txt (the "local HTTP server" of the issue)."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "corpus.txt").write_text("some text to learn from\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_url_names_its_file() -> None:
    source = loader.source_from({"url": "http://h/data/corpus.txt"})
    assert (source.kind, source.filename) == ("url", "corpus.txt")
    assert loader.source_from({"url": "http://h/", "filename": "x.txt"}).filename == "x.txt"
    assert loader.source_from({"url": "http://h/"}).filename == "data"


def test_a_git_repository_with_a_ref() -> None:
    source = loader.source_from({"git_url": "git://h/repo", "git_ref": "v1"})
    assert (source.kind, source.location, source.ref) == ("git", "git://h/repo", "v1")


@pytest.mark.parametrize(
    "params", [{}, {"url": "http://h/a", "git_url": "git://h/r"}, {"url": "http://h/a", "filename": "../x"}]
)
def test_exactly_one_source_and_a_plain_file_name(params: dict[str, str | int]) -> None:
    with pytest.raises(contract.ParamError):
        loader.source_from(params)


def test_run_fetches_the_url_into_the_artifacts(tmp_path: Path, served: str) -> None:
    root = tmp_path / "content"
    root.mkdir()
    (root / "params.json").write_text(json.dumps({"url": f"{served}/corpus.txt"}))
    assert loader.run(root, {}) == 0
    assert (root / "artifacts" / "corpus.txt").read_text() == "some text to learn from\n"


def test_a_missing_file_fails_with_the_http_status(
    tmp_path: Path, served: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert loader.run(tmp_path, {"PARAM_URL": f"{served}/missing.txt"}) == 1
    assert "HTTP 404" in capsys.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "artifacts" / "missing.txt").exists()
