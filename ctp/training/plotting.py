"""Pictures of training runs: loss curves."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ctp.utils.atomic import save_figure
from ctp.utils.errors import CTPError
from ctp.utils.validation import check_output

FORMATS = ("png", "jpg", "jpeg", "pdf", "svg")  # what --out may end in


def metrics_rows(run: str | Path) -> list[dict[str, Any]]:
    """The rows of a run's ``metrics.jsonl`` that hold a step and a loss (a torn or foreign
    line is skipped, as ``--resume`` does); a one-line error if there are none."""
    metrics = Path(run) / "metrics.jsonl"
    if not metrics.is_file():
        raise CTPError(f"{metrics}: not found (expected a ctp train output folder)")
    rows = []
    for line in metrics.read_bytes().decode("utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if (isinstance(row, dict) and isinstance(row.get("step"), int)
                and isinstance(row.get("loss"), int | float)):
            rows.append(row)
    if not rows:
        raise CTPError(f"{metrics}: no metrics rows (expected the JSON lines ctp train logs, "
                       "one per --log-every steps)")
    return rows


def plot_training_curves(run_dirs: Sequence[str], path: str) -> None:
    """Loss (and its parts) against step for each run's ``metrics.jsonl``, one panel a run;
    ``path``'s suffix picks the format (``FORMATS``)."""
    if Path(path).suffix.lower().lstrip(".") not in FORMATS:
        raise CTPError(f"--out: expected a picture file ending in .{', .'.join(FORMATS)}, "
                       f"got {path}")
    check_output("--out", path, {f"RUN {run}": Path(run) / "metrics.jsonl" for run in run_dirs})
    runs = [(run, metrics_rows(run)) for run in run_dirs]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(run_dirs), figsize=(4.2 * len(run_dirs), 3.2),
                             squeeze=False)
    for ax, (run, rows) in zip(axes[0], runs):
        draw_run(ax, Path(run).name, rows)
    fig.tight_layout()
    try:
        save_figure(fig, path)
    finally:
        plt.close(fig)


def draw_run(ax: Any, title: str, rows: list[dict[str, Any]]) -> None:
    """One run's loss (and its ctm, dsm parts) against step on the axes ``ax``, log scale; a
    single logged point is drawn as a dot."""
    steps = [r["step"] for r in rows]
    marker = "o" if len(rows) == 1 else None
    for key in ("loss", "ctm", "dsm"):
        if key in rows[0]:
            ax.plot(steps, [r.get(key, math.nan) for r in rows], label=key, lw=1, marker=marker)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
