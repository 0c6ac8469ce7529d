"""A character-level n-gram language model: counts of the next character after every context of
up to ``order - 1`` characters, stored as JSON (``model.json``, format ``substratus-ngram/v1``).

Tiny and CPU-only on purpose: training is real computation whose result depends on the text, and
a fine-tune adds the new text's counts (times ``weight``) to the base model's, so what the
server generates changes with the data.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "substratus-ngram/v1"
MODEL_FILE = "model.json"

Counts = dict[str, dict[str, int]]


class ModelError(ValueError):
    """Not a model this code can read; the message says why."""


@dataclass
class Model:
    order: int
    counts: Counts = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    """What the model was trained on, oldest first (e.g. ``base:shipped``, ``data:3 files``)."""

    @property
    def characters(self) -> int:
        """How many characters were counted (the empty context sees every one)."""
        return sum(self.counts.get("", {}).values())


def count(text: str, order: int) -> Counts:
    """The next-character counts of ``text`` for every context length from 0 to ``order - 1``."""
    if order < 1:
        raise ModelError(f"order must be at least 1, got {order}")
    counts: Counts = {}
    for i, char in enumerate(text):
        for length in range(min(order - 1, i) + 1):
            context = text[i - length : i]
            row = counts.setdefault(context, {})
            row[char] = row.get(char, 0) + 1
    return counts


def train(text: str, order: int, source: str) -> Model:
    return Model(order, count(text, order), [source])


def fine_tune(base: Model, text: str, *, weight: int, source: str) -> Model:
    """The base model's counts plus ``weight`` times the counts of ``text`` (same order)."""
    if weight < 1:
        raise ModelError(f"weight must be at least 1, got {weight}")
    merged: Counts = {context: dict(row) for context, row in base.counts.items()}
    for context, row in count(text, base.order).items():
        target = merged.setdefault(context, {})
        for char, n in row.items():
            target[char] = target.get(char, 0) + weight * n
    return Model(base.order, merged, [*base.sources, source])


def next_char(model: Model, context: str, rng: random.Random) -> str | None:
    """A next character drawn in proportion to the counts of the longest known suffix of ``context``."""
    for length in range(min(model.order - 1, len(context)), -1, -1):
        row = model.counts.get(context[len(context) - length :] if length else "")
        if row:
            chars = sorted(row)
            return rng.choices(chars, weights=[row[c] for c in chars])[0]
    return None


def generate(model: Model, prompt: str, max_tokens: int, *, seed: int = 0) -> str:
    """Up to ``max_tokens`` characters continuing ``prompt`` (a token is a character here)."""
    rng = random.Random(seed)
    text = prompt
    out: list[str] = []
    for _ in range(max_tokens):
        char = next_char(model, text, rng)
        if char is None:
            break
        out.append(char)
        text += char
    return "".join(out)


def to_json(model: Model) -> str:
    body = {"format": FORMAT, "order": model.order, "sources": model.sources, "counts": model.counts}
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def from_json(text: str) -> Model:
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise ModelError(f"not JSON: {error}") from None
    if not isinstance(body, Mapping) or body.get("format") != FORMAT:
        raise ModelError(f"not a {FORMAT} model")
    order, counts, sources = body.get("order"), body.get("counts"), body.get("sources", [])
    if not isinstance(order, int) or order < 1 or not isinstance(counts, dict):
        raise ModelError("a model needs an integer order >= 1 and a counts object")
    return Model(order, {str(c): {str(k): int(v) for k, v in row.items()} for c, row in counts.items()}, list(sources))


def load(directory: Path) -> Model:
    path = directory / MODEL_FILE
    if not path.is_file():
        raise ModelError(f"no {MODEL_FILE} in {directory}")
    return from_json(path.read_text())


def save(model: Model, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILE
    partial = path.with_suffix(".partial")
    partial.write_text(to_json(model))
    partial.replace(path)
    return path
