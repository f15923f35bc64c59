"""Baselines on a locomotion dataset: the behaviour data's own return and behaviour cloning.

Behaviour cloning is an MLP ``a = f(s)`` regressed on every (state, action) pair of the
dataset. Inverse dynamics (``a_t = f(s_t, s_{t+k})``, the planner's action head) is trained by
``ctp train invdyn`` (``ctp.models.inverse_dynamics``) on the same MLP, with the pairs of
``invdyn_pairs``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ctp.models.inverse_dynamics import invdyn_pairs  # noqa: F401 - the pairs, here since the BC PR
from ctp.nn.mlp import MLP
from ctp.tasks.locomotion.loader import LocomotionData, load_locomotion_dataset
from ctp.tasks.locomotion.rollout import rollout_returns
from ctp.tasks.locomotion.spec import parse_dataset_name
from ctp.utils.errors import CTPError
from ctp.utils.stats import mean_se
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


def bc_pairs(data: LocomotionData) -> tuple[torch.Tensor, torch.Tensor]:
    """(states ``[N, obs_dim]``, actions ``[N, act_dim]``) of every step."""
    return torch.from_numpy(data.observations), torch.from_numpy(data.actions)


@dataclass
class BaselineResult:
    """Behaviour data vs behaviour cloning on one dataset (JSON keys of ``ctp baseline``)."""

    dataset_id: str
    env_id: str
    episodes: int
    seeds: list[int]
    behaviour_return: dict[str, float]  # mean / se over the dataset's episodes
    behaviour_d4rl_normalized: dict[str, float]
    bc_return: dict[str, float]  # mean / se over evaluation episodes
    bc_d4rl_normalized: dict[str, float]
    bc_train_loss: float
    fit: dict
    train_seconds: float
    eval_seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_dataset(name_or_id: str) -> str:
    """``hopper-medium`` -> ``ctp/mujoco/hopper/medium-v1``; a full id is returned as is."""
    if "/" in name_or_id:
        return name_or_id
    task, kind = parse_dataset_name(name_or_id)
    return task.dataset_id(kind)


def bc_baseline(name_or_id: str, fit: FitConfig, episodes: int = 50,
                seed: int = 0) -> BaselineResult:
    """Fit BC on the dataset and evaluate it for ``episodes`` episodes (seeds seed..)."""
    check_options([
        int_option("--episodes", episodes),
        int_option("--seed", seed, 0, MAX_SEED),
    ])
    fit.check()
    data = load_locomotion_dataset(resolve_dataset(name_or_id))
    spec = data.task
    start = time.perf_counter()
    model, loss = fit_mlp(*bc_pairs(data), fit, desc=f"BC {data.dataset_id}")
    trained = time.perf_counter()

    @torch.no_grad()
    def policy(obs: np.ndarray) -> np.ndarray:
        return model(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()

    returns = rollout_returns(spec, policy, episodes, seed, progress=fit.progress)
    behaviour = data.episode_returns()
    return BaselineResult(
        dataset_id=data.dataset_id, env_id=spec.env_id, episodes=episodes,
        seeds=list(range(seed, seed + episodes)),
        behaviour_return=mean_se(behaviour),
        behaviour_d4rl_normalized=mean_se([spec.normalized(r) for r in behaviour]),
        bc_return=mean_se(returns),
        bc_d4rl_normalized=mean_se([spec.normalized(r) for r in returns]),
        bc_train_loss=loss, fit={k: v for k, v in asdict(fit).items() if k != "progress"},
        train_seconds=trained - start, eval_seconds=time.perf_counter() - trained,
    )
