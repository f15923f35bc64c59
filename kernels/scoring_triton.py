"""Triton kernel for the maze scorers: one program per candidate, tiles along the horizon.

``REWARD`` and ``DYNAMICS`` (compile-time flags) choose the terms computed: both for the fused
``reward - dyn_weight * dynamics``, or one of them for the separate scorers.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _score_kernel(T, Goal, Out, H, D, radius2, step_dt, dyn_weight, BLOCK: tl.constexpr,
                  REWARD: tl.constexpr, DYNAMICS: tl.constexpr):
    n = tl.program_id(0)
    if REWARD:
        gx = tl.load(Goal + n * 2).to(tl.float32)
        gy = tl.load(Goal + n * 2 + 1).to(tl.float32)
    base = n * H * D
    offs = tl.arange(0, BLOCK)
    first = tl.full([BLOCK], H, dtype=tl.int32)
    dyn = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, H, BLOCK):
        t = start + offs
        m = t < H
        row = T + base + t * D
        px = tl.load(row, mask=m, other=0.0).to(tl.float32)
        py = tl.load(row + 1, mask=m, other=0.0).to(tl.float32)
        if REWARD:
            d2 = (px - gx) * (px - gx) + (py - gy) * (py - gy)
            first = tl.minimum(first, tl.where(m & (d2 <= radius2), t, H))
        if DYNAMICS:
            vx = tl.load(row + 2, mask=m, other=0.0).to(tl.float32)
            vy = tl.load(row + 3, mask=m, other=0.0).to(tl.float32)
            m1 = (t + 1) < H
            nxt = row + D
            qx = tl.load(nxt, mask=m1, other=0.0).to(tl.float32)
            qy = tl.load(nxt + 1, mask=m1, other=0.0).to(tl.float32)
            wx = tl.load(nxt + 2, mask=m1, other=0.0).to(tl.float32)
            wy = tl.load(nxt + 3, mask=m1, other=0.0).to(tl.float32)
            ex = qx - px - step_dt * (vx + wx) * 0.5
            ey = qy - py - step_dt * (vy + wy) * 0.5
            dyn += tl.where(m1, ex * ex + ey * ey, 0.0)
    steps = tl.maximum(H - 1, 1)
    penalty = tl.sum(dyn, axis=0) / steps
    if REWARD:
        reward = (H - tl.min(first, axis=0)).to(tl.float32)
        tl.store(Out + n, reward - dyn_weight * penalty)
    else:
        tl.store(Out + n, penalty)


def score_candidates_triton(traj: torch.Tensor, goal_xy: torch.Tensor | None,
                            goal_radius: float, step_dt: float, dyn_weight: float,
                            reward: bool = True, dynamics: bool = True) -> torch.Tensor:
    """Launch one program per candidate; traj ``[N, H, D]``, goal_xy ``[N, 2]`` -> ``[N]``:
    ``reward - dyn_weight * dynamics``, or the reward alone (``dynamics=False``), or the
    dynamics error alone (``reward=False``; ``goal_xy`` may then be None)."""
    traj = traj.contiguous()
    goal_xy = traj if goal_xy is None else goal_xy.contiguous()  # unread without the reward
    n, h, d = traj.shape
    out = torch.empty(n, device=traj.device, dtype=torch.float32)
    block = max(16, min(256, triton.next_power_of_2(h)))
    _score_kernel[(n,)](traj, goal_xy, out, h, d, goal_radius * goal_radius, step_dt,
                        dyn_weight, BLOCK=block, REWARD=reward, DYNAMICS=dynamics)
    return out
