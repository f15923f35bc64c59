"""The learning-rate schedule (warm-up, then constant or cosine) and the EMA update."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ctp.training.config import TrainConfig


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """The learning rate of the update after ``step`` done ones, over ``cfg.lr``: a linear
    warm-up 1/W, 2/W, ..., 1 over the first ``warmup_steps`` = W updates, then 1 (constant)
    or a cosine from 1 down to ``lr_min / lr`` at the last of ``cfg.steps`` (and after it)."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return 1.0
    floor = cfg.lr_min / cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - 1 - cfg.warmup_steps))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer,
                 payload: dict[str, Any] | None) -> torch.optim.lr_scheduler.LambdaLR:
    """``cfg.lr * lr_factor(cfg, step)`` as a LambdaLR. Resumed from ``payload``: at its
    saved position (its ``scheduler`` state dict; a checkpoint without one, made before
    schedules or by unbundle, at its step), on this run's ``--lr`` and schedule options."""
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(cfg, step))
    if payload is None:
        return scheduler
    scheduler.load_state_dict(payload.get("scheduler")
                              or {"last_epoch": int(payload["step"]), "lr_lambdas": [None]})
    scheduler.base_lrs = [cfg.lr for _ in opt.param_groups]
    for group in opt.param_groups:
        group["initial_lr"] = cfg.lr
        group["lr"] = cfg.lr * lr_factor(cfg, scheduler.last_epoch)
    return scheduler


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters(), strict=False):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers(), strict=False):
        e.copy_(b)
