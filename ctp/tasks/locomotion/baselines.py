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
from ctp.tasks.locomotion.loader import LocomotionData, load_locomotion_dataset
from ctp.tasks.locomotion.rollout import rollout_returns
from ctp.tasks.locomotion.spec import parse_dataset_name
from ctp.training.regression import FitConfig, fit_mlp
from ctp.utils.stats import mean_se
from ctp.utils.validation import MAX_SEED, check_options, int_option


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
