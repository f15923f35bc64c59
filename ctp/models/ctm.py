"""CTM student (Kim et al. 2023): G(x_t, t, s), the CTM + DSM losses, the gamma sampler.

G(x_t, t, s) = (s / t) x_t + (1 - s / t) g(x_t, t, s), where g is the EDM-preconditioned
network at sigma = t with an extra embedding of s (docs/design.md section 4). G(x, t, t) = x,
and G(x, 0, 0) = x. Samplers are graph-safe (no host syncs, index-only branches).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ctp.data.conditioning import apply_condition
from ctp.models.edm import (
    EDMConfig,
    EDMDenoiser,
    edm_loss,
    heun_step,
    karras_grid,
    masked_mse,
    precondition,
)


@dataclass
class CTMConfig:
    """Distillation settings: grid size, teacher steps per target, loss mix."""

    grid_size: int = 18  # N Karras levels for t, u, s
    max_teacher_steps: int = 4  # k in 1..K teacher Heun steps from t to u
    lambda_dsm: float = 0.02  # the DSM loss is ~100x the CTM loss in size (measured)
    s_zero_prob: float = 0.25  # how often the target time s is 0
    top_jump_prob: float = 0.0  # how often (t, s) is (sigma_max, 0): the 1-jump planner's map
    pair_weight: float = 1.0  # weight of the teacher-pair regression (with ``--pairs`` only)

    def to_dict(self) -> dict:
        return asdict(self)


def _per_item(v: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, 1, 1)


class CTMStudent(nn.Module):
    """forward(x_t ``[B, H, D]``, t ``[B]``, s ``[B]``, mask, value) -> G(x_t, t, s)."""

    def __init__(self, net: nn.Module, edm: EDMConfig | None = None) -> None:
        super().__init__()
        if not getattr(getattr(net, "cfg", None), "s_embedding", False):
            raise ValueError("net: a CTM student needs a U-Net built with s_embedding=True")
        self.net = net
        self.edm = edm or EDMConfig()

    @classmethod
    def from_teacher(cls, teacher: EDMDenoiser, dim: int | None = None) -> CTMStudent:
        """A student whose U-Net starts from the teacher's weights (s embedding at zero);
        with ``dim`` below the teacher's width, from a subset of its channels
        (``ctp.nn.narrow``)."""
        from ctp.nn.narrow import narrowed_unet
        from ctp.nn.unet import TemporalUNet

        cfg = copy.deepcopy(teacher.net.cfg)
        cfg.s_embedding = True
        net = TemporalUNet(cfg).to(next(teacher.parameters()).device)
        missing, unexpected = net.load_state_dict(teacher.net.state_dict(), strict=False)
        if unexpected or any(not k.startswith("s_emb.") for k in missing):
            raise ValueError("teacher and student U-Nets differ beyond the s embedding")
        if dim is not None and dim != cfg.dim:
            net = narrowed_unet(net, dim)
        return cls(net, teacher.cfg)

    def g(
        self, x: torch.Tensor, t: torch.Tensor, s: torch.Tensor, mask: torch.Tensor,
        value: torch.Tensor,
    ) -> torch.Tensor:
        """The denoiser estimate g(x, t, s) ``[B, H, D]`` (EDM preconditioning at sigma=t)."""
        c_skip, c_out, c_in, c_noise = precondition(t, self.edm.sigma_data)
        s_noise = s.clamp_min(1e-4).log() / 4.0
        f = self.net(_per_item(c_in) * x, c_noise, mask, value, s_noise)
        return _per_item(c_skip) * x + _per_item(c_out) * f

    def forward(
        self, x_t: torch.Tensor, t: torch.Tensor, s: torch.Tensor, mask: torch.Tensor,
        value: torch.Tensor,
    ) -> torch.Tensor:
        x_t = apply_condition(x_t, mask, value)
        positive = t > 0
        ratio = torch.where(positive, s / t.clamp_min(1e-8), torch.ones_like(t))
        jump = _per_item(ratio) * x_t + _per_item(1.0 - ratio) * self.g(x_t, t, s, mask, value)
        out = torch.where(_per_item(positive), jump, x_t)
        return apply_condition(out, mask, value)

    def diagonal(
        self, x: torch.Tensor, sigma: torch.Tensor, mask: torch.Tensor, value: torch.Tensor
    ) -> torch.Tensor:
        """g(x, sigma, sigma) with the condition inpainted: a denoiser D(x; sigma) for DSM."""
        x = apply_condition(x, mask, value)
        return apply_condition(self.g(x, sigma, sigma, mask, value), mask, value)


def _teacher_heun(
    teacher: EDMDenoiser, x: torch.Tensor, grid: torch.Tensor, start: torch.Tensor, k: int,
    mask: torch.Tensor, value: torch.Tensor,
) -> torch.Tensor:
    """k Heun steps along ``grid`` from index ``start`` ``[B]`` (per item; all levels > 0)."""
    for j in range(k):
        x = heun_step(teacher, x, grid[start + j], grid[start + j + 1], mask, value)
    return x


def ctm_loss(
    student: CTMStudent,
    ema_student: CTMStudent,
    teacher: EDMDenoiser,
    x0: torch.Tensor,
    mask: torch.Tensor,
    value: torch.Tensor,
    cfg: CTMConfig | None = None,
    generator: torch.Generator | None = None,
    k: int | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """CTM + lambda * DSM loss on clean windows ``x0`` ``[B, H, D]``.

    On a Karras grid of N levels pick t > u >= s (u is k teacher Heun steps below t, k
    random in 1..K; s is 0 with probability ``s_zero_prob``; with probability
    ``top_jump_prob`` the item is the one-jump map t = sigma_max, s = 0). Student:
    G_sg(G_theta(x_t, t, s), s, 0); target: G_sg(G_sg(Heun(x_t, t -> u), u, s), s, 0), with
    G_sg the EMA student. Gradients reach theta through G_theta only (the EMA and teacher
    weights take none). ``k`` may be fixed by the caller (one CUDA graph per k); otherwise
    it is drawn here. Returns (loss, {"ctm", "dsm"} detached parts).
    """
    cfg = cfg or CTMConfig()
    n, dev, batch = cfg.grid_size, x0.device, x0.shape[0]
    grid = karras_grid(n, student.edm, dev)  # [N + 1], grid[N] = 0
    if k is None:
        k = int(torch.randint(1, cfg.max_teacher_steps + 1, (1,), generator=generator))
    k = min(k, n - 1)
    i_t = torch.randint(0, n - k, (batch,), device=dev, generator=generator)
    top = torch.zeros(batch, dtype=torch.bool, device=dev)
    if cfg.top_jump_prob > 0:
        top = torch.rand(batch, device=dev, generator=generator) < cfg.top_jump_prob
        i_t = torch.where(top, torch.zeros_like(i_t), i_t)
    i_u = i_t + k
    # s index uniform in [i_u, N - 1], or N (s = 0) with probability s_zero_prob.
    span = (n - i_u).float()
    i_s = i_u + (torch.rand(batch, device=dev, generator=generator) * span).long()
    zero = torch.rand(batch, device=dev, generator=generator) < cfg.s_zero_prob
    i_s = torch.where(zero | top, torch.full_like(i_s, n), i_s)
    t, u, s = grid[i_t], grid[i_u], grid[i_s]
    zeros = torch.zeros_like(t)

    noise = torch.randn(x0.shape, device=dev, generator=generator)
    x_t = apply_condition(x0 + _per_item(t) * noise, mask, value)
    for p in ema_student.parameters():
        p.requires_grad_(False)
    for p in teacher.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        x_u = _teacher_heun(teacher, x_t, grid, i_t, k, mask, value)
        target = ema_student(ema_student(x_u, u, s, mask, value), s, zeros, mask, value)
    # The outer map uses EMA weights but is differentiated through its input.
    estimate = ema_student(student(x_t, t, s, mask, value), s, zeros, mask, value)
    ctm = masked_mse(estimate, target, mask).mean()
    dsm = edm_loss(student.diagonal, x0, mask, value, student.edm, generator)
    loss = ctm + cfg.lambda_dsm * dsm
    return loss, {"ctm": ctm.detach(), "dsm": dsm.detach()}


def one_jump_loss(
    student: CTMStudent, noise: torch.Tensor, mask: torch.Tensor, value: torch.Tensor,
    target: torch.Tensor,
) -> torch.Tensor:
    """Squared distance (generated entries) between the one-jump map
    G(sigma_max z, sigma_max, 0) and the teacher's Heun sample ``target`` from the same unit
    noise ``z`` ``[B, H, D]`` (``ctp.training.teacher_pairs``): a scalar."""
    t = noise.new_full((noise.shape[0],), student.edm.sigma_max)
    jump = student(noise * student.edm.sigma_max, t, torch.zeros_like(t), mask, value)
    return masked_mse(jump, target, mask).mean()


def jump_times(
    jumps: int, cfg: EDMConfig, grid_size: int = CTMConfig.grid_size
) -> torch.Tensor:
    """``[jumps + 1]`` times sigma_max = t_0 > ... > t_jumps = 0, evenly spaced along the
    training Karras grid, so every jump lands on a level the student was trained on."""
    grid = karras_grid(grid_size, cfg)
    idx = torch.linspace(0, grid_size - 1, jumps + 1).round().long()[:-1]
    return torch.cat([grid[idx], grid.new_zeros(1)])


def ctm_sample(
    student: CTMStudent,
    noise: torch.Tensor,
    mask: torch.Tensor,
    value: torch.Tensor,
    jumps: int = 1,
    gamma: float = 0.0,
    generator: torch.Generator | None = None,
    grid_size: int = CTMConfig.grid_size,
) -> torch.Tensor:
    """The gamma sampler from ``noise`` ``[B, H, D]`` ~ N(0, sigma_max^2); NFE = ``jumps``.

    Each jump maps x at t_n with G to sqrt(1 - gamma^2) t_{n+1}, then adds gamma t_{n+1}
    fresh noise; gamma = 0 is deterministic given ``noise``.
    """
    if jumps < 1:
        raise ValueError(f"jumps: expected >= 1, got {jumps}")
    times = jump_times(jumps, student.edm, grid_size).to(noise.device)
    ones = noise.new_ones(noise.shape[0])
    x = apply_condition(noise, mask, value)
    shrink = (1.0 - gamma**2) ** 0.5
    for n in range(jumps):
        t, t_next = times[n] * ones, times[n + 1] * ones
        x = student(x, t, shrink * t_next, mask, value)
        if gamma > 0 and n < jumps - 1:
            fresh = torch.randn(x.shape, device=x.device, generator=generator)
            x = apply_condition(x + gamma * _per_item(t_next) * fresh, mask, value)
    return x
