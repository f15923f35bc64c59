"""Batched maze scoring of candidate plans: reward on the plan minus a dynamics penalty.

The PyTorch reference and the public entry point; the Triton kernel is in
``scoring_triton.py`` (one program per candidate).
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

    reward = number of plan states from the first one within ``goal_radius`` of ``goal_xy``
    ``[N, 2]`` to the end (H - first arrival index; 0 if the plan never arrives);
    dyn = mean over t of ||(p[t+1] - p[t]) - step_dt (v[t] + v[t+1]) / 2||^2;
    score = reward - dyn_weight * dyn.
    """
    pos, vel = traj[..., :2].float(), traj[..., 2:4].float()
    horizon = traj.shape[1]
    dist = (pos - goal_xy[:, None, :].float()).norm(dim=-1)
    steps = torch.arange(horizon, device=traj.device).expand_as(dist)
    first = torch.where(dist <= goal_radius, steps, horizon).amin(dim=1)
    reward = (horizon - first).float()
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
    if traj.dim() != 3 or traj.shape[-1] < 4 or goal_xy.shape != (traj.shape[0], 2):
        raise ValueError(
            f"traj/goal_xy: expected [N, H, D >= 4] and [N, 2], got {tuple(traj.shape)} and "
            f"{tuple(goal_xy.shape)}"
        )
    if resolve_backend(backend, traj.device) == "triton":
        from ctp.kernels.scoring_triton import score_candidates_triton

        return score_candidates_triton(traj, goal_xy, goal_radius, step_dt, dyn_weight)
    return score_candidates_reference(
        traj, goal_xy, goal_radius=goal_radius, step_dt=step_dt, dyn_weight=dyn_weight
    )
