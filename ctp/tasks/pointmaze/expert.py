"""The D4RL-recipe waypoint expert: shortest path over cells, PD control to each waypoint.

Follows the controller of Minari's PointMaze generation scripts
(Farama-Foundation/minari-dataset-generation-scripts, scripts/pointmaze/controller.py): after
(re)planning the first waypoint is the next cell's centre, later ones are jittered, the last is
the exact goal; waypoints switch within 0.1.
"""

from __future__ import annotations

import numpy as np

from ctp.tasks.maze_grid import MazeGeometry

P_GAIN, D_GAIN = 10.0, -1.0
WAYPOINT_REACHED = 0.1  # switch to the next waypoint within this distance


class WaypointExpert:
    """Drives the point to ``desired_goal`` along the shortest cell path.

    Waypoints are cell centres shifted by ``-U(0, 0.2)`` per axis (the recipe's jitter, zero
    when ``jitter=False``; the first waypoint after (re)planning is not jittered), the last
    waypoint is the exact goal; the PD action is ``10 * (waypoint - xy) - 1 * velocity``.
    """

    def __init__(
        self, geometry: MazeGeometry, rng: np.random.Generator, jitter: bool = True
    ) -> None:
        self.geometry = geometry
        self.rng = rng
        self.jitter = jitter
        self._goal_xy: np.ndarray | None = None
        self._dist: np.ndarray | None = None
        self._goal_cell: tuple[int, int] = (0, 0)
        self._cell: tuple[int, int] = (0, 0)
        self._target = np.zeros(2)

    def _waypoint(self, cell: tuple[int, int], jitter: bool) -> np.ndarray:
        if cell == self._goal_cell:
            return self._goal_xy.copy()
        centre = self.geometry.cell_to_xy(np.array(cell))
        return centre - (self.rng.uniform(size=2) * 0.2 if jitter else 0.0)

    def _replan(self, xy: np.ndarray, goal_xy: np.ndarray) -> None:
        self._goal_xy = goal_xy.copy()
        self._goal_cell = tuple(int(v) for v in self.geometry.xy_to_cell(goal_xy))
        self._dist = self.geometry.distances_to(self._goal_cell)
        here = tuple(int(v) for v in self.geometry.xy_to_cell(xy))
        self._cell = self.geometry.next_cell(here, self._dist)
        self._target = self._waypoint(self._cell, jitter=False)

    def pd_action(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Unclipped PD action ``[2]`` for one Gymnasium-Robotics observation dict.

        The recipe adds its action noise to this before clipping; use :meth:`act` to drive
        an env without noise.
        """
        xy, vel, goal = obs["achieved_goal"], obs["observation"][2:4], obs["desired_goal"]
        if self._goal_xy is None or np.linalg.norm(goal - self._goal_xy) > 1e-3:
            self._replan(xy, goal)
        if self._cell != self._goal_cell and np.linalg.norm(self._target - xy) <= WAYPOINT_REACHED:
            self._cell = self.geometry.next_cell(self._cell, self._dist)
            self._target = self._waypoint(self._cell, jitter=self.jitter)
        return P_GAIN * (self._target - xy) + D_GAIN * vel

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Action ``[2]`` in the action space [-1, 1] for one observation dict."""
        return np.clip(self.pd_action(obs), -1.0, 1.0)
