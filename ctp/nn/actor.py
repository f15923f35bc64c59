"""The behaviour policy's network: SAC's squashed-Gaussian actor, without stable-baselines3.

Layer names match stable-baselines3's ``SAC.actor`` (``latent_pi``, ``mu``, ``log_std``) so its
state dict loads as is; shipped actors are ctp checkpoints of kind ``behaviour`` (tensors and
plain values, read with ``weights_only=True``), so sampling a dataset needs torch only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ctp.nn.mlp import hidden_stack
from ctp.utils.checkpoint import BEHAVIOUR_KIND, load_checkpoint, save_checkpoint
from ctp.utils.errors import CTPError

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # stable-baselines3's clamp


class SquashedGaussianActor(nn.Module):
    """a = tanh(mu(s) + exp(log_std(s)) * eps), an MLP trunk with ReLU."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.latent_pi, width = hidden_stack(obs_dim, hidden, nn.ReLU)
        self.mu = nn.Linear(width, act_dim)
        self.log_std = nn.Linear(width, act_dim)

    def forward(
        self, obs: torch.Tensor, deterministic: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """obs ``[B, obs_dim]`` -> actions ``[B, act_dim]`` in [-1, 1]."""
        latent = self.latent_pi(obs)
        mean = self.mu(latent)
        if deterministic:
            return torch.tanh(mean)
        std = self.log_std(latent).clamp(LOG_STD_MIN, LOG_STD_MAX).exp()
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return torch.tanh(mean + std * noise)


def save_actor(path: str | Path, actor: SquashedGaussianActor, info: dict[str, Any]) -> Path:
    """Write a behaviour checkpoint: the actor's weights plus ``info`` (task, seed, step, ...)."""
    hidden = [m.out_features for m in actor.latent_pi if isinstance(m, nn.Linear)]
    return save_checkpoint(path, {
        "kind": BEHAVIOUR_KIND,
        "obs_dim": actor.latent_pi[0].in_features,
        "act_dim": actor.mu.out_features,
        "hidden": hidden,
        "state_dict": {k: v.detach().clone() for k, v in actor.state_dict().items()},
        "info": info,
    })


def load_actor(path: str | Path) -> tuple[SquashedGaussianActor, dict[str, Any]]:
    """Read a behaviour checkpoint -> (actor in eval mode, its info dict)."""
    payload = load_checkpoint(path, BEHAVIOUR_KIND)
    try:
        actor = SquashedGaussianActor(
            payload["obs_dim"], payload["act_dim"], tuple(payload["hidden"])
        )
        actor.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise CTPError(f"{path}: behaviour checkpoint does not fit its network ({exc})") from None
    if not all(torch.isfinite(t).all() for t in actor.state_dict().values()):
        raise CTPError(f"{path}: behaviour checkpoint holds NaN or inf weights")
    return actor.eval(), dict(payload.get("info", {}))
