"""The n-gram model: counts, fine-tuning, generation and the JSON format."""

from __future__ import annotations

from pathlib import Path

import pytest
from substratus_workload import ngram


def test_counts_cover_every_context_up_to_the_order() -> None:
    counts = ngram.count("abab", 3)
    assert counts[""] == {"a": 2, "b": 2}
    assert counts["a"] == {"b": 2}
    assert counts["ab"] == {"a": 1}
    assert counts["ba"] == {"b": 1}


def test_generation_follows_the_training_text() -> None:
    model = ngram.train("hello world. " * 20, 4, "t")
    assert ngram.generate(model, "hel", 8) == "lo world"


def test_fine_tune_changes_what_is_generated() -> None:
    base = ngram.train("the cat sat on the mat. " * 10, 4, "base")
    tuned = ngram.fine_tune(base, "the dog ran to the log. " * 50, weight=5, source="data")
    assert ngram.generate(base, "the d", 6) != ngram.generate(tuned, "the d", 6)
    assert ngram.generate(tuned, "the do", 5) == "g ran"
    assert tuned.characters == base.characters + 5 * len("the dog ran to the log. " * 50)
    assert tuned.sources == ["base", "data"]


def test_unknown_context_backs_off_to_shorter_ones() -> None:
    model = ngram.train("aaaa", 3, "t")
    assert ngram.generate(model, "zzz", 3) == "aaa"


def test_generation_is_reproducible_per_seed() -> None:
    model = ngram.train("abcabdabeabf" * 5, 3, "t")
    assert ngram.generate(model, "ab", 30, seed=1) == ngram.generate(model, "ab", 30, seed=1)
    assert {ngram.generate(model, "ab", 30, seed=s) for s in range(5)} != {ngram.generate(model, "ab", 30, seed=0)}


def test_an_empty_model_generates_nothing() -> None:
    assert ngram.generate(ngram.Model(3), "x", 5) == ""


def test_json_round_trip(tmp_path: Path) -> None:
    model = ngram.train("round trip", 3, "t")
    ngram.save(model, tmp_path)
    assert ngram.load(tmp_path) == model
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize(
    "text", ["not json", '{"format": "other"}', '{"format": "substratus-ngram/v1", "order": 0, "counts": {}}']
)
def test_foreign_files_are_refused(text: str) -> None:
    with pytest.raises(ngram.ModelError):
        ngram.from_json(text)


def test_bad_orders_and_weights_are_refused() -> None:
    with pytest.raises(ngram.ModelError):
        ngram.count("x", 0)
    with pytest.raises(ngram.ModelError):
        ngram.fine_tune(ngram.Model(2), "x", weight=0, source="d")
