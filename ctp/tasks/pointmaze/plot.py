"""Pictures of PointMaze evaluations: maze walls, chosen plans, executed paths."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ctp.tasks.maze_grid import MazeGeometry
from ctp.tasks.pointmaze.spec import MazeSpec


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
