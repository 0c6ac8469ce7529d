"""The burst as a picture: Models ready (and Jobs existing) over time, ours against the floor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def steps(times: Sequence[float]) -> tuple[list[float], list[int]]:
    """(x, y) of a cumulative count: y reaches i + 1 at the i-th sorted time, starting from (0, 0)."""
    ordered = sorted(times)
    return [0.0, *ordered], list(range(len(ordered) + 1))


def burst_png(figures: Mapping[str, Any], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    series = figures["series"]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for run, colour, label in (("ours", "tab:blue", "Substratus"), ("floor", "tab:gray", "bare-client floor")):
        x, y = steps(series[run]["ready_s"])
        ax.step(x, y, where="post", color=colour, linewidth=2, label=f"{label}: Models ready")
        x, y = steps(series[run]["job_s"])
        ax.step(x, y, where="post", color=colour, linewidth=1, linestyle="--", label=f"{label}: Jobs exist")
    ax.set_xlabel("seconds since the first create")
    ax.set_ylabel("Models")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
