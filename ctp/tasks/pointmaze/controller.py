"""Turn a plan into actions: waypoints every env step, tracked with Diffuser's controller."""

from __future__ import annotations

import numpy as np

from ctp.tasks.base import VELOCITY_SOURCES, interpolate_plan
from ctp.tasks.pointmaze.spec import ENV_DT
from ctp.utils.errors import CTPError


def implied_velocities(plans: np.ndarray, step_dt: float) -> np.ndarray:
    """Plans ``[E, H, D]`` (x, y, vx, vy first) with vx, vy replaced by the velocities their
    positions imply over ``step_dt`` per plan step: central differences
    ``(p[t+1] - p[t-1]) / (2 step_dt)`` inside, a backward difference at the last state; the
    first state (the observed start) keeps its velocity. -> ``[E, H, D]`` (a copy)."""
    out = plans.copy()
    if plans.shape[1] < 2:
        return out
    pos = plans[..., :2]
    out[:, 1:-1, 2:4] = (pos[:, 2:] - pos[:, :-2]) / (2.0 * step_dt)
    out[:, -1, 2:4] = (pos[:, -1] - pos[:, -2]) / step_dt
    return out


def tracking_action(waypoint: np.ndarray, state: np.ndarray) -> np.ndarray:
    """a = (wp_xy - xy) + (wp_v - v), clipped to [-1, 1]; ``[E, 4]`` each -> ``[E, 2]``."""
    action = waypoint[:, :2] - state[:, :2] + (waypoint[:, 2:4] - state[:, 2:4])
    return np.clip(action, -1.0, 1.0)


class PlanFollower:
    """Follows the current plans of E envs: the waypoint one env step ahead of the time
    elapsed since each plan was made (the last waypoint once a plan is used up). With
    ``velocities="positions"`` the waypoints' velocities are those the plan's positions
    imply (:func:`implied_velocities`), not the plan's own."""

    def __init__(self, stride: int, velocities: str = "plan") -> None:
        if velocities not in VELOCITY_SOURCES:
            raise CTPError(f"velocities: expected one of {', '.join(VELOCITY_SOURCES)}, got "
                           f"{velocities!r}")
        self.stride = stride
        self.velocities = velocities
        self.waypoints: np.ndarray | None = None
        self.age = 0

    def set_plans(self, plans: np.ndarray, target: np.ndarray | None = None) -> None:
        """New plans ``[E, H, D]`` (raw env units) made at the current step; a ``target`` is
        refused (this controller tracks plans)."""
        if target is not None:
            raise CTPError("the PointMaze controller tracks plans; it has no target state "
                           "to act toward (--target-radius)")
        if self.velocities == "positions":
            plans = implied_velocities(plans, ENV_DT * self.stride)
        self.waypoints = interpolate_plan(plans, self.stride)
        self.age = 0

    def act(self, state: np.ndarray) -> np.ndarray:
        """Action ``[E, 2]`` for the current states ``[E, 4]``; advances one env step."""
        if self.waypoints is None:
            raise RuntimeError("no plan to follow yet")
        index = min(self.age + 1, self.waypoints.shape[1] - 1)
        self.age += 1
        return tracking_action(self.waypoints[:, index], state)
