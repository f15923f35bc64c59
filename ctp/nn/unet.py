"""Temporal U-Net in the Diffuser design, over trajectories ``[B, H, D]``."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ctp.nn.blocks import ConvGNMish, ResidualTemporalBlock, embedding_mlp


@dataclass
class UNetConfig:
    """Shape of the U-Net. ``horizon`` must be divisible by 2 ** (len(dim_mults) - 1)."""

    obs_dim: int = 4
    horizon: int = 32
    dim: int = 32
    dim_mults: tuple[int, ...] = (1, 2, 4)
    kernel_size: int = 5
    cond_channels: bool = True  # also feed m * v and m, unscaled (docs/design.md section 2)
    s_embedding: bool = False  # CTM students embed their target time s as well
    embed_dim: int | None = None  # time-embedding width; None = dim (a narrowed student
    # keeps its teacher's, see ctp.nn.narrow)
    backend: str = "auto"

    def __post_init__(self) -> None:
        self.dim_mults = tuple(int(m) for m in self.dim_mults)
        factor = 2 ** (len(self.dim_mults) - 1)
        if self.horizon < factor or self.horizon % factor:
            raise ValueError(
                f"horizon: {self.horizon} is not divisible by the U-Net's down-sampling factor "
                f"{factor} (dim_mults {self.dim_mults})"
            )

    def to_dict(self) -> dict:
        return asdict(self)


class TemporalUNet(nn.Module):
    """forward(x ``[B, H, D]``, c_noise ``[B]``, mask, value ``[B, H, D]``, s_noise ``[B]``)
    -> ``[B, H, D]``.

    ``x`` is the (preconditioned) network input; ``c_noise`` the noise-level input; with
    ``cond_channels`` the condition ``m * v`` and ``m`` enter as extra channels; ``s_noise``
    is the CTM target time's noise input (students only).
    """

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, k, be = cfg.dim, cfg.kernel_size, cfg.backend
        e = cfg.embed_dim or d
        in_ch = cfg.obs_dim * (3 if cfg.cond_channels else 1)
        self.time_emb = embedding_mlp(e, e)
        self.s_emb = embedding_mlp(e, e) if cfg.s_embedding else None
        if self.s_emb is not None:  # starts at zero: a warm-started student equals its teacher
            nn.init.zeros_(self.s_emb[-1].weight)
            nn.init.zeros_(self.s_emb[-1].bias)
        dims = [in_ch, *(d * m for m in cfg.dim_mults)]
        pairs = list(zip(dims[:-1], dims[1:], strict=False))
        self.downs = nn.ModuleList()
        for i, (din, dout) in enumerate(pairs):
            last = i == len(pairs) - 1
            self.downs.append(nn.ModuleList([
                ResidualTemporalBlock(din, dout, e, k, be),
                ResidualTemporalBlock(dout, dout, e, k, be),
                nn.Identity() if last else nn.Conv1d(dout, dout, 3, stride=2, padding=1),
            ]))
        mid = dims[-1]
        self.mid1 = ResidualTemporalBlock(mid, mid, e, k, be)
        self.mid2 = ResidualTemporalBlock(mid, mid, e, k, be)
        self.ups = nn.ModuleList()
        for din, dout in reversed(pairs[1:]):  # one up-sampling per down-sampling
            self.ups.append(nn.ModuleList([
                ResidualTemporalBlock(dout * 2, din, e, k, be),
                ResidualTemporalBlock(din, din, e, k, be),
                nn.ConvTranspose1d(din, din, 4, stride=2, padding=1),
            ]))
        self.final_block = ConvGNMish(d * cfg.dim_mults[0], d, k, backend=be)
        self.final_conv = nn.Conv1d(d, cfg.obs_dim, 1)

    def forward(
        self,
        x: torch.Tensor,
        c_noise: torch.Tensor,
        mask: torch.Tensor,
        value: torch.Tensor,
        s_noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.cfg.cond_channels:
            x = torch.cat([x, mask * value, mask], dim=-1)
        h = x.transpose(1, 2)
        emb = self.time_emb(c_noise)
        if self.s_emb is not None:
            if s_noise is None:
                raise ValueError("s_noise: a CTM student U-Net needs the target time input")
            emb = emb + self.s_emb(s_noise)
        skips = []
        for block1, block2, down in self.downs:
            h = block2(block1(h, emb), emb)
            skips.append(h)
            h = down(h)
        h = self.mid2(self.mid1(h, emb), emb)
        for block1, block2, up in self.ups:
            h = torch.cat([h, skips.pop()], dim=1)
            h = up(block2(block1(h, emb), emb))
        h = self.final_conv(self.final_block(h))
        return h.transpose(1, 2)
