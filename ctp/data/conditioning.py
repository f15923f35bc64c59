"""Inpainting conditions: one float mask/value mechanism for training and sampling.

A condition is a pair ``(mask, value)`` of the trajectory's shape ``[B, H, D]``: entries with
mask 1 are pinned to ``value``, entries with mask 0 are generated. Float masks (never boolean
indexing) keep every sampler step free of host syncs, so it can be captured in a CUDA graph.
"""

from __future__ import annotations

import torch


def apply_condition(x: torch.Tensor, mask: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Pin the conditioned entries: ``x * (1 - mask) + value * mask``, all ``[B, H, D]``."""
    return x * (1.0 - mask) + value * mask


def start_goal_condition(
    start: torch.Tensor, goal: torch.Tensor, horizon: int, goal_dims: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask and values pinning a start state at index 0 and a goal at index ``horizon - 1``.

    start: ``[B, D]`` full (normalised) state at index 0.
    goal: ``[B, D]`` (normalised) goal state; its first ``goal_dims`` entries are pinned at
    the last index (e.g. a goal position, or with ``goal_dims == D`` the whole state).
    Returns ``(mask, value)``, both ``[B, horizon, D]`` float tensors on start's device.
    """
    if start.shape != goal.shape or start.dim() != 2:
        raise ValueError(
            f"start/goal: expected two [B, D] tensors of one shape, got {tuple(start.shape)} "
            f"and {tuple(goal.shape)}"
        )
    batch, dim = start.shape
    mask = start.new_zeros(batch, horizon, dim)
    value = start.new_zeros(batch, horizon, dim)
    mask[:, 0, :] = 1.0
    value[:, 0, :] = start
    mask[:, horizon - 1, :goal_dims] = 1.0
    value[:, horizon - 1, :goal_dims] = goal[:, :goal_dims]
    return mask, value
