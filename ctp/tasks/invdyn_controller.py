"""Turn plans into actions with the planner file's inverse dynamics (locomotion, AntMaze).

A plan holds one state every ``stride`` env steps; the inverse-dynamics model
(``ctp.models.inverse_dynamics``) was trained on pairs ``(s_t, s_{t+k}) -> a_t`` with k its
``stride``, a multiple of the plans' stride within the plan's span, or any k within it for a
model reading positions only (``ctp bundle`` and the planner check it). Right after planning,
the action is ``f(observed s_t, plan state k env steps ahead)``: the observed state (the
plan's index 0 is pinned to it) and where the plan will be k steps later (interpolated
between plan states). A k of several steps averages out the plan's one-step errors (on
hopper-medium, k = 1 fell within ~50 steps and k = 16 walked; docs/results.md section 15).
With replanning every R > 1 steps the plan is followed on: ``age`` env steps after it was
made, the target is the plan's (linearly interpolated) state k env steps after ``age``, the
last state once the plan is used up. Given a target state instead (the planner's
``target_radius``: a state chosen among all candidates), every action until the next plan
asks the model its full reach from the observed position toward that state. With
``back_off`` N, an agent whose position moved under ``STUCK_DISTANCE`` in the last
``STUCK_STEPS`` steps (an ant wedged on a wall's corner) is asked its full reach straight away
from its target for N steps, then heads for the targets again.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from ctp.tasks.base import interpolate_plan
from ctp.utils.errors import CTPError

STUCK_STEPS = 40  # an agent whose position moved under STUCK_DISTANCE in this many steps ...
STUCK_DISTANCE = 0.3  # ... (env units; AntMaze: metres) is stuck and backs off


class InverseDynamicsController:
    """Follows the current plans of E envs with ``a = f(s, target)`` (raw env units)."""

    def __init__(self, invdyn: nn.Module, stride: int, aim: int | None = None,
                 back_off: int = 0) -> None:
        self.invdyn = invdyn
        self.stride = stride
        self.k = int(aim or invdyn.stride)  # env steps ahead on the plan: the target
        self.device = next(invdyn.parameters()).device
        self.waypoints: np.ndarray | None = None
        self.heading: np.ndarray | None = None  # a chosen state [E, D] to walk toward
        self.age = 0
        self.back_off = back_off  # env steps to back away from a target when stuck (0: never)
        self.recent: np.ndarray | None = None  # [STUCK_STEPS + 1, E, n] positions, NaN: unseen
        self.backing = np.zeros(0, dtype=np.int64)  # [E] back-off steps left
        self.away = np.zeros((0, 0), dtype=np.float32)  # [E, n] unit direction backed along

    def set_plans(self, plans: np.ndarray, target: np.ndarray | None = None) -> None:
        """New plans ``[E, H, D]`` (raw env units) made at the current step; ``target`` ``[E,
        D]``: the state to walk toward instead of the plans' own (None: follow the plans)."""
        self.waypoints = interpolate_plan(plans, self.stride)  # one state per env step
        self.heading = None if target is None else np.asarray(target, dtype=np.float32)
        self.age = 0

    def target(self) -> np.ndarray:
        """The state ``[E, D]`` the next action should lead to: k env steps ahead of the time
        since the plans were made (``plan[k / stride]`` right after planning)."""
        if self.waypoints is None:
            raise RuntimeError("no plan to follow yet")
        return self.waypoints[:, min(self.age + self.k, self.waypoints.shape[1] - 1)]

    def toward(self, state: np.ndarray) -> np.ndarray:
        """The model's full reach from the observed positions ``state[:, :n]`` toward the
        chosen states' (n = the model's ``target_dims``; with ``back_off``, a stuck agent's
        away from it, and this call advances the stuck watch one step): targets ``[E, n]``."""
        n, reach = self.invdyn.target_dims, self.invdyn.reach
        position = np.asarray(state[:, :n], dtype=np.float32)
        change = self.heading[:, :n] - position
        length = np.linalg.norm(change, axis=1, keepdims=True)
        direction = change / np.maximum(length, 1e-6)
        if self.back_off:
            direction = self._backed_off(position, direction)
        return position + reach * direction

    def _backed_off(self, position: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """Unit directions ``[E, n]`` toward the targets, the stuck agents' replaced by the
        opposite of their direction when they got stuck, for ``back_off`` steps."""
        if self.recent is None or self.recent.shape[1] != len(position):
            self.recent = np.full((STUCK_STEPS + 1, *position.shape), np.nan, np.float32)
            self.backing = np.zeros(len(position), dtype=np.int64)
            self.away = np.zeros_like(position)
        self.recent = np.roll(self.recent, -1, axis=0)
        self.recent[-1] = position
        moved = np.linalg.norm(position - self.recent[0], axis=1)  # NaN until seen long enough
        stuck = (moved < STUCK_DISTANCE) & (self.backing == 0)
        self.away[stuck] = -direction[stuck]
        self.backing[stuck] = self.back_off
        self.recent[:, stuck] = np.nan  # judged again only after STUCK_STEPS new steps
        now = self.backing > 0
        self.backing[now] -= 1
        return np.where(now[:, None], self.away, direction)

    @torch.no_grad()
    def act(self, state: np.ndarray) -> np.ndarray:
        """Actions ``[E, A]`` for the observed states ``[E, D]``; advances one env step."""
        target = self.target() if self.heading is None else self.toward(state)
        s = torch.as_tensor(np.asarray(state, dtype=np.float32), device=self.device)
        t = torch.as_tensor(np.asarray(target, dtype=np.float32), device=self.device)
        self.age += 1
        return self.invdyn(s, t).float().cpu().numpy()


def invdyn_controller(networks: Mapping[str, nn.Module], stride: int, velocities: str,
                      family: str, aim: int | None = None,
                      back_off: int = 0) -> InverseDynamicsController:
    """The controller of a task that acts through inverse dynamics: ``networks["invdyn"]``
    following plans with one state every ``stride`` env steps, aiming ``aim`` env steps ahead
    on them (None: the model's k), backing off ``back_off`` steps when stuck while it walks
    toward chosen states (0: never). A CTPError names what is
    missing (the network) or refused (``velocities`` other than ``plan``: the model reads the
    plan's states as they are)."""
    if velocities != "plan":
        raise CTPError(f"velocities {velocities!r}: the {family} controller reads the plan's "
                       "states as they are; expected 'plan'")
    invdyn = networks.get("invdyn")
    if invdyn is None:
        raise CTPError(f"{family} planning needs inverse dynamics in the planner file: train "
                       f"it with ctp train invdyn --stride {stride} and bundle it with "
                       "ctp bundle --invdyn INVDYN.pt")
    return InverseDynamicsController(invdyn, stride, aim, back_off)
