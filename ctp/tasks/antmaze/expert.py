"""The data-generating controller: a cell-level maze solver gives waypoints, the shipped ant
controller walks toward them.

The solver is breadth-first search over free cells (``ctp.tasks.maze_grid``). After (re)planning
the first waypoint is the next cell's centre; later ones are cell centres shifted by
``-U(0, jitter)`` m per axis (D4RL's waypoint jitter); the last is the exact goal. The waypoint
advances within ``WAYPOINT_REACHED`` m. The controller is fed the unit direction to the
waypoint (OGBench's ``online-ant-xy`` interface), and its deterministic actions are scaled by
``ACTION_SCALE``. This is the "expert (ours)" reference and the data's source, never part of a
planner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from ctp.nn.actor import SquashedGaussianActor, load_actor
from ctp.tasks.antmaze.spec import CELL_SIZE, AntMazeSpec
from ctp.tasks.antmaze.steering import direction_obs
from ctp.tasks.maze_grid import MazeGeometry, WaypointPath
from ctp.utils.errors import CTPError

WAYPOINT_REACHED = 1.0  # m: switch to the next waypoint this close to the current one
JITTER = 0.8  # m: D4RL's waypoint jitter (0.2 of a unit cell), scaled to 4 m cells
BLEND = 2.0  # m: within this of a waypoint, the direction turns gradually toward the next one
HEADING_LAG = 10  # steps over which the ant's actual direction of travel is measured ...
HEADING_GAIN = 1.0  # ... and this fraction of its angle to the wanted direction added ...
MAX_CORRECTION = 1.0  # ... up to this many radians, to the commanded direction
STUCK_STEPS = 40  # an ant that moved under STUCK_DISTANCE in this many steps is stuck ...
STUCK_DISTANCE = 0.3  # m
ESCAPE_STEPS = 30  # ... and walks a random direction this many steps before aiming again
# The SAC actor's deterministic (mean) actions push the joints hard; at full strength the ant
# flipped in 44 of 100 large-maze validation episodes. Scaled by 0.6 it walks a calmer gait
# that flips in 2 (docs/results.md section 29).
ACTION_SCALE = 0.6
SHIPPED_ACTOR = Path(__file__).resolve().parents[2] / "assets" / "behaviour" / "ant-controller.pt"


@dataclass
class AntController:
    """The ant controller: a SAC actor (29 -> 8), whether it reads its direction in the
    torso's heading frame (recorded in its checkpoint's info), and the factor its
    deterministic actions are scaled by. The actor's deterministic path (ReLU trunk, mean head,
    tanh) runs as float32 numpy matrix products: one observation a step is the data's loop,
    where torch's per-call overhead cost more than the arithmetic."""

    actor: SquashedGaussianActor
    body_frame: bool
    action_scale: float
    _layers: list[tuple[np.ndarray, np.ndarray]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        linears = [m for m in self.actor.latent_pi if isinstance(m, nn.Linear)] + [self.actor.mu]
        self._layers = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy())
                        for m in linears]

    def __call__(self, obs: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """Observations ``[E, 27]``, world-frame unit directions ``[E, 2]`` -> deterministic
        actions ``[E, 8]`` in [-action_scale, action_scale] (float64)."""
        h = direction_obs(obs, directions, self.body_frame)
        *trunk, (w_mu, b_mu) = self._layers
        for w, b in trunk:
            h = np.maximum(h @ w + b, 0.0)
        return self.action_scale * np.tanh(h @ w_mu + b_mu).astype(np.float64)


def load_controller(path: str | Path = SHIPPED_ACTOR,
                    action_scale: float = ACTION_SCALE) -> AntController:
    """The ant controller from a behaviour checkpoint (the shipped one by default), its
    actions scaled by ``action_scale``."""
    if not Path(path).is_file():
        raise CTPError(f"{path}: ant controller not found (train one with 'ctp data generate "
                       "antmaze-umaze --train-policy')")
    actor, info = load_actor(path)
    if (actor.latent_pi[0].in_features, actor.mu.out_features) != (29, 8):
        raise CTPError(f"{path}: not an ant controller (expected 29 inputs and 8 actions)")
    return AntController(actor, bool(info.get("body_frame", False)), action_scale)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(math.hypot(v[0], v[1]), 1e-6)


class WaypointSolver:
    """The unit direction ``[2]`` toward the next waypoint on the shortest cell path to the
    current goal, for one ant, turning gradually toward the leg after it within ``BLEND`` m of
    the waypoint; replans whenever the goal moves."""

    def __init__(self, spec: AntMazeSpec, rng: np.random.Generator, jitter: bool = True):
        self.path = WaypointPath(MazeGeometry(spec.layout, CELL_SIZE), rng,
                                 JITTER if jitter else 0.0, WAYPOINT_REACHED)

    def direction(self, xy: np.ndarray, goal_xy: np.ndarray) -> np.ndarray:
        """Unit direction ``[2]`` from the ant's ``xy [2]`` toward its waypoint."""
        target = self.path.target(xy, goal_xy)
        offset = target - xy
        left = math.hypot(offset[0], offset[1])
        offset = offset / max(left, 1e-6)
        if left < BLEND:  # round the corner: blend in the leg after the waypoint
            weight = 1.0 - left / BLEND
            offset = _unit((1.0 - weight) * offset
                           + weight * _unit(self.path.next_waypoint - target))
        return offset


class AntExpert:
    """The controller and one ``WaypointSolver`` per env: batched observation dicts ->
    actions ``[E, 8]`` (deterministic but for the escapes; data collection adds its noise
    outside). The controller's gait drifts off the commanded direction, so the command is
    corrected by the angle between the wanted direction and the ant's travel over the last
    ``HEADING_LAG`` steps (times ``HEADING_GAIN``, clipped to ``MAX_CORRECTION``). An ant
    wedged against a wall (moved under ``STUCK_DISTANCE`` in ``STUCK_STEPS`` steps) walks a
    random direction for ``ESCAPE_STEPS`` steps, then aims again: the controller learned to walk
    on open ground and can hold still against a wall."""

    def __init__(self, spec: AntMazeSpec, controller: AntController, num_envs: int,
                 rng: np.random.Generator, jitter: bool = True):
        self.spec, self.controller, self.rng, self.jitter = spec, controller, rng, jitter
        self.solvers = [WaypointSolver(spec, rng, jitter) for _ in range(num_envs)]
        self.history = np.full((num_envs, STUCK_STEPS, 2), np.nan)  # recent positions, a ring
        self.newest = 0  # the ring's slot holding the latest positions
        self.escape = np.zeros(num_envs, dtype=np.int64)  # escape steps left
        self.escape_dir = np.zeros((num_envs, 2))

    def reset(self, index: int) -> None:
        """Forget env ``index``'s path (its episode restarted)."""
        self.solvers[index] = WaypointSolver(self.spec, self.rng, self.jitter)
        self.history[index] = np.nan
        self.escape[index] = 0

    def _record(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Record positions ``[E, 2]`` -> (which ants moved under STUCK_DISTANCE in the last
        STUCK_STEPS steps ``[E]``, each ant's travel over the last HEADING_LAG steps ``[E, 2]``;
        NaN until the history is long enough)."""
        self.newest = (self.newest + 1) % STUCK_STEPS
        self.history[:, self.newest] = xy
        oldest = self.history[:, (self.newest + 1) % STUCK_STEPS]
        lagged = self.history[:, (self.newest - HEADING_LAG) % STUCK_STEPS]
        moved = np.sqrt(np.square(xy - oldest).sum(axis=-1))
        return moved < STUCK_DISTANCE, xy - lagged  # NaN compares False

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """``observation [E, 27]``, ``achieved_goal`` / ``desired_goal [E, 2]`` ->
        actions ``[E, 8]`` in [-1, 1]."""
        xy = np.asarray(obs["achieved_goal"], dtype=np.float64)
        directions = np.stack([
            solver.direction(p, goal) for solver, p, goal
            in zip(self.solvers, xy, obs["desired_goal"])])
        stuck, travel = self._record(xy)
        moving = np.square(travel).sum(axis=-1) > 0.2**2
        want = np.arctan2(directions[:, 1], directions[:, 0])
        error = np.angle(np.exp(1j * (want - np.arctan2(travel[:, 1], travel[:, 0]))))
        aim = want + np.where(moving, np.clip(HEADING_GAIN * error, -MAX_CORRECTION,
                                              MAX_CORRECTION), 0.0)
        directions = np.stack([np.cos(aim), np.sin(aim)], axis=-1)
        for i in np.flatnonzero(stuck & (self.escape == 0)):
            angle = self.rng.uniform(-np.pi, np.pi)
            self.escape_dir[i] = np.cos(angle), np.sin(angle)
            self.escape[i] = ESCAPE_STEPS
            self.history[i] = np.nan
        escaping = self.escape > 0
        directions[escaping] = self.escape_dir[escaping]
        self.escape[escaping] -= 1
        return self.controller(obs["observation"], directions)
