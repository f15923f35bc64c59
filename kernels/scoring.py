"""Batched maze scoring of candidate plans: reward on the plan minus a dynamics penalty.

(The Triton kernel is added by the kernels issue; this file holds the PyTorch reference and
the public entry point.)
"""

from __future__ import annotations

import torch

from ctp.kernels.backend import resolve_backend


def score_candidates_reference(
    traj: torch.Tensor,
    goal_xy: torch.Tensor,
    *,
    goal_radius: float,
    step_dt: float,
    dyn_weight: float,
) -> torch.Tensor:
    """Scores ``[N]`` of plans ``traj`` ``[N, H, D]`` (env units; x, y, vx, vy first).

    reward = number of plan states within ``goal_radius`` of ``goal_xy`` ``[N, 2]``;
    dyn = mean over t of ||(p[t+1] - p[t]) - step_dt (v[t] + v[t+1]) / 2||^2;
    score = reward - dyn_weight * dyn.
    """
    pos, vel = traj[..., :2].float(), traj[..., 2:4].float()
    dist = (pos - goal_xy[:, None, :].float()).norm(dim=-1)
    reward = (dist <= goal_radius).float().sum(dim=1)
    if traj.shape[1] < 2:
        return reward
    predicted = step_dt * (vel[:, 1:] + vel[:, :-1]) / 2
    dyn = ((pos[:, 1:] - pos[:, :-1] - predicted) ** 2).sum(dim=-1).mean(dim=1)
    return reward - dyn_weight * dyn


def score_candidates(
    traj: torch.Tensor,
    goal_xy: torch.Tensor,
    *,
    goal_radius: float,
    step_dt: float,
    dyn_weight: float,
    backend: str = "auto",
) -> torch.Tensor:
    """Same as :func:`score_candidates_reference`, on the chosen backend."""
    if resolve_backend(backend, traj.device) == "triton":
        raise NotImplementedError("the Triton scoring kernel is not written yet")
    return score_candidates_reference(
        traj, goal_xy, goal_radius=goal_radius, step_dt=step_dt, dyn_weight=dyn_weight
    )
