"""Goal-conditioned trajectory windows ``[H, D]`` over a PointMaze step stream.

A window holds H planned states, one every ``stride`` env steps, so it spans
``(H - 1) * stride + 1`` env steps. Its own last position is its goal (goal-conditioned
relabelling): the condition pins the start state at index 0 and the goal position with zero
velocity at index H - 1 (docs/design.md section 2). D is the dataset's observation width and
the goal position its first G dims, G the width of the dataset's goals (mazes: D 4, G 2).
Windows of a continuous dataset may cross episode boundaries; those of any other dataset never
do. Windows are indexed lazily from a few integers per segment, so memory stays at the size of
the stream itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ctp.conditioning import start_goal_condition
from ctp.data.normalizer import Normalizer
from ctp.errors import CTPError
from ctp.tasks.pointmaze.loader import MazeData


@dataclass
class WindowConfig:
    """Planned states per window and env steps between them."""

    horizon: int
    stride: int = 1

    @property
    def span(self) -> int:
        """Env steps a window covers."""
        return (self.horizon - 1) * self.stride + 1


class TrajectoryWindows(Dataset):
    """Every valid window of a dataset; item -> dict(x, mask, value), each float32 ``[H, D]``
    with D = ``obs_dim``, the dataset's observation width.

    ``x`` is the normalised window, ``mask``/``value`` its start/goal condition (normalised).
    """

    def __init__(
        self, data: MazeData, config: WindowConfig, normalizer: Normalizer | None = None
    ) -> None:
        if config.horizon < 2 or config.stride < 1:
            raise CTPError(
                f"windows: expected horizon >= 2 and stride >= 1, got horizon={config.horizon}, "
                f"stride={config.stride}"
            )
        self.data = data
        self.config = config
        self.obs_dim = int(data.observations.shape[1])
        self.goal_dims = int(data.goals.shape[1])  # the goal position: the first G dims
        if not 1 <= self.goal_dims <= self.obs_dim:
            raise CTPError(f"{data.dataset_id}: goals have {self.goal_dims} dims, expected "
                           f"1 to {self.obs_dim} (the observation's)")
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
        self._cum = np.concatenate([[0], np.cumsum(counts[keep])]).astype(np.int64)
        if self._cum[-1] == 0:
            raise CTPError(
                f"{data.dataset_id}: no window of {config.span} env steps (horizon "
                f"{config.horizon}, stride {config.stride}) fits in any episode"
            )
        self._offsets = np.arange(config.horizon, dtype=np.int64) * config.stride
        self._zero_rest = (self.normalizer.normalize(np.zeros(self.obs_dim))[self.goal_dims:]
                           .astype(np.float32))  # the goal state's dims past its position

    def __len__(self) -> int:
        return int(self._cum[-1])

    def start_indices(self, idx: np.ndarray) -> np.ndarray:
        """Stream start indices of windows ``idx`` (int ``[B]``), vectorised."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError("window index out of range")
        seg = np.searchsorted(self._cum, idx, side="right") - 1
        return self._seg_starts[seg] + (idx - self._cum[seg])

    def batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        """Windows ``idx`` (int ``[B]``) at once: dict(x, mask, value), each ``[B, H, D]``."""
        rows = self.start_indices(idx)[:, None] + self._offsets[None, :]
        x = torch.from_numpy(
            self.normalizer.normalize(self.data.observations[rows]).astype(np.float32)
        )
        goal = x[:, -1].clone()
        goal[:, self.goal_dims:] = torch.from_numpy(self._zero_rest)
        mask, value = start_goal_condition(x[:, 0], goal, self.config.horizon, self.obs_dim)
        return {"x": x, "mask": mask, "value": value}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        item = self.batch(np.array([i]))
        return {key: value[0] for key, value in item.items()}
