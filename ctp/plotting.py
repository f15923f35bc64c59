"""Pictures of evaluations: maze walls, chosen plans, executed paths."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ctp.envs.maze import MazeGeometry
from ctp.envs.specs import MazeSpec


def plot_episodes(spec: MazeSpec, episodes: Sequence[Any], path: str, title: str = "") -> None:
    """One panel per episode: walls (grey), chosen plans (dashed), executed path, goal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Rectangle

    geometry = MazeGeometry(spec.layout)
    n = max(len(episodes), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.4), squeeze=False)
    for ax, ep in zip(axes[0], episodes, strict=False):
        for cell in geometry.wall_cells():
            x, y = geometry.cell_to_xy(cell)
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, color="0.55"))
        for i, plan in enumerate(ep.plans):
            ax.plot(plan[:, 0], plan[:, 1], "--", lw=1, color="tab:orange",
                    label="plans" if i == 0 else None)
        ax.plot(ep.path[:, 0], ep.path[:, 1], lw=1.5, color="tab:blue", label="executed")
        ax.plot(*ep.path[0], "o", color="tab:blue", ms=4)
        ax.add_patch(Circle(tuple(ep.goal), 0.45, fill=False, color="tab:green", lw=1.5))
        ax.set_title(f"seed {ep.seed}: return {ep.ret:.0f}", fontsize=9)
        ax.set_xlim(-geometry.cols / 2, geometry.cols / 2)
        ax.set_ylim(-geometry.rows / 2, geometry.rows / 2)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].legend(loc="lower left", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_training_curves(run_dirs: Sequence[str], path: str) -> None:
    """Loss (and its parts) against step for each run's ``metrics.jsonl``, one panel a run."""
    import json
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ctp.errors import CTPError

    fig, axes = plt.subplots(1, len(run_dirs), figsize=(4.2 * len(run_dirs), 3.2),
                             squeeze=False)
    for ax, run in zip(axes[0], run_dirs):
        metrics = Path(run) / "metrics.jsonl"
        if not metrics.is_file():
            raise CTPError(f"{metrics}: not found (expected a ctp train output folder)")
        rows = [json.loads(line) for line in metrics.read_text().splitlines() if line]
        steps = [r["step"] for r in rows]
        for key in ("loss", "ctm", "dsm"):
            if key in rows[0]:
                ax.plot(steps, [r[key] for r in rows], label=key, lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(Path(run).name, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
