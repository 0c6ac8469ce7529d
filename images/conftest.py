"""The reference images' code is not an installed package: make each image's folder importable
(as it is at /opt/substratus/lib inside the image) for their unit tests."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).parent
for folder in [_HERE / "common", *sorted(p for p in _HERE.iterdir() if (p / "Containerfile").is_file())]:
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
