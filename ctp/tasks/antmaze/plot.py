"""Pictures of the AntMaze family: the ant controller's learning curves."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ctp.tasks.sac_runs import read_rows
from ctp.utils.atomic import atomic_write
from ctp.utils.errors import CTPError


def read_evals(run_dir: str | Path) -> list[dict]:
    """The evaluation rows of one controller run folder."""
    path = Path(run_dir) / "evals.jsonl"
    try:
        if not path.is_file():
            raise OSError("no such file")
        return read_rows(path)
    except (OSError, json.JSONDecodeError) as exc:
        raise CTPError(f"{path}: not a readable evaluation log ({exc})") from None


def plot_controller_curves(run_dirs: Sequence[str | Path], out: str | Path,
                           labels: Sequence[str] | None = None) -> Path:
    """Evaluations over env steps, one colour per run (labelled by ``labels`` or the folder
    name): open-ground speed along the commanded direction (m/s, left axis; a fall marked x)
    and, in the maze stage, the mean success on the maze eval tasks (right axis, dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    maze_ax = None
    for i, run_dir in enumerate(run_dirs):
        rows = read_evals(run_dir)
        ground = [r for r in rows if "speed" in r]
        label = labels[i] if labels else Path(run_dir).name
        line, = ax.plot([r["step"] / 1e3 for r in ground], [r["speed"] for r in ground], "-",
                        lw=1.4, label=label)
        fell = [(r["step"] / 1e3, r["speed"]) for r in ground if r["falls"]]
        if fell:
            ax.plot(*zip(*fell), "x", ms=4, color=line.get_color())
        maze = [r for r in rows if "success" in r]
        if maze:
            maze_ax = maze_ax or ax.twinx()
            maze_ax.plot([r["step"] / 1e3 for r in maze], [r["success"] for r in maze], "--",
                         lw=1.4, color=line.get_color())
    if maze_ax is not None:
        maze_ax.set_ylabel("maze success (dashed)")
        maze_ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("env steps (k)")
    ax.set_ylabel("speed along command (m/s)")
    ax.set_title("ant controller, SAC (sbx); x: an evaluation episode fell")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    result = atomic_write(out, lambda fh: fig.savefig(fh, format="png", dpi=110))
    plt.close(fig)
    return result
