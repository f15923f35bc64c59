"""Maze geometry (cells <-> positions, walls, shortest paths) and env construction.

Cell (row, col) centres follow Gymnasium-Robotics: x = (col + 0.5) - width/2,
y = height/2 - (row + 0.5), with unit cells (maze_size_scaling = 1).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ctp.tasks.pointmaze.spec import MazeSpec
from ctp.utils.errors import CTPError


class MazeGeometry:
    """Free cells, wall cells and shortest-path distances of one maze layout."""

    def __init__(self, layout: tuple[tuple[int, ...], ...]) -> None:
        self.grid = np.array(layout, dtype=np.int8)
        self.rows, self.cols = self.grid.shape

    def cell_to_xy(self, cells: np.ndarray) -> np.ndarray:
        """Centres of cells: ``[..., 2]`` (row, col) -> ``[..., 2]`` (x, y)."""
        cells = np.asarray(cells, dtype=np.float64)
        x = cells[..., 1] + 0.5 - self.cols / 2
        y = self.rows / 2 - (cells[..., 0] + 0.5)
        return np.stack([x, y], axis=-1)

    def xy_to_cell(self, xy: np.ndarray) -> np.ndarray:
        """Cells containing positions: ``[..., 2]`` (x, y) -> int ``[..., 2]`` (row, col)."""
        xy = np.asarray(xy, dtype=np.float64)
        col = np.floor(xy[..., 0] + self.cols / 2)
        row = np.floor(self.rows / 2 - xy[..., 1])
        cells = np.stack([row, col], axis=-1).astype(np.int64)
        return np.clip(cells, 0, [self.rows - 1, self.cols - 1])

    def free_cells(self) -> np.ndarray:
        """All free cells, int ``[F, 2]`` (row, col), row-major order."""
        return np.argwhere(self.grid == 0)

    def wall_cells(self) -> np.ndarray:
        """All wall cells, int ``[W, 2]`` (row, col)."""
        return np.argwhere(self.grid == 1)

    def distances_to(self, goal: tuple[int, int]) -> np.ndarray:
        """BFS step distance of every cell to ``goal`` (4-neighbourhood); walls are -1."""
        dist = np.full(self.grid.shape, -1, dtype=np.int64)
        dist[goal] = 0
        queue = deque([goal])
        while queue:
            r, c = queue.popleft()
            for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                nr, nc = r + dr, c + dc
                if self.grid[nr, nc] == 0 and dist[nr, nc] < 0:
                    dist[nr, nc] = dist[r, c] + 1
                    queue.append((nr, nc))
        return dist

    def next_cell(self, cell: tuple[int, int], dist: np.ndarray) -> tuple[int, int]:
        """The neighbour of ``cell`` one step closer to the goal of ``dist`` (itself at 0)."""
        r, c = cell
        if dist[r, c] <= 0:
            return cell
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            if dist[r + dr, c + dc] == dist[r, c] - 1:
                return (r + dr, c + dc)
        raise AssertionError("BFS distances are inconsistent")


def _drop_robotics_import_notice() -> None:
    """Keep Gymnasium-Robotics from printing its import-time notice (about the Adroit hand
    envs' rewards, nothing PointMaze uses) into every command's output and progress bar."""
    try:
        from farama_notifications import notifications
    except ImportError:
        return
    notifications.pop("gymnasium_robotics", None)


def make_env(
    spec: MazeSpec,
    *,
    eval_goal: bool = True,
    reset_target: bool = False,
    max_episode_steps: int | None = None,
):
    """A Gymnasium-Robotics PointMaze env (continuing task).

    eval_goal: use the single-task map (fixed goal cell, random reset); otherwise the plain
    layout, where goal and reset are both drawn at random (Multi2D and data generation).
    reset_target: re-sample the goal when it is reached (data generation only).
    """
    import gymnasium as gym

    _drop_robotics_import_notice()
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    maze_map = spec.eval_map() if eval_goal else [list(row) for row in spec.layout]
    return gym.make(
        spec.gym_id,
        maze_map=maze_map,
        continuing_task=True,
        reset_target=reset_target,
        max_episode_steps=max_episode_steps or spec.episode_steps,
    )


def make_vector_env(spec: MazeSpec, num_envs: int, *, eval_goal: bool = True):
    """``num_envs`` copies of :func:`make_env` (no target reset) in a ``SyncVectorEnv``.

    Observations are batched dicts: ``observation`` ``[num_envs, 4]``, ``achieved_goal`` and
    ``desired_goal`` ``[num_envs, 2]``; actions ``[num_envs, 2]``.
    """
    import gymnasium as gym

    if num_envs < 1:
        raise CTPError(f"num_envs: expected at least 1, got {num_envs}")
    return gym.vector.SyncVectorEnv(
        [lambda: make_env(spec, eval_goal=eval_goal) for _ in range(num_envs)]
    )
