"""Maze layouts, their geometry and their envs, shared by the PointMaze and AntMaze families.

Layouts are Gymnasium-Robotics' maps (``gymnasium_robotics/envs/maze/maps.py``: U_MAZE,
MEDIUM_MAZE, LARGE_MAZE; 1 = wall, 0 = free), cells indexed (row, col) from the top left. Cell
(row, col) centres follow Gymnasium-Robotics: x = ((col + 0.5) - width/2) * scale,
y = (height/2 - (row + 0.5)) * scale, with ``scale`` the env's ``maze_size_scaling`` (PointMaze
1, AntMaze 4).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

U_MAZE = (
    (1, 1, 1, 1, 1),
    (1, 0, 0, 0, 1),
    (1, 1, 1, 0, 1),
    (1, 0, 0, 0, 1),
    (1, 1, 1, 1, 1),
)
MEDIUM_MAZE = (
    (1, 1, 1, 1, 1, 1, 1, 1),
    (1, 0, 0, 1, 1, 0, 0, 1),
    (1, 0, 0, 1, 0, 0, 0, 1),
    (1, 1, 0, 0, 0, 1, 1, 1),
    (1, 0, 0, 1, 0, 0, 0, 1),
    (1, 0, 1, 0, 0, 1, 0, 1),
    (1, 0, 0, 0, 1, 0, 0, 1),
    (1, 1, 1, 1, 1, 1, 1, 1),
)
LARGE_MAZE = (
    (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    (1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1),
    (1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1),
    (1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1),
    (1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1),
    (1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1),
    (1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1),
    (1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1),
    (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
)



MAZE_LAYOUTS = {"umaze": U_MAZE, "medium": MEDIUM_MAZE, "large": LARGE_MAZE}


class MazeGeometry:
    """Free cells, wall cells and shortest-path distances of one maze layout, cells
    ``scale`` metres wide."""

    def __init__(self, layout: tuple[tuple[int, ...], ...], scale: float = 1.0) -> None:
        self.grid = np.array(layout, dtype=np.int8)
        self.rows, self.cols = self.grid.shape
        self.scale = scale  # metres per cell (Gymnasium-Robotics' maze_size_scaling)

    def cell_to_xy(self, cells: np.ndarray) -> np.ndarray:
        """Centres of cells: ``[..., 2]`` (row, col) -> ``[..., 2]`` (x, y)."""
        cells = np.asarray(cells, dtype=np.float64)
        x = cells[..., 1] + 0.5 - self.cols / 2
        y = self.rows / 2 - (cells[..., 0] + 0.5)
        return np.stack([x, y], axis=-1) * self.scale

    def xy_to_cell(self, xy: np.ndarray) -> np.ndarray:
        """Cells containing positions: ``[..., 2]`` (x, y) -> int ``[..., 2]`` (row, col)."""
        xy = np.asarray(xy, dtype=np.float64) / self.scale
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


def register_robotics_envs() -> None:
    """Register Gymnasium-Robotics' envs with Gymnasium, without its import-time notice (about
    the Adroit hand envs' rewards, nothing the mazes use) in every command's output."""
    import gymnasium as gym

    try:
        from farama_notifications import notifications
    except ImportError:
        pass
    else:
        notifications.pop("gymnasium_robotics", None)
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)


def make_maze_env(gym_id: str, **kwargs: Any) -> Any:
    """``gym.make(gym_id, **kwargs)`` of a Gymnasium-Robotics maze env, safe when several
    processes build mazes at once, and leaving no file behind.

    Gymnasium-Robotics writes each maze's MuJoCo XML into the temp folder and then loads it:
    PointMaze (``maze.py``) always to the same ``ant_maze.xml``, so a process building a maze
    while another writes that file loads the other's maze or half a file; AntMaze v4
    (``maze_v4.py``) to a new ``ant_maze<time>.xml`` that it never deletes. Here the build holds
    an exclusive lock (``fcntl.flock`` on a per-user file in the same temp folder) and the XML
    is deleted once MuJoCo has loaded it: the model lives in memory, and neither reset nor
    rendering reads the file again. The model compiles in this thread
    (``ctp.tasks.mujoco_compile``).
    """
    import fcntl

    import gymnasium as gym

    from ctp.tasks.mujoco_compile import models_compiled_in_this_thread

    register_robotics_envs()
    lock_path = Path(tempfile.gettempdir()) / f"ctp-maze-xml-{os.getuid()}.lock"
    fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with models_compiled_in_this_thread():
            env = gym.make(gym_id, **kwargs)
        Path(env.unwrapped.tmp_xml_file_path).unlink(missing_ok=True)
    finally:
        os.close(fd)  # releases the lock
    return env


class WaypointPath:
    """The current waypoint of an agent walking a shortest cell path to its goal (D4RL's
    waypoint controllers): after (re)planning, the next cell's centre; later ones, cell centres
    shifted by ``-U(0, jitter)`` per axis (none without ``rng``'s draws when ``jitter`` is 0);
    the last, the exact goal. The waypoint advances once the agent is within ``reached``."""

    def __init__(self, geometry: MazeGeometry, rng: np.random.Generator, jitter: float,
                 reached: float) -> None:
        self.geometry, self.rng, self.jitter, self.reached = geometry, rng, jitter, reached
        self._goal_xy: np.ndarray | None = None
        self._dist = np.zeros((1, 1), dtype=np.int64)
        self._goal_cell: tuple[int, int] = (0, 0)
        self._cell: tuple[int, int] = (0, 0)
        self._target = np.zeros(2)

    def _waypoint(self, cell: tuple[int, int], jitter: bool) -> np.ndarray:
        if cell == self._goal_cell:
            return self._goal_xy.copy()
        centre = self.geometry.cell_to_xy(np.array(cell))
        return centre - (self.rng.uniform(size=2) * self.jitter if jitter else 0.0)

    def _replan(self, xy: np.ndarray, goal_xy: np.ndarray) -> None:
        self._goal_xy = goal_xy.copy()
        self._goal_cell = tuple(int(v) for v in self.geometry.xy_to_cell(goal_xy))
        self._dist = self.geometry.distances_to(self._goal_cell)
        here = tuple(int(v) for v in self.geometry.xy_to_cell(xy))
        self._cell = self.geometry.next_cell(here, self._dist)
        self._target = self._waypoint(self._cell, jitter=False)

    @property
    def waypoint(self) -> np.ndarray:
        """The current waypoint ``[2]`` (as the last :meth:`target` call left it)."""
        return self._target.copy()

    @property
    def next_waypoint(self) -> np.ndarray:
        """The waypoint after the current one ``[2]``: the next cell's centre (unjittered) or
        the goal; the current waypoint itself once that is the goal."""
        if self._cell == self._goal_cell:
            return self._target.copy()
        cell = self.geometry.next_cell(self._cell, self._dist)
        if cell == self._goal_cell:
            return self._goal_xy.copy()
        return self.geometry.cell_to_xy(np.array(cell))

    def target(self, xy: np.ndarray, goal_xy: np.ndarray) -> np.ndarray:
        """The waypoint ``[2]`` for an agent at ``xy [2]`` bound for ``goal_xy [2]``; a goal
        that moved (by over 1 mm) starts a new path."""
        if self._goal_xy is None or math.dist(goal_xy, self._goal_xy) > 1e-3:
            self._replan(xy, goal_xy)
        if self._cell != self._goal_cell and math.dist(self._target, xy) <= self.reached:
            self._cell = self.geometry.next_cell(self._cell, self._dist)
            self._target = self._waypoint(self._cell, jitter=self.jitter > 0)
        return self._target
