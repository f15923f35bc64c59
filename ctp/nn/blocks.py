"""Building blocks of the Diffuser-style temporal U-Net. Activations are ``[B, C, L]``."""

from __future__ import annotations

import math

import torch
from torch import nn

from ctp.kernels import fused_gn_mish, resolve_backend


class SinusoidalEmbedding(nn.Module):
    """Scalar ``[B]`` -> ``[B, dim]`` sin/cos features at log-spaced frequencies 1..max_freq."""

    def __init__(self, dim: int, max_freq: float = 1000.0) -> None:
        super().__init__()
        half = dim // 2
        freqs = torch.exp(torch.linspace(0.0, math.log(max_freq), half))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = x[:, None].float() * self.freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


def embedding_mlp(dim: int, out_dim: int) -> nn.Sequential:
    """Sinusoidal features of a scalar, then Linear -> Mish -> Linear: ``[B]`` -> ``[B, out]``."""
    return nn.Sequential(
        SinusoidalEmbedding(dim),
        nn.Linear(dim, dim * 4),
        nn.Mish(),
        nn.Linear(dim * 4, out_dim),
    )


class ConvGNMish(nn.Module):
    """Conv1d -> GroupNorm -> Mish (+ a per-channel embedding), one fused call after the conv.

    forward(x ``[B, C_in, L]``, emb ``[B, C_out]`` or None) -> ``[B, C_out, L]``. The
    GroupNorm/Mish/embedding part runs through ``ctp.kernels.fused_gn_mish`` with a backend
    chosen once here; the state_dict is that of plain Conv1d + GroupNorm modules.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 5,
        groups: int = 8,
        backend: str = "auto",
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.norm = nn.GroupNorm(groups, out_channels)
        self.backend = resolve_backend(backend, device)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        y = self.conv(x)
        return fused_gn_mish(
            y, self.norm.weight, self.norm.bias, self.norm.num_groups, self.norm.eps, emb,
            backend=self.backend,
        )


class ResidualTemporalBlock(nn.Module):
    """Two ConvGNMish blocks, the embedding added after the first, plus a 1x1 residual conv.

    forward(x ``[B, C_in, L]``, emb ``[B, E]``) -> ``[B, C_out, L]``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, embed_dim: int, kernel_size: int = 5,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.block1 = ConvGNMish(in_channels, out_channels, kernel_size, backend=backend)
        self.block2 = ConvGNMish(out_channels, out_channels, kernel_size, backend=backend)
        self.emb = nn.Sequential(nn.Mish(), nn.Linear(embed_dim, out_channels))
        self.residual = (
            nn.Conv1d(in_channels, out_channels, 1)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.block1(x, self.emb(emb))
        return self.block2(h) + self.residual(x)
