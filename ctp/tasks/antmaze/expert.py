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

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ctp.nn.actor import SquashedGaussianActor, load_actor
from ctp.tasks.antmaze.spec import CELL_SIZE, AntMazeSpec
from ctp.tasks.antmaze.steering import direction_obs
from ctp.tasks.maze_grid import MazeGeometry, WaypointPath
from ctp.utils.errors import CTPError

WAYPOINT_REACHED = 1.0  # m: switch to the next waypoint this close to the current one
JITTER = 0.8  # m: D4RL's waypoint jitter (0.2 of a unit cell), scaled to 4 m cells
SHIPPED_ACTOR = Path(__file__).resolve().parents[2] / "assets" / "behaviour" / "ant-controller.pt"


@dataclass
class AntController:
    """The ant controller: a SAC actor (29 -> 8) and whether it reads its direction in the
    torso's heading frame (recorded in its checkpoint's info)."""

    actor: SquashedGaussianActor
    body_frame: bool

    def __call__(self, obs: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """Observations ``[E, 27]``, world-frame unit directions ``[E, 2]`` -> deterministic
        actions ``[E, 8]`` in [-1, 1] (float64)."""
        x = torch.from_numpy(direction_obs(obs, directions, self.body_frame))
        with torch.no_grad():
            return self.actor(x, deterministic=True).numpy().astype(np.float64)


def load_controller(path: str | Path = SHIPPED_ACTOR) -> AntController:
    """The ant controller from a behaviour checkpoint; the shipped one by default."""
    if not Path(path).is_file():
        raise CTPError(f"{path}: ant controller not found (train one with 'ctp data generate "
                       "antmaze-umaze --train-policy')")
    actor, info = load_actor(path)
    if (actor.latent_pi[0].in_features, actor.mu.out_features) != (29, 8):
        raise CTPError(f"{path}: not an ant controller (expected 29 inputs and 8 actions)")
    return AntController(actor, bool(info.get("body_frame", False)))


class WaypointSolver:
    """The unit direction ``[2]`` toward the next waypoint on the shortest cell path to the
    current goal, for one ant; replans whenever the goal moves."""

    def __init__(self, spec: AntMazeSpec, rng: np.random.Generator, jitter: bool = True):
        self.path = WaypointPath(MazeGeometry(spec.layout, CELL_SIZE), rng,
                                 JITTER if jitter else 0.0, WAYPOINT_REACHED)

    def direction(self, xy: np.ndarray, goal_xy: np.ndarray) -> np.ndarray:
        """Unit direction ``[2]`` from the ant's ``xy [2]`` toward its waypoint."""
        offset = self.path.target(xy, goal_xy) - xy
        return offset / max(float(np.linalg.norm(offset)), 1e-6)


class AntExpert:
    """The controller and one ``WaypointSolver`` per env: batched observation dicts ->
    actions ``[E, 8]`` (deterministic; data collection adds its noise outside)."""

    def __init__(self, spec: AntMazeSpec, controller: AntController, num_envs: int,
                 rng: np.random.Generator, jitter: bool = True):
        self.spec, self.controller, self.rng, self.jitter = spec, controller, rng, jitter
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
        return self.controller(obs["observation"], directions)
