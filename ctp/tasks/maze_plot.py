"""Pictures of maze evaluations (PointMaze, AntMaze): walls, chosen plans, executed paths."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ctp.tasks.maze_grid import MazeGeometry
from ctp.utils.atomic import save_figure


def plot_episodes(geometry: MazeGeometry, episodes: Sequence[Any], path: str, title: str = "",
                  goal_radius: float = 0.45) -> None:
    """One panel per episode: walls (grey), chosen plans (dashed), executed path, the goal
    circle of ``goal_radius``; positions are the plans' and paths' first two dims."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Rectangle

    cell = geometry.scale
    n = max(len(episodes), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.4), squeeze=False)
    for ax, ep in zip(axes[0], episodes, strict=False):
        for wall in geometry.wall_cells():
            x, y = geometry.cell_to_xy(wall)
            ax.add_patch(Rectangle((x - cell / 2, y - cell / 2), cell, cell, color="0.55"))
        for i, plan in enumerate(ep.plans):
            ax.plot(plan[:, 0], plan[:, 1], "--", lw=1, color="tab:orange",
                    label="plans" if i == 0 else None)
        ax.plot(ep.path[:, 0], ep.path[:, 1], lw=1.5, color="tab:blue", label="executed")
        ax.plot(*ep.path[0, :2], "o", color="tab:blue", ms=4)
        ax.add_patch(Circle(tuple(ep.goal[:2]), goal_radius, fill=False, color="tab:green",
                            lw=1.5))
        ax.set_title(f"seed {ep.seed}: return {ep.ret:.0f}", fontsize=9)
        ax.set_xlim(-geometry.cols * cell / 2, geometry.cols * cell / 2)
        ax.set_ylim(-geometry.rows * cell / 2, geometry.rows * cell / 2)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].legend(loc="lower left", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        save_figure(fig, path)
    finally:
        plt.close(fig)
