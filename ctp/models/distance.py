"""Goal distance ``d(position, goal)`` (``ctp train distance``): how many env steps the data
takes from a place to a goal, the ``distance`` scorer's network on goal tasks.

Trained on pairs of one episode's own states: a step t and a step t + dt of the same episode,
dt drawn uniformly from 0 to the episode's last step; the input is the two positions (the
state's leading ``goal_dims``, e.g. AntMaze's x, y), the target dt. One place pair is reached
in many times (the data wanders), so the network fits a low expectile of dt (``expectile``
tau = 0.1: an over-estimate costs 9 times an under-estimate) and learns the data's fast end:
the route, not the mean wander. Positions are raw env units; the MLP (``ctp.nn.mlp.MLP``)
standardises its input with the training pairs' mean and std and predicts dt in units of
``scale`` (the mean dt of the pairs), so ``forward`` returns env steps.

Stitching (``waypoints`` W > 0): the times above only join places one episode visits, and where
no episode runs from a place to a goal (diverse data: random starts and goals) they miss the
route. Then a share ``random_goals`` of pairs takes its goal from anywhere in the data, and
every pair also bootstraps through W waypoints of its own episode: the target is the least of
``k + d_ema(s_{t+k}, goal)`` over its waypoints (k uniform over the rest of the episode; the
EMA network's estimate from there), and of dt for a goal of its own episode. The data's own
walk to a waypoint plus the estimate from there is a route the data can take, so the fitted
distance joins episodes that pass the same places.

Checkpoint (``kind`` "distance", ``ctp/training/``): the training checkpoint's fields with
``unet`` and ``edm`` None and ``distance`` = {goal_dims, hidden, expectile, scale}.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ctp.data.normalizer import Normalizer
from ctp.nn.mlp import MLP
from ctp.tasks.base import StepStream
from ctp.utils.errors import CTPError


class GoalDistance(nn.Module):
    """``forward(position [B, G], goal [B, G])`` -> ``[B]`` env steps from the position to
    the goal at the data's fast end (G = ``goal_dims``; a position may hold more dims, only
    its leading G are read)."""

    def __init__(self, goal_dims: int, hidden: tuple[int, ...] = (256, 256),
                 expectile: float = 0.1, scale: float = 1.0) -> None:
        super().__init__()
        self.goal_dims, self.hidden, self.expectile = goal_dims, tuple(hidden), expectile
        self.mlp = MLP(2 * goal_dims, 1, self.hidden, squash=False)
        self.register_buffer("time_scale", torch.tensor(float(scale)))

    def config(self) -> dict[str, Any]:
        return {"goal_dims": self.goal_dims, "hidden": list(self.hidden),
                "expectile": self.expectile, "scale": float(self.time_scale)}

    def forward(self, position: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        g = self.goal_dims  # the MLP predicts env steps in units of the scale
        out = self.mlp(torch.cat([position[..., :g], goal[..., :g]], dim=-1)).squeeze(-1)
        return out * self.time_scale


def expectile_loss(pred: torch.Tensor, target: torch.Tensor, tau: float) -> torch.Tensor:
    """Mean of ``|tau - 1(target < pred)| * (target - pred)^2``: with tau < 0.5 an
    over-estimate costs more than an under-estimate, so ``pred`` settles at a low expectile
    of the targets; tau = 0.5 is the MSE / 2."""
    diff = target - pred
    weight = torch.where(diff < 0, 1.0 - tau, tau)
    return (weight * diff.square()).mean()


class TimePairs:
    """Every step t of a dataset with a partner later in its episode: ``batch(idx)`` ->
    dict(position ``[B, G]`` at t, goal ``[B, G]`` at t + dt, target ``[B]`` = dt / scale).
    dt is drawn uniformly from 0 to the episode's last step, seeded by ``idx`` itself, so a
    batch is the same however often it is made (a resumed run sees the same pairs).

    With ``waypoints`` W > 0 the batch also holds ``waypoint [B, W, G]`` (places of t's
    episode k steps on, k uniform over its rest), ``hops [B, W]`` = k / scale and ``own
    [B]`` (bool: the goal is t's own episode's, so ``target`` bounds the time); a share
    ``random_goals`` of the goals is then drawn from the whole data (``own`` False)."""

    def __init__(self, data: StepStream, goal_dims: int, normalizer: Normalizer | None = None,
                 waypoints: int = 0, random_goals: float = 0.0) -> None:
        if goal_dims < 1:
            raise CTPError(f"{data.dataset_id}: the goal distance needs a goal task (goals "
                           "are the state's leading dims); this dataset's task has none")
        self.positions = np.ascontiguousarray(data.observations[:, :goal_dims],
                                              dtype=np.float32)
        bounds = data.episode_bounds()
        ends = np.repeat(bounds[:, 1], bounds[:, 1] - bounds[:, 0])  # each step's episode end
        self._after = ends - np.arange(data.num_steps) - 1  # later steps in the episode
        if data.num_steps == 0 or self._after.max() < 1:
            raise CTPError(f"{data.dataset_id}: no episode holds two steps; the goal "
                           "distance needs pairs of states of one episode")
        # Kept with the checkpoint like every run's (the MLP itself reads raw positions).
        self.normalizer = normalizer or Normalizer.fit(data.observations)
        self.scale = float(np.mean(self._after) / 2)  # the mean dt over all draws
        self.waypoints, self.random_goals = waypoints, random_goals

    def __len__(self) -> int:
        return int(len(self.positions))

    def batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        idx = np.asarray(idx, dtype=np.int64)
        rng = np.random.default_rng(idx)
        rest = self._after[idx] + 1
        dt = np.floor(rng.random(idx.size) * rest).astype(np.int64)
        goal = idx + dt
        item = {"position": torch.from_numpy(self.positions[idx]),
                "target": torch.from_numpy((dt / self.scale).astype(np.float32))}
        if self.waypoints:
            own = rng.random(idx.size) >= self.random_goals
            goal = np.where(own, goal, rng.integers(0, len(self), idx.size))
            hops = np.floor(rng.random((idx.size, self.waypoints)) * rest[:, None])
            hops = hops.astype(np.int64)
            item |= {"waypoint": torch.from_numpy(self.positions[idx[:, None] + hops]),
                     "hops": torch.from_numpy((hops / self.scale).astype(np.float32)),
                     "own": torch.from_numpy(own)}
        return item | {"goal": torch.from_numpy(self.positions[goal])}

    def input_sample(self, count: int = 100_000, seed: int = 0) -> torch.Tensor:
        """``[count, 2 G]`` (position, goal) rows drawn as batches are, for the MLP's input
        statistics."""
        rows = np.random.default_rng(seed).integers(0, len(self), count)
        item = self.batch(rows)
        return torch.cat([item["position"], item["goal"]], dim=1)


def stitched_target(ema: GoalDistance, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``[B]`` targets in units of the scale: the least of ``hops + d_ema(waypoint, goal)``
    over the W waypoints and, for goals of the pair's own episode, its time ``target``."""
    with torch.no_grad():
        waypoint = batch["waypoint"]
        goal = batch["goal"][:, None].expand_as(waypoint)
        ahead = ema(waypoint, goal).clamp_min(0.0) / ema.time_scale
        boot = (batch["hops"] + ahead).min(dim=1).values
        return torch.where(batch["own"], torch.minimum(batch["target"], boot), boot)
