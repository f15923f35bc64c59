"""EDM teacher (Karras et al. 2022): preconditioning, loss, Karras grid, Heun sampler.

Trajectories are ``[B, H, D]``; conditions are float ``(mask, value)`` pairs of that shape
(``ctp.data.conditioning``). Every sampler is graph-safe: no host syncs, no boolean indexing, and
branches depend on the Python loop index only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ctp.data.conditioning import apply_condition


@dataclass
class EDMConfig:
    """EDM's constants (docs/design.md section 3)."""

    sigma_min: float = 0.002
    sigma_max: float = 80.0
    sigma_data: float = 0.5
    rho: float = 7.0
    p_mean: float = -1.2
    p_std: float = 1.2

    def to_dict(self) -> dict:
        return asdict(self)


def precondition(sigma: torch.Tensor, sigma_data: float) -> tuple[torch.Tensor, ...]:
    """(c_skip, c_out, c_in, c_noise) at noise levels ``sigma`` ``[B]`` (each ``[B]``)."""
    sd2 = sigma_data**2
    c_skip = sd2 / (sigma**2 + sd2)
    c_out = sigma * sigma_data / (sigma**2 + sd2).sqrt()
    c_in = 1.0 / (sigma**2 + sd2).sqrt()
    c_noise = sigma.clamp_min(1e-4).log() / 4.0
    return c_skip, c_out, c_in, c_noise


def loss_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """EDM's loss weight (sigma^2 + sigma_data^2) / (sigma * sigma_data)^2."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def karras_grid(n: int, cfg: EDMConfig, device: torch.device | str | None = None) -> torch.Tensor:
    """``[n + 1]`` noise levels sigma_max -> sigma_min on the rho-schedule, then 0."""
    i = torch.arange(n, dtype=torch.float64, device=device)
    lo, hi = cfg.sigma_min ** (1 / cfg.rho), cfg.sigma_max ** (1 / cfg.rho)
    steps = (hi + i / max(n - 1, 1) * (lo - hi)) ** cfg.rho
    return torch.cat([steps, steps.new_zeros(1)]).float()


def _per_item(sigma: torch.Tensor) -> torch.Tensor:
    """``[B]`` -> ``[B, 1, 1]`` for broadcasting over trajectories."""
    return sigma.reshape(-1, 1, 1)


class EDMDenoiser(nn.Module):
    """D(x; sigma) = c_skip x + c_out F(c_in x, c_noise), with the condition inpainted.

    forward(x ``[B, H, D]``, sigma ``[B]``, mask, value ``[B, H, D]``) -> ``[B, H, D]``.
    """

    def __init__(self, net: nn.Module, cfg: EDMConfig | None = None) -> None:
        super().__init__()
        self.net = net
        self.cfg = cfg or EDMConfig()

    def forward(
        self, x: torch.Tensor, sigma: torch.Tensor, mask: torch.Tensor, value: torch.Tensor
    ) -> torch.Tensor:
        x = apply_condition(x, mask, value)
        c_skip, c_out, c_in, c_noise = precondition(sigma, self.cfg.sigma_data)
        f = self.net(_per_item(c_in) * x, c_noise, mask, value)
        return apply_condition(_per_item(c_skip) * x + _per_item(c_out) * f, mask, value)


def masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-item mean of (a - b)^2 over the generated (mask 0) entries: ``[B]``."""
    free = 1.0 - mask
    return ((a - b) ** 2 * free).sum(dim=(1, 2)) / free.sum(dim=(1, 2)).clamp_min(1.0)


def sample_training_sigma(
    batch: int, cfg: EDMConfig, device: torch.device | str, generator: torch.Generator | None
) -> torch.Tensor:
    """ln sigma ~ N(P_mean, P_std^2): ``[batch]``."""
    z = torch.randn(batch, device=device, generator=generator)
    return (cfg.p_mean + cfg.p_std * z).exp()


def edm_loss(
    denoiser: nn.Module,
    x0: torch.Tensor,
    mask: torch.Tensor,
    value: torch.Tensor,
    cfg: EDMConfig | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """EDM's weighted denoising loss on clean windows ``x0`` ``[B, H, D]``: a scalar.

    ``denoiser(x, sigma, mask, value)`` is any D(x; sigma) (the teacher, or a CTM student's
    diagonal for its DSM term). Conditioned entries are pinned, so they carry no loss.
    """
    cfg = cfg or EDMConfig()
    sigma = sample_training_sigma(x0.shape[0], cfg, x0.device, generator)
    noise = torch.randn(x0.shape, device=x0.device, generator=generator)
    denoised = denoiser(x0 + _per_item(sigma) * noise, sigma, mask, value)
    return (loss_weight(sigma, cfg.sigma_data) * masked_mse(denoised, x0, mask)).mean()


def heun_step(
    denoiser: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    t_next: torch.Tensor,
    mask: torch.Tensor,
    value: torch.Tensor,
    correct: bool = True,
) -> torch.Tensor:
    """One step of EDM's probability-flow ODE from noise level ``t`` to ``t_next`` (both
    ``[B]``, ``t > 0``): an Euler step, plus Heun's 2nd-order correction when ``correct``
    (``t_next`` > 0 then); the condition re-applied. NFE 2 with the correction, else 1.
    """
    d = (x - denoiser(x, t, mask, value)) / _per_item(t)
    x_next = x + _per_item(t_next - t) * d
    if correct:
        d_next = (x_next - denoiser(x_next, t_next, mask, value)) / _per_item(t_next)
        x_next = x + _per_item(t_next - t) * (d + d_next) / 2
    return apply_condition(x_next, mask, value)


def heun_sample(
    denoiser: nn.Module,
    noise: torch.Tensor,
    mask: torch.Tensor,
    value: torch.Tensor,
    steps: int,
    cfg: EDMConfig | None = None,
) -> torch.Tensor:
    """EDM's deterministic 2nd-order sampler; ``noise`` ``[B, H, D]`` ~ N(0, sigma_max^2).

    ``steps`` = N Karras levels, NFE = 2N - 1. Returns the sample ``[B, H, D]``.
    """
    cfg = cfg or EDMConfig()
    grid = karras_grid(steps, cfg, noise.device)
    ones = noise.new_ones(noise.shape[0])
    x = apply_condition(noise, mask, value)
    for i in range(steps):
        # 2nd-order correction except on the final step to sigma = 0
        x = heun_step(denoiser, x, grid[i] * ones, grid[i + 1] * ones, mask, value,
                      correct=i < steps - 1)
    return x
