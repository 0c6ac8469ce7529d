"""The model-trainer: fine-tunes the base on the data; bad inputs fail with a clear last line."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_trainer import __main__ as trainer
from substratus_workload import ngram


@pytest.fixture
def content(tmp_path: Path) -> Path:
    ngram.save(ngram.train("the cat sat on the mat. " * 10, 4, "base"), tmp_path / "model")
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "a.txt").write_text("the dog ran to the log. " * 20)
    (tmp_path / "data" / "sub" / "b.txt").write_text("the dog dug. ")
    (tmp_path / "data" / "blob.bin").write_bytes(b"\xff\xfe\x00")
    return tmp_path


def test_fine_tune_writes_a_model_that_knows_the_data(content: Path) -> None:
    assert trainer.run(content, {"PARAM_WEIGHT": "3"}) == 0
    tuned = ngram.load(content / "artifacts")
    base = ngram.load(content / "model")
    text = "the dog ran to the log. " * 20 + "\n" + "the dog dug. "
    assert tuned.characters == base.characters + 3 * len(text)
    assert tuned.sources == ["base", "data:2 files,weight 3"]
    assert ngram.generate(tuned, "the do", 5) == "g ran"


@pytest.mark.parametrize(
    ("env", "code", "last"),
    [
        ({"PARAM_WEIGHT": "0"}, 2, "error: param 'weight' must be at least 1, got 0"),
        ({"PARAM_MAX_BYTES": "10"}, 2, "error: the data is larger than max_bytes=10"),
    ],
)
def test_bad_params_fail(
    content: Path, env: dict[str, str], code: int, last: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert trainer.run(content, env) == code
    assert capsys.readouterr().err.splitlines()[-1] == last
    assert not (content / "artifacts").exists()


def test_no_data_or_no_base_model_fails(content: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path in (content / "data").rglob("*.txt"):
        path.unlink()
    assert trainer.run(content, {}) == 3
    assert capsys.readouterr().err.splitlines()[-1] == f"error: no text to train on in {content / 'data'}"
    (content / "model" / ngram.MODEL_FILE).unlink()
    assert trainer.run(content, {}) == 3
    assert "no base model" in capsys.readouterr().err
