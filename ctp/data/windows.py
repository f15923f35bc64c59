"""Trajectory windows ``[H, D]`` over a task's step stream, with the task's condition.

A window holds H planned states, one every ``stride`` env steps, so it spans
``(H - 1) * stride + 1`` env steps. The task makes its inpainting condition from the window
itself (``Task.window_condition``, e.g. the start state and the window's own end as the goal;
docs/design.md section 2). D is the dataset's observation width. Windows of a continuous
dataset may cross episode boundaries; those of any other dataset never do. Windows are indexed
lazily from a few integers per segment, so memory stays at the size of the stream itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ctp.data.normalizer import Normalizer
from ctp.errors import CTPError
from ctp.tasks.base import StepStream, Task


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
        self._cum = np.concatenate([[0], np.cumsum(counts[keep])]).astype(np.int64)
        if self._cum[-1] == 0:
            raise CTPError(
                f"{data.dataset_id}: no window of {config.span} env steps (horizon "
                f"{config.horizon}, stride {config.stride}) fits in any episode"
            )
        self._offsets = np.arange(config.horizon, dtype=np.int64) * config.stride

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
        mask, value = self.task.window_condition(x, self.normalizer)
        return {"x": x, "mask": mask, "value": value}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        item = self.batch(np.array([i]))
        return {key: value[0] for key, value in item.items()}
