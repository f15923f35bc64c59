"""The data-generating controller: a cell-level maze solver gives waypoints, the shipped ant
controller walks toward them.

The solver is breadth-first search over free cells (``ctp.tasks.maze_grid``). After (re)planning
the first waypoint is the next cell's centre; later ones are cell centres shifted by
``-U(0, jitter)`` m per axis (D4RL's waypoint jitter); the last is the exact goal. The waypoint
advances within ``WAYPOINT_REACHED`` m. The controller is fed the unit direction to the
waypoint (OGBench's ``online-ant-xy`` interface). This is the "expert (ours)" reference and the
data's source, never part of a planner.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ctp.nn.actor import SquashedGaussianActor, load_actor
from ctp.tasks.antmaze.spec import CELL_SIZE, AntMazeSpec
from ctp.tasks.antmaze.steering import direction_obs
from ctp.tasks.maze_grid import MazeGeometry
from ctp.utils.errors import CTPError

WAYPOINT_REACHED = 1.0  # m: switch to the next waypoint this close to the current one
JITTER = 0.8  # m: D4RL's waypoint jitter (0.2 of a unit cell), scaled to 4 m cells
SHIPPED_ACTOR = Path(__file__).resolve().parents[2] / "assets" / "behaviour" / "ant-controller.pt"


def load_controller(path: str | Path = SHIPPED_ACTOR) -> SquashedGaussianActor:
    """The ant controller (29 -> 8) from a behaviour checkpoint; the shipped one by default."""
    if not Path(path).is_file():
        raise CTPError(f"{path}: ant controller not found (train one with 'ctp data generate "
                       "antmaze-umaze --train-policy')")
    actor, _ = load_actor(path)
    if (actor.latent_pi[0].in_features, actor.mu.out_features) != (29, 8):
        raise CTPError(f"{path}: not an ant controller (expected 29 inputs and 8 actions)")
    torch.set_grad_enabled(False)
    return actor


class WaypointSolver:
    """The unit direction ``[2]`` toward the next waypoint on the shortest cell path to the
    current goal, for one ant; replans whenever the goal moves."""

    def __init__(self, spec: AntMazeSpec, rng: np.random.Generator, jitter: bool = True):
        self.geometry = MazeGeometry(spec.layout, CELL_SIZE)
        self.rng = rng
        self.jitter = jitter
        self._goal_xy: np.ndarray | None = None
        self._dist = np.zeros((1, 1), dtype=np.int64)
        self._goal_cell: tuple[int, int] = (0, 0)
        self._cell: tuple[int, int] = (0, 0)
        self._target = np.zeros(2)

    def _waypoint(self, cell: tuple[int, int], jitter: bool) -> np.ndarray:
        if cell == self._goal_cell:
            return self._goal_xy.copy()
        centre = self.geometry.cell_to_xy(np.array(cell))
        return centre - (self.rng.uniform(size=2) * JITTER if jitter else 0.0)

    def _replan(self, xy: np.ndarray, goal_xy: np.ndarray) -> None:
        self._goal_xy = goal_xy.copy()
        self._goal_cell = tuple(int(v) for v in self.geometry.xy_to_cell(goal_xy))
        self._dist = self.geometry.distances_to(self._goal_cell)
        here = tuple(int(v) for v in self.geometry.xy_to_cell(xy))
        self._cell = self.geometry.next_cell(here, self._dist)
        self._target = self._waypoint(self._cell, jitter=False)

    def direction(self, xy: np.ndarray, goal_xy: np.ndarray) -> np.ndarray:
        """Unit direction ``[2]`` from the ant's ``xy [2]`` toward its waypoint."""
        if self._goal_xy is None or np.linalg.norm(goal_xy - self._goal_xy) > 1e-3:
            self._replan(xy, goal_xy)
        if (self._cell != self._goal_cell
                and np.linalg.norm(self._target - xy) <= WAYPOINT_REACHED):
            self._cell = self.geometry.next_cell(self._cell, self._dist)
            self._target = self._waypoint(self._cell, jitter=self.jitter)
        offset = self._target - xy
        return offset / max(float(np.linalg.norm(offset)), 1e-6)


class AntExpert:
    """The controller and one ``WaypointSolver`` per env: batched observation dicts ->
    actions ``[E, 8]`` (deterministic; data collection adds its noise outside)."""

    def __init__(self, spec: AntMazeSpec, actor: SquashedGaussianActor, num_envs: int,
                 rng: np.random.Generator, jitter: bool = True):
        self.spec, self.actor, self.rng, self.jitter = spec, actor, rng, jitter
        self.solvers = [WaypointSolver(spec, rng, jitter) for _ in range(num_envs)]

    def reset(self, index: int) -> None:
        """Forget env ``index``'s path (its episode restarted)."""
        self.solvers[index] = WaypointSolver(self.spec, self.rng, self.jitter)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """``observation [E, 27]``, ``achieved_goal`` / ``desired_goal [E, 2]`` ->
        actions ``[E, 8]`` in [-1, 1]."""
        directions = np.stack([
            solver.direction(xy, goal) for solver, xy, goal
            in zip(self.solvers, obs["achieved_goal"], obs["desired_goal"])])
        x = torch.from_numpy(direction_obs(obs["observation"], directions))
        with torch.no_grad():
            return self.actor(x, deterministic=True).numpy().astype(np.float64)
