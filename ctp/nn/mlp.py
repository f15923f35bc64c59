"""A plain MLP with input standardisation: behaviour cloning and inverse dynamics."""

from __future__ import annotations

import torch
from torch import nn


def hidden_stack(in_dim: int, hidden: tuple[int, ...], activation: type[nn.Module]
                 ) -> tuple[nn.Sequential, int]:
    """(Linear + activation per width in ``hidden``, the last width): an MLP's trunk."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), activation()]
        width = h
    return nn.Sequential(*layers), width


class MLP(nn.Module):
    """``[B, in_dim]`` -> ``[B, out_dim]``: standardise, hidden Linear+Mish layers, Linear.

    ``in_mean`` / ``in_std`` are buffers (saved with the weights), set from the training data
    with :meth:`set_input_stats`; ``squash`` puts a tanh on the output (actions in [-1, 1]).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: tuple[int, ...] = (256, 256),
                 squash: bool = True) -> None:
        super().__init__()
        trunk, width = hidden_stack(in_dim, hidden, nn.Mish)
        self.net = nn.Sequential(*trunk, nn.Linear(width, out_dim))
        self.squash = squash
        self.register_buffer("in_mean", torch.zeros(in_dim))
        self.register_buffer("in_std", torch.ones(in_dim))

    def set_input_stats(self, inputs: torch.Tensor) -> None:
        """Standardise with the mean/std of ``inputs [N, in_dim]`` (std floored at 1e-6)."""
        self.in_mean.copy_(inputs.mean(0))
        self.in_std.copy_(inputs.std(0).clamp_min(1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net((x - self.in_mean) / self.in_std)
        return torch.tanh(out) if self.squash else out
