"""Value network V(tau): a clean normalised window -> the discounted return-to-go of its first
step (``ctp train value``), a plan score for tasks that are scored by return.

The target of a window that starts at stream step t is
``G_t = sum_{j=t}^{e-1} gamma^(j-t) r_j`` with e the end of t's episode (no bootstrap past
it; ``ctp.data.windows.discounted_returns_to_go``). The network is the critic's architecture
(``ctp.nn.Critic``: the U-Net's down path, mean-pooled over time, an MLP head) with the same
call ``(x, mask, value)`` on normalised ``[B, H, D]`` windows and their condition. It is trained
by MSE on the standardised target ``(G - mean) / std`` (mean and std over the training
windows); ``forward`` maps back, so V outputs raw returns in the dataset's reward units.

Checkpoint (``kind`` "value", ``ctp/training/``): the training checkpoint's fields with ``unet``
the network's U-Net config, ``edm`` None, and ``returns`` = {gamma, mean, std} of the target
(mean and std are also the ``ret_mean`` / ``ret_std`` buffers in ``model`` / ``ema``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ctp.data.windows import TrajectoryWindows
from ctp.nn import Critic, UNetConfig


class ValueNet(nn.Module):
    """``forward(x, mask, value)`` -> ``[B]`` raw discounted returns-to-go.

    ``ret_mean`` / ``ret_std`` (buffers, saved with the weights) undo the standardisation
    the head was trained on: ``V = standardized(...) * ret_std + ret_mean``.
    """

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.critic = Critic(cfg)
        self.register_buffer("ret_mean", torch.zeros(()))
        self.register_buffer("ret_std", torch.ones(()))

    def set_target_stats(self, mean: float, std: float) -> None:
        self.ret_mean.fill_(mean)
        self.ret_std.fill_(std)

    def standardized(self, x: torch.Tensor, mask: torch.Tensor, value: torch.Tensor
                     ) -> torch.Tensor:
        """The head's output ``[B]``: the return in units of ``ret_std`` about ``ret_mean``."""
        return self.critic(x, mask, value)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return self.standardized(x, mask, value) * self.ret_std + self.ret_mean


def target_stats(returns: np.ndarray) -> tuple[float, float]:
    """(mean, std) of the training targets; a constant target gets std 1."""
    mean, std = float(np.mean(returns)), float(np.std(returns))
    return mean, (std if std > 1e-8 else 1.0)


class ReturnWindows:
    """The windows of a dataset with their standardised return targets: ``batch(idx)`` is
    ``TrajectoryWindows.batch`` plus ``target`` ``[B]`` (float32, standardised)."""

    def __init__(self, windows: TrajectoryWindows, gamma: float) -> None:
        self.windows = windows
        self.normalizer = windows.normalizer
        self.returns = windows.window_returns(gamma)  # raw, float64 [len]
        self.mean, self.std = target_stats(self.returns)
        self._target = torch.from_numpy(
            ((self.returns - self.mean) / self.std).astype(np.float32))

    def __len__(self) -> int:
        return len(self.windows)

    def batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        out = self.windows.batch(idx)
        out["target"] = self._target[torch.from_numpy(np.asarray(idx, dtype=np.int64))]
        return out
