"""Replay the planning step (sampling + scoring) from a CUDA graph.

One graph per (E, K, H, n, dtype): static input buffers, a warm-up on a side stream, then
copy in / replay / clone out. Noise comes from the default CUDA generator, which graphs
advance on every replay. Runs only on CUDA (not exercised on the CPU-only dev machine).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class GraphedPlanStep:
    """Callable like ``plan_step(state [E, D], goal_xy [E, G])`` for the E, D and G of the
    example inputs ``state`` and ``goal_xy`` it is captured with (copied to static buffers)."""

    def __init__(self, step: Callable[..., tuple[torch.Tensor, torch.Tensor]],
                 state: torch.Tensor, goal_xy: torch.Tensor, warmup: int = 3) -> None:
        self.num_envs = state.shape[0]
        self.static_state = state.clone()
        self.static_goal = goal_xy.clone()
        device = state.device
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(warmup):
                step(self.static_state, self.static_goal)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.no_grad():
            self.static_out = step(self.static_state, self.static_goal)

    def __call__(self, state: torch.Tensor, goal_xy: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if state.shape[0] != self.num_envs:
            raise ValueError(f"state: captured for {self.num_envs} envs, got {state.shape[0]}")
        self.static_state.copy_(state)
        self.static_goal.copy_(goal_xy)
        self.graph.replay()
        return tuple(t.clone() for t in self.static_out)
