"""Pictures of the AntMaze family: the ant controller's learning curve."""

from __future__ import annotations

import json
from pathlib import Path

from ctp.utils.atomic import atomic_write
from ctp.utils.errors import CTPError


def plot_controller_curve(run_dir: str | Path, out: str | Path) -> Path:
    """Evaluation speed along the commanded direction (m/s) over env steps, falls marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(run_dir) / "evals.jsonl"
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise CTPError(f"{path}: not a readable evaluation log ({exc})") from None
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    steps = [r["step"] / 1e3 for r in rows]
    ax.plot(steps, [r["speed"] for r in rows], "-o", ms=3, lw=1.4, color="tab:blue",
            label="deterministic eval")
    fell = [(r["step"] / 1e3, r["speed"]) for r in rows if r["falls"]]
    if fell:
        ax.plot(*zip(*fell), "x", color="tab:red", label="an episode fell")
    ax.set_xlabel("env steps (k)")
    ax.set_ylabel("speed along command (m/s)")
    ax.set_title("ant controller, SAC (sbx)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    result = atomic_write(out, lambda fh: fig.savefig(fh, format="png", dpi=110))
    plt.close(fig)
    return result
