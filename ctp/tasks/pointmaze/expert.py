"""The D4RL-recipe waypoint expert: shortest path over cells, PD control to each waypoint.

Follows the controller of Minari's PointMaze generation scripts
(Farama-Foundation/minari-dataset-generation-scripts, scripts/pointmaze/controller.py): after
(re)planning the first waypoint is the next cell's centre, later ones are jittered, the last is
the exact goal; waypoints switch within 0.1.
"""

from __future__ import annotations

import numpy as np

from ctp.tasks.maze_grid import MazeGeometry, WaypointPath

P_GAIN, D_GAIN = 10.0, -1.0
WAYPOINT_REACHED = 0.1  # switch to the next waypoint within this distance
JITTER = 0.2  # waypoint jitter, per axis


class WaypointExpert:
    """Drives the point to ``desired_goal`` along the shortest cell path.

    Waypoints (``ctp.tasks.maze_grid.WaypointPath``) are cell centres shifted by ``-U(0, 0.2)``
    per axis (the recipe's jitter, zero when ``jitter=False``; the first waypoint after
    (re)planning is not jittered), the last waypoint is the exact goal; the PD action is
    ``10 * (waypoint - xy) - 1 * velocity``.
    """

    def __init__(
        self, geometry: MazeGeometry, rng: np.random.Generator, jitter: bool = True
    ) -> None:
        self.path = WaypointPath(geometry, rng, JITTER if jitter else 0.0, WAYPOINT_REACHED)

    def pd_action(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Unclipped PD action ``[2]`` for one Gymnasium-Robotics observation dict.

        The recipe adds its action noise to this before clipping; use :meth:`act` to drive
        an env without noise.
        """
        xy, vel = obs["achieved_goal"], obs["observation"][2:4]
        return P_GAIN * (self.path.target(xy, obs["desired_goal"]) - xy) + D_GAIN * vel

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Action ``[2]`` in the action space [-1, 1] for one observation dict."""
        return np.clip(self.pd_action(obs), -1.0, 1.0)
