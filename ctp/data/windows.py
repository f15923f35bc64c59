"""Trajectory windows ``[H, D]`` over a task's step stream, with the task's condition.

A window holds H planned states, one every ``stride`` env steps, so it spans
``(H - 1) * stride + 1`` env steps. The task makes its inpainting condition from the window
itself (``Task.window_condition``, e.g. the start state and the window's own end as the goal;
docs/design.md section 2). D is the dataset's observation width. Windows of a continuous
dataset may cross episode boundaries; those of any other dataset never do. Windows are indexed
lazily from a few integers per segment, so memory stays at the size of the stream itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ctp.data.normalizer import Normalizer
from ctp.tasks.base import StepStream, Task
from ctp.utils.errors import CTPError


def discounted_returns_to_go(rewards: np.ndarray, episode_starts: np.ndarray,
                             gamma: float) -> np.ndarray:
    """float64 ``[N]``: ``G_t = sum_{j=t}^{e-1} gamma^(j-t) r_j`` for each step t of a
    stream, with e the end of t's episode (episodes ``[start_i, start_{i+1})``, the last one
    ending at N; steps before the first start form one more). No bootstrapping past an
    episode's end, truncated or terminated alike.

    Vectorised and O(N): suffix sums over the whole stream in blocks short enough that
    ``gamma ** block`` stays far from underflow, one carry per block, then each step's
    episode cut off: ``G_t = S_t - gamma^(e-t) S_e`` with S the stream's return-to-go.
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma: expected a number in [0, 1], got {gamma}")
    r = np.asarray(rewards, dtype=np.float64).reshape(-1)
    n = r.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    if gamma == 0.0:
        return r.copy()
    # Block length L with gamma**L >= 1e-200 (exponents inside a block never underflow).
    block = n if gamma == 1.0 else max(1, min(n, int(-200 * math.log(10) / math.log(gamma))))
    blocks = -(-n // block)
    padded = np.zeros(blocks * block)
    padded[:n] = r
    padded = padded.reshape(blocks, block)
    powers = gamma ** np.arange(block, dtype=np.float64)  # gamma^i, i = position in block
    local = np.cumsum((padded * powers)[:, ::-1], axis=1)[:, ::-1] / powers  # in-block RTG
    carry = np.zeros(blocks + 1)  # the stream RTG at each block's start (and 0 past the end)
    gamma_block = gamma ** block
    for b in range(blocks - 1, -1, -1):  # N / L iterations: a handful for gamma near 1
        carry[b] = local[b, 0] + gamma_block * carry[b + 1]
    tail = gamma ** (block - np.arange(block, dtype=np.float64))  # gamma^(L - i)
    stream = np.append((local + tail * carry[1:, None]).reshape(-1)[:n], 0.0)
    cuts = np.unique(np.concatenate([[0], np.asarray(episode_starts, np.int64), [n]]))
    cuts = cuts[(cuts >= 0) & (cuts <= n)]
    ends = np.repeat(cuts[1:], np.diff(cuts))  # each step's episode end e
    steps = np.arange(n)
    return stream[:n] - gamma ** (ends - steps).astype(np.float64) * stream[ends]


@dataclass
class WindowConfig:
    """Planned states per window and env steps between them. With ``hindsight_goals`` = p > 0
    (goal tasks), a share p of windows take as their goal a state drawn uniformly from the
    rest of their episode after the window's first step, not the window's own last state:
    the window's states from the goal's step on are held at it (the agent arrives and stays),
    and a goal after the window's end is pinned at its last index (the window is the data's
    way there, so far)."""

    horizon: int
    stride: int = 1
    hindsight_goals: float = 0.0

    @property
    def span(self) -> int:
        """Env steps a window covers."""
        return (self.horizon - 1) * self.stride + 1


class TrajectoryWindows(Dataset):
    """Every valid window of a dataset; item -> dict(x, mask, value), each float32 ``[H, D]``
    with D = ``obs_dim``, the dataset's observation width.

    ``x`` is the normalised window, ``mask``/``value`` the task's condition (normalised).
    """

    def __init__(
        self, task: Task, data: StepStream, config: WindowConfig,
        normalizer: Normalizer | None = None,
    ) -> None:
        if config.horizon < 2 or config.stride < 1:
            raise CTPError(
                f"windows: expected horizon >= 2 and stride >= 1, got horizon={config.horizon}, "
                f"stride={config.stride}"
            )
        self.task = task
        self.data = data
        self.config = config
        self.obs_dim = int(data.observations.shape[1])
        self.normalizer = normalizer or Normalizer.fit(data.observations)
        if self.normalizer.dim != self.obs_dim:
            raise CTPError(f"{data.dataset_id}: {self.obs_dim}-dim observations, but the "
                           f"normaliser is {self.normalizer.dim}-dim (made for other data)")
        bounds = (
            np.array([[0, data.num_steps]], dtype=np.int64)
            if data.continuous
            else data.episode_bounds()
        )
        counts = bounds[:, 1] - bounds[:, 0] - config.span + 1
        keep = counts > 0
        self._seg_starts = bounds[keep, 0]
        self._seg_ends = bounds[keep, 1]
        self._cum = np.concatenate([[0], np.cumsum(counts[keep])]).astype(np.int64)
        if self._cum[-1] == 0:
            raise CTPError(
                f"{data.dataset_id}: no window of {config.span} env steps (horizon "
                f"{config.horizon}, stride {config.stride}) fits in any episode"
            )
        self._offsets = np.arange(config.horizon, dtype=np.int64) * config.stride
        if not 0.0 <= config.hindsight_goals <= 1.0:
            raise CTPError(f"--hindsight-goals: expected a share in [0, 1], got "
                           f"{config.hindsight_goals}")
        if config.hindsight_goals and task.goal_dims == 0:
            raise CTPError(f"--hindsight-goals: {data.dataset_id}'s task ({task.name}) has no "
                           "goals; expected 0")

    def __len__(self) -> int:
        return int(self._cum[-1])

    def _placed(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(segment index, stream start index) of windows ``idx`` (int ``[B]`` each)."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError("window index out of range")
        seg = np.searchsorted(self._cum, idx, side="right") - 1
        return seg, self._seg_starts[seg] + (idx - self._cum[seg])

    def start_indices(self, idx: np.ndarray) -> np.ndarray:
        """Stream start indices of windows ``idx`` (int ``[B]``), vectorised."""
        return self._placed(idx)[1]

    def goal_rows(self, idx: np.ndarray) -> np.ndarray:
        """Stream index ``[B]`` of each window's goal: its last state, or for a share
        ``hindsight_goals`` of them one drawn uniformly from after the window's first step to
        its episode's end. The draw is seeded by ``idx`` itself, so a batch is the same
        however often it is made (a resumed run sees the same goals)."""
        idx = np.asarray(idx, dtype=np.int64)
        seg, start = self._placed(idx)
        last = start + self._offsets[-1]
        if not self.config.hindsight_goals or idx.size == 0:
            return last
        rng = np.random.default_rng(idx)
        later = self._seg_ends[seg] - 1 - start  # steps after the first, >= 1
        drawn = start + 1 + np.floor(rng.random(idx.size) * later).astype(np.int64)
        return np.where(rng.random(idx.size) < self.config.hindsight_goals, drawn, last)

    def window_returns(self, gamma: float) -> np.ndarray:
        """float64 ``[len(self)]``: the discounted return-to-go of each window's first step
        to the end of that step's episode (``discounted_returns_to_go``), which for a
        continuous dataset may lie before the window's end."""
        rtg = discounted_returns_to_go(self.data.rewards, self.data.episode_starts, gamma)
        return rtg[self.start_indices(np.arange(len(self)))]

    def batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        """Windows ``idx`` (int ``[B]``) at once: dict(x, mask, value), each ``[B, H, D]``."""
        rows = self.start_indices(idx)[:, None] + self._offsets[None, :]
        goal = self.goal_rows(idx) if self.config.hindsight_goals else None
        if goal is not None:  # held at the goal from its step on
            rows = np.minimum(rows, goal[:, None])
        x = torch.from_numpy(
            self.normalizer.normalize(self.data.observations[rows]).astype(np.float32)
        )
        if goal is not None:  # a goal after the window: its goal dims, pinned by the task
            goals = self.normalizer.normalize(self.data.observations[goal])
            g = self.task.goal_dims
            x[:, -1, :g] = torch.from_numpy(goals[:, :g].astype(np.float32))
        mask, value = self.task.window_condition(x, self.normalizer)
        return {"x": x, "mask": mask, "value": value}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        item = self.batch(np.array([i]))
        return {key: value[0] for key, value in item.items()}
