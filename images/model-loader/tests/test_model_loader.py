"""The model-loader: a shipped model or one from a URL, checked before it is stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_loader import __main__ as loader
from model_loader import shipped
from substratus_workload import ngram

CORPUS = Path(__file__).parents[1] / "corpus"


@pytest.fixture
def models(tmp_path: Path) -> Path:
    shipped.build(CORPUS, tmp_path / "models")
    return tmp_path / "models"


def test_the_shipped_corpus_becomes_a_model(models: Path) -> None:
    model = ngram.load(models / "base")
    assert model.order == shipped.ORDER
    assert model.characters == len((CORPUS / "base.txt").read_text())


def test_run_imports_a_shipped_model(tmp_path: Path, models: Path) -> None:
    root = tmp_path / "content"
    assert loader.run(root, {"PARAM_NAME": "base", "SUBSTRATUS_SHIPPED_MODELS": str(models)}) == 0
    assert ngram.load(root / "artifacts") == ngram.load(models / "base")


def test_run_imports_a_model_from_a_url(tmp_path: Path, models: Path) -> None:
    url = (models / "base" / ngram.MODEL_FILE).as_uri()
    assert loader.run(tmp_path, {"PARAM_URL": url}) == 0
    assert ngram.load(tmp_path / "artifacts").sources == ["shipped:base", f"imported:{url}"]


def test_an_unknown_name_lists_what_is_shipped(
    tmp_path: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert loader.run(tmp_path, {"PARAM_NAME": "gpt-5", "SUBSTRATUS_SHIPPED_MODELS": str(models)}) == 2
    assert capsys.readouterr().err.strip().endswith("this image ships: base")


def test_a_url_that_is_not_a_model_is_not_stored(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text("{}")
    assert loader.run(tmp_path, {"PARAM_URL": other.as_uri()}) == 1
    assert not (tmp_path / "artifacts").exists()
