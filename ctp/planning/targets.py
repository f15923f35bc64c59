"""Acting toward a state instead of a plan (``PlannerConfig.target_radius``).

A one-jump plan pinned to the agent's position may start metres away from it and pass near it
only later (docs/results.md section 35). Its states are still places the data visits, so the
planner treats all K candidates as a set of reachable places: among every candidate state
within ``radius`` of the agent (the pinned starts excluded), the goal distance
(``ctp.models.distance``) picks the one with the shortest time to the goal, and the action
model walks toward it. The plans propose where the agent can go; the learned distance, which
knows the maze's routes, chooses.
"""

from __future__ import annotations

import torch
from torch import nn

from ctp.utils.errors import CTPError


def nearest_to_goal(candidates: torch.Tensor, position: torch.Tensor, goal: torch.Tensor,
                    distance: nn.Module, radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The candidate state nearest the goal among those near the agent.

    candidates ``[E, K, H, D]`` (raw env units; index 0 is each plan's pinned start, never
    chosen), position and goal ``[E, G]`` (the states' leading G dims), ``distance(states
    [N, >= G], goals [N, G]) -> [N]`` env steps -> (the chosen state's plan index ``[E]``
    long, the chosen state ``[E, D]``). States within ``radius`` of the position count;
    where none is, those within a third of the radius beyond the nearest one.
    """
    e, k, h, d = candidates.shape
    states = candidates[:, :, 1:].reshape(e, k * (h - 1), d)  # [E, K (H - 1), D]
    gap = (states[..., : position.shape[1]] - position[:, None]).norm(dim=-1)
    nearest = gap.min(dim=1, keepdim=True).values  # [E, 1]
    limit = torch.where(nearest <= radius, torch.full_like(nearest, radius),
                        nearest + radius / 3)
    env, index = (gap <= limit).nonzero(as_tuple=True)  # only these are rated
    time = torch.full_like(gap, float("inf"))
    rated = distance(states[env, index], goal[env]).to(time.dtype)
    if not torch.isfinite(rated).all():
        raise CTPError("the goal distance rated a plan state non-finite (NaN or inf); no "
                       "target is chosen")
    time[env, index] = rated
    best = time.argmin(dim=1)  # [E]
    rows = torch.arange(e, device=candidates.device)
    return torch.div(best, h - 1, rounding_mode="floor"), states[rows, best]
