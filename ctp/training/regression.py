"""Fit an MLP regressor (``ctp.nn.mlp.MLP``) by MSE and Adam: the behaviour-cloning
baselines' one training loop (locomotion BC ``a = f(s)``, AntMaze goal-conditioned BC)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ctp.nn.mlp import MLP
from ctp.utils.errors import CTPError
from ctp.utils.validation import MAX_LR, MAX_SEED, check_options, finite, int_option


@dataclass
class FitConfig:
    """How an MLP regressor is fitted (defaults are ``ctp baseline bc``'s)."""

    steps: int = 20_000
    batch_size: int = 256
    lr: float = 3e-4
    hidden: tuple[int, ...] = (256, 256)
    seed: int = 0
    progress: bool = True

    def check(self) -> None:
        """One-line CTPError for the first option out of range."""
        check_options([
            int_option("--steps", self.steps),
            int_option("--seed", self.seed, 0, MAX_SEED),
            (self.batch_size >= 1, "--batch-size", ">= 1", self.batch_size),
            (finite(self.lr) and 0 < self.lr <= MAX_LR, "--lr",
             f"a finite positive number <= {MAX_LR:g}", self.lr),
        ])


def fit_mlp(inputs: torch.Tensor, targets: torch.Tensor, cfg: FitConfig,
            desc: str = "fit") -> tuple[MLP, float]:
    """Regress ``targets [N, O]`` on ``inputs [N, I]`` (MSE, Adam) -> (model, last loss)."""
    from tqdm import tqdm

    cfg.check()
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = MLP(inputs.shape[1], targets.shape[1], cfg.hidden)
    model.set_input_stats(inputs)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss = torch.tensor(float("nan"))
    for _ in tqdm(range(cfg.steps), desc=desc, unit="step", disable=not cfg.progress,
                  mininterval=1.0):
        idx = torch.randint(0, inputs.shape[0], (cfg.batch_size,), generator=generator)
        loss = torch.nn.functional.mse_loss(model(inputs[idx]), targets[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    loss = loss.detach()
    if not torch.isfinite(loss):
        raise CTPError(f"{desc}: the loss is not finite ({loss.item()})")
    return model.eval(), loss.item()
