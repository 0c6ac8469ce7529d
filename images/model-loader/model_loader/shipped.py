"""The models the image ships, trained at image build time from ``corpus/<name>.txt``.

``python -m model_loader.shipped <corpus dir> <models dir>`` runs in the Containerfile.
"""

from __future__ import annotations

import sys
from pathlib import Path

from substratus_workload import ngram

ORDER = 5


def build(corpus: Path, models: Path) -> list[Path]:
    built = []
    for text in sorted(corpus.glob("*.txt")):
        model = ngram.train(text.read_text(encoding="utf-8"), ORDER, f"shipped:{text.stem}")
        built.append(ngram.save(model, models / text.stem))
    return built


if __name__ == "__main__":
    for path in build(Path(sys.argv[1]), Path(sys.argv[2])):
        print(f"built {path}")
