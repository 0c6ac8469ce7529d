"""The project explains itself from its own clone: the README links only files inside the
repository; docs/ may cite vendors' pages, but every relative link of both resolves to a file in
the repository, never to ``../shared`` or another path outside it; the README links the
architecture and API documents."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_links_stay_inside_the_repository_and_resolve() -> None:
    wrong = []
    for doc in _documents():
        text = doc.read_text()
        if "../shared" in text or "shared/DESIGN.md" in text:
            wrong.append(f"{doc.relative_to(ROOT)}: names ../shared")
        for target in LINK.findall(text):
            if target.startswith("#"):
                continue
            if "://" in target or target.startswith("mailto:"):
                if doc.name == "README.md":
                    wrong.append(f"README.md links outside the repository: {target}")
                continue
            path = (doc.parent / target.split("#", 1)[0]).resolve()
            if not path.is_relative_to(ROOT):
                wrong.append(f"{doc.relative_to(ROOT)}: {target} is outside the repository")
            elif not path.exists():
                wrong.append(f"{doc.relative_to(ROOT)}: {target} does not exist")
    assert not wrong, "\n".join(wrong)


def test_readme_links_the_architecture_and_the_api_reference() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "(docs/architecture.md)" in readme
    assert "(docs/api.md)" in readme
