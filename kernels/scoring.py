"""Batched maze scoring of candidate plans: the reward on the plan and the dynamics error.

PointMaze's two scorers (``ctp.tasks.pointmaze``): :func:`goal_reward` and
:func:`dynamics_error`, and :func:`score_candidates`, both in one pass
(``reward - dyn_weight * dynamics``). PyTorch references and the public entry points; the
Triton kernel is in ``scoring_triton.py`` (one program per candidate).
"""

from __future__ import annotations

import torch

from ctp.kernels.backend import resolve_backend


def goal_reward_reference(traj: torch.Tensor, goal_xy: torch.Tensor, *,
                          goal_radius: float) -> torch.Tensor:
    """Rewards ``[N]`` of plans ``traj`` ``[N, H, D]`` (env units; x, y first): the number of
    plan states from the first one within ``goal_radius`` of ``goal_xy`` ``[N, 2]`` to the end
    (H - first arrival index; 0 if the plan never arrives)."""
    pos = traj[..., :2].float()
    horizon = traj.shape[1]
    dist = (pos - goal_xy[:, None, :].float()).norm(dim=-1)
    steps = torch.arange(horizon, device=traj.device).expand_as(dist)
    first = torch.where(dist <= goal_radius, steps, horizon).amin(dim=1)
    return (horizon - first).float()


def dynamics_error_reference(traj: torch.Tensor, *, step_dt: float) -> torch.Tensor:
    """Dynamics errors ``[N]`` of plans ``traj`` ``[N, H, D]`` (x, y, vx, vy first): the mean
    over t of ||(p[t+1] - p[t]) - step_dt (v[t] + v[t+1]) / 2||^2 (0 for H < 2)."""
    if traj.shape[1] < 2:
        return traj.new_zeros(traj.shape[0], dtype=torch.float32)
    pos, vel = traj[..., :2].float(), traj[..., 2:4].float()
    predicted = step_dt * (vel[:, 1:] + vel[:, :-1]) / 2
    return ((pos[:, 1:] - pos[:, :-1] - predicted) ** 2).sum(dim=-1).mean(dim=1)


def score_candidates_reference(
    traj: torch.Tensor,
    goal_xy: torch.Tensor,
    *,
    goal_radius: float,
    step_dt: float,
    dyn_weight: float,
) -> torch.Tensor:
    """Scores ``[N]`` of plans ``traj`` ``[N, H, D]`` (env units; x, y, vx, vy first):
    ``goal_reward - dyn_weight * dynamics_error`` (see the two references)."""
    reward = goal_reward_reference(traj, goal_xy, goal_radius=goal_radius)
    if traj.shape[1] < 2:
        return reward
    return reward - dyn_weight * dynamics_error_reference(traj, step_dt=step_dt)


def _check(traj: torch.Tensor, goal_xy: torch.Tensor | None, min_dim: int = 4) -> None:
    """Plans ``[N, H, D >= min_dim]`` (the reward alone reads x, y: 2; dynamics 4) and goals
    ``[N, 2]``."""
    if traj.dim() != 3 or traj.shape[-1] < min_dim or (
            goal_xy is not None and goal_xy.shape != (traj.shape[0], 2)):
        goal = "" if goal_xy is None else f" and {tuple(goal_xy.shape)}"
        raise ValueError(f"traj/goal_xy: expected [N, H, D >= {min_dim}] and [N, 2], got "
                         f"{tuple(traj.shape)}{goal}")


def goal_reward(traj: torch.Tensor, goal_xy: torch.Tensor, *, goal_radius: float,
                backend: str = "auto") -> torch.Tensor:
    """Same as :func:`goal_reward_reference`, on the chosen backend."""
    _check(traj, goal_xy, min_dim=2)
    if resolve_backend(backend, traj.device) == "triton":
        from ctp.kernels.scoring_triton import score_candidates_triton

        return score_candidates_triton(traj, goal_xy, goal_radius, 0.0, 0.0, dynamics=False)
    return goal_reward_reference(traj, goal_xy, goal_radius=goal_radius)


def dynamics_error(traj: torch.Tensor, *, step_dt: float, backend: str = "auto"
                   ) -> torch.Tensor:
    """Same as :func:`dynamics_error_reference`, on the chosen backend."""
    _check(traj, None)
    if resolve_backend(backend, traj.device) == "triton":
        from ctp.kernels.scoring_triton import score_candidates_triton

        return score_candidates_triton(traj, None, 0.0, step_dt, 0.0, reward=False)
    return dynamics_error_reference(traj, step_dt=step_dt)


def score_candidates(
    traj: torch.Tensor,
    goal_xy: torch.Tensor,
    *,
    goal_radius: float,
    step_dt: float,
    dyn_weight: float,
    backend: str = "auto",
) -> torch.Tensor:
    """Same as :func:`score_candidates_reference`, on the chosen backend (one kernel)."""
    _check(traj, goal_xy)
    if resolve_backend(backend, traj.device) == "triton":
        from ctp.kernels.scoring_triton import score_candidates_triton

        return score_candidates_triton(traj, goal_xy, goal_radius, step_dt, dyn_weight)
    return score_candidates_reference(
        traj, goal_xy, goal_radius=goal_radius, step_dt=step_dt, dyn_weight=dyn_weight
    )
