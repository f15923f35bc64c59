"""Critic: a trajectory ``[B, H, D]`` and its condition -> one scalar (a logit) per item."""

from __future__ import annotations

import torch
from torch import nn

from ctp.nn.blocks import ResidualTemporalBlock
from ctp.nn.unet import UNetConfig


class Critic(nn.Module):
    """The U-Net's down path, mean-pooled over time, then a Linear-Mish-Linear head: ``[B]``.

    Higher = more plausible as a real dataset window (trained real vs. generated).
    """

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        in_ch = cfg.obs_dim * (3 if cfg.cond_channels else 1)
        dims = [in_ch, *(d * m for m in cfg.dim_mults)]
        self.embed = nn.Parameter(torch.zeros(1, d))  # no time input: a learned constant
        self.blocks = nn.ModuleList()
        self.downs = nn.ModuleList()
        for i, (din, dout) in enumerate(zip(dims[:-1], dims[1:], strict=False)):
            self.blocks.append(ResidualTemporalBlock(din, dout, d, cfg.kernel_size, cfg.backend))
            last = i == len(dims) - 2
            self.downs.append(
                nn.Identity() if last else nn.Conv1d(dout, dout, 3, stride=2, padding=1)
            )
        self.head = nn.Sequential(nn.Linear(dims[-1], d), nn.Mish(), nn.Linear(d, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """x, mask, value: ``[B, H, D]`` (normalised) -> logits ``[B]``."""
        if self.cfg.cond_channels:
            x = torch.cat([x, mask * value, mask], dim=-1)
        h = x.transpose(1, 2)
        emb = self.embed.expand(h.shape[0], -1)
        for block, down in zip(self.blocks, self.downs, strict=False):
            h = down(block(h, emb))
        return self.head(h.mean(dim=-1)).squeeze(-1)
