"""``python -m model_trainer``: fine-tune the base model in ``/content/model`` on the text files in
``/content/data`` and write the result to ``/content/artifacts/model.json``.

Params: ``weight`` (int >= 1, default 1): how much each character of the data counts against the
base model's; ``max_bytes`` (default 16 MiB): data read in all, so a huge dataset fails clearly.
A dataset with no UTF-8 text fails (exit 3): fine-tuning on nothing is a mistake, not a no-op.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from substratus_workload import contract, ngram

MAX_BYTES = 16 * 1024 * 1024


def read_text(data: Path, max_bytes: int) -> tuple[str, int]:
    """The UTF-8 text files under ``data`` in path order, joined; and how many were read.

    Binary files (not valid UTF-8) are skipped: a dataset may carry other files beside its text.
    """
    parts: list[str] = []
    total = 0
    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        total += path.stat().st_size
        if total > max_bytes:
            raise contract.ParamError(f"the data is larger than max_bytes={max_bytes}")
        try:
            parts.append(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            print(f"skipping {path}: not UTF-8 text", file=sys.stderr)
    return "\n".join(parts), len(parts)


def run(root: Path, env: Mapping[str, str]) -> int:
    try:
        params = contract.load_params(root, env)
        weight = contract.param_int(params, "weight", 1, minimum=1)
        max_bytes = contract.param_int(params, "max_bytes", MAX_BYTES, minimum=1)
        base = ngram.load(root / "model")
        text, files = read_text(root / "data", max_bytes)
    except contract.ParamError as error:
        return contract.fail(str(error), 2)
    except ngram.ModelError as error:
        return contract.fail(f"no base model: {error}", 3)
    if not text:
        return contract.fail(f"no text to train on in {root / 'data'}", 3)
    print(f"fine-tuning a {base.order}-gram model ({base.characters} characters) on {len(text)} characters")
    model = ngram.fine_tune(base, text, weight=weight, source=f"data:{files} files,weight {weight}")
    path = ngram.save(model, root / "artifacts")
    print(f"wrote {path}: {model.characters} characters counted", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run(contract.content_root(), os.environ))
