"""Inverse dynamics ``a_t = f(s_t, s_{t+k})`` (``ctp train invdyn``): the planner's action head.

A plan holds one state every ``stride`` = k env steps, so the planner asks for the action
that leads from the observed state s_t towards the plan's next state s_{t+k}; the model is
trained on exactly those pairs of the dataset, ``(s_t, s_{t+k}) -> a_t`` with k the run's
``--stride`` (1: consecutive steps). Both states lie in one episode (in the one run of a
continuous dataset). States and actions are raw env units. The MLP (``ctp.nn.mlp.MLP``, the
behaviour-cloning network) reads ``[s_t, s_{t+k} - s_t]``: the change, standardised on its own,
is what the action explains (from ``[s_t, s_{t+k}]`` the net must learn to cancel two large
inputs against each other). With ``target_dims`` = n > 0 it reads only the change of the
leading n dims (AntMaze: the x, y the ant should move by, not the body state of a plan k steps
ahead, which the plan cannot predict), and clips its length to ``reach``, the 90th percentile
over the training pairs: a target further than the data moves in k steps 9 times in 10 is
read as "go that way at the data's pace", not extrapolated. It standardises its input with the
training pairs' mean and std and squashes its output with tanh (actions in [-1, 1]).

Checkpoint (``kind`` "invdyn", ``ctp/training/``): the training checkpoint's fields with ``unet``
and ``edm`` None and ``invdyn`` = {obs_dim, act_dim, hidden, stride, target_dims, reach};
``stride`` (also the top-level one) is k; ``normalizer`` is the dataset's (the model does not
use it: raw states).
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


def invdyn_pairs(data: StepStream, stride: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(``[M, 2 D]`` = s_t, s_{t+k}; ``[M, A]`` = a_t) for every step t whose state k = ``stride``
    steps later lies in t's episode (anywhere in the stream of a continuous dataset)."""
    if data.actions is None:
        raise CTPError(f"{data.dataset_id}: inverse dynamics needs actions, and the dataset "
                       "holds none")
    if stride < 1:
        raise CTPError(f"--stride: expected >= 1, got {stride}")
    n = data.num_steps
    if data.continuous:
        ends = np.full(n, n, dtype=np.int64)
    else:
        cuts = np.unique(np.concatenate([[0], data.episode_starts.astype(np.int64), [n]]))
        ends = np.repeat(cuts[1:], np.diff(cuts))  # each step's episode end (exclusive)
    idx = np.flatnonzero(np.arange(n) + stride < ends)
    pairs = np.concatenate([data.observations[idx], data.observations[idx + stride]], axis=1)
    return (torch.from_numpy(np.ascontiguousarray(pairs, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(data.actions[idx], dtype=np.float32)))


def check_reach(k: int, stride: int, horizon: int, target_dims: int = 0) -> None:
    """Inverse dynamics reaching k env steps ahead must land within the plan's span
    ``(horizon - 1) * stride`` and, reading whole states (``target_dims`` 0), on a plan state: k
    a multiple of the plans' stride. A model reading only the leading dims (positions) may aim
    between plan states, where the controller interpolates them (AntMaze: k = 5 on a stride
    of 20)."""
    span = (horizon - 1) * stride
    on_state = target_dims > 0 or (isinstance(k, int) and k % stride == 0)
    if not (isinstance(k, int) and 1 <= k <= span and on_state):
        what = ("from 1" if target_dims > 0
                else f"a multiple of the plans' stride {stride}")
        raise CTPError(f"inverse dynamics k (its stride): expected {what} up to the plans' "
                       f"span {span} env steps, got {k!r}")


def check_width(obs_dim: int, target_dims: int, plan_dim: int) -> None:
    """Inverse dynamics reading ``obs_dim``-dim observed states follows plans of ``plan_dim``
    dims: the same width, or plans of the state's leading dims (AntMaze x, y plans) when it
    reads no more of its target than the plans hold (``target_dims`` 1..``plan_dim``)."""
    if obs_dim == plan_dim or (obs_dim > plan_dim and 0 < target_dims <= plan_dim):
        return
    raise CTPError(f"reads {obs_dim}-dim states and the leading {target_dims or obs_dim} dims "
                   f"of its target, the plans hold {plan_dim}-dim states; expected the plans' "
                   "width, or a wider state with a target of at most the plans' width")


def check_aim(aim: int, stride: int, horizon: int, target_dims: int | None) -> None:
    """A planner's ``--aim`` (env steps ahead on the plan its inverse dynamics heads for) needs
    inverse dynamics (``target_dims`` None: the planner has none) and must land within the
    plans as ``check_reach`` says; CTPErrors name ``--aim``."""
    if target_dims is None:
        raise CTPError("--aim: sets how far ahead the inverse dynamics aims; the planner has "
                       "none (bundle one with --invdyn)")
    try:
        check_reach(aim, stride, horizon, target_dims)
    except CTPError as exc:
        raise CTPError(f"--aim: {exc}") from None


class InverseDynamics(nn.Module):
    """``forward(state [B, D], target [B, D])`` -> actions ``[B, A]``, raw env units: the
    action at ``state`` towards ``target``, ``stride`` env steps later; ``target_dims`` = n > 0
    reads only the target's leading n dims (0: all D), their change clipped to length
    ``reach`` (None: not clipped; set from the training pairs)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (256, 256),
                 stride: int = 1, target_dims: int = 0, reach: float | None = None) -> None:
        super().__init__()
        if not 0 <= target_dims <= obs_dim:
            raise CTPError(f"--target-dims: expected 0 (all) up to the state width {obs_dim}, "
                           f"got {target_dims}")
        self.obs_dim, self.act_dim, self.stride = obs_dim, act_dim, stride
        self.target_dims, self.reach = target_dims, reach
        self.hidden = tuple(hidden)
        self.mlp = MLP(obs_dim + (target_dims or obs_dim), act_dim, self.hidden)

    def config(self) -> dict[str, Any]:
        return {"obs_dim": self.obs_dim, "act_dim": self.act_dim, "hidden": list(self.hidden),
                "stride": self.stride, "target_dims": self.target_dims, "reach": self.reach}

    def features(self, state: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The MLP's input ``[..., D + n]``: the state ``[..., D]`` and the change of the
        target's leading n = ``target_dims`` (or all D) dims, at most ``reach`` long; the
        target ``[..., >= n]`` may hold only those (plans of a state's leading dims)."""
        n = self.target_dims or self.obs_dim
        change = target[..., :n] - state[..., :n]
        if self.reach is not None:
            length = change.norm(dim=-1, keepdim=True)
            change = change * (self.reach / length.clamp_min(1e-6)).clamp(max=1.0)
        return torch.cat([state, change], dim=-1)

    def set_input_stats(self, pairs: torch.Tensor) -> None:
        """Standardise with the training pairs ``[N, 2 D]`` = (s_t, s_{t+k}); a model reading
        the leading n dims first takes its ``reach`` from them (90th percentile length)."""
        d = self.obs_dim
        if self.target_dims:
            lengths = (pairs[:, d:d + self.target_dims] - pairs[:, :self.target_dims]).norm(dim=-1)
            every = max(1, len(lengths) // 1_000_000)  # torch.quantile takes up to 2^24
            self.reach = float(torch.quantile(lengths[::every], 0.9))
        self.mlp.set_input_stats(self.features(pairs[:, :d], pairs[:, d:]))

    def forward(self, state: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.features(state, target))


class TransitionPairs:
    """A dataset's ``invdyn_pairs``: ``batch(idx)`` -> dict(inputs ``[B, 2D]``, actions
    ``[B, A]``)."""

    def __init__(self, data: StepStream, stride: int, normalizer: Normalizer | None = None
                 ) -> None:
        self.inputs, self.actions = invdyn_pairs(data, stride)
        if len(self.inputs) == 0:
            raise CTPError(f"{data.dataset_id}: no pair of states {stride} steps apart "
                           f"(--stride {stride}) fits in any episode")
        # Kept with the checkpoint like every run's (the MLP itself reads raw states).
        self.normalizer = normalizer or Normalizer.fit(data.observations)
        self.obs_dim = int(data.observations.shape[1])
        self.act_dim = int(self.actions.shape[1])

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        rows = torch.from_numpy(np.asarray(idx, dtype=np.int64))
        return {"inputs": self.inputs[rows], "actions": self.actions[rows]}
