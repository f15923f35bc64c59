"""Goal-conditioned behaviour cloning on an AntMaze dataset (``ctp baseline gcbc``).

An MLP ``a = f(s, g - xy)`` regressed on the dataset's own steps with hindsight goals: for each
step t, the goal is the x, y the ant reached at a step drawn uniformly from the rest of t's
episode. It is evaluated like a planner, on the maze's evaluation task with its true goal
(the keys ``ctp plan --out`` writes). The planners must beat it on the same data.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ctp.tasks.antmaze.loader import AntMazeData, load_antmaze_dataset
from ctp.tasks.antmaze.reference import Policy, rollout_success, success_document
from ctp.tasks.antmaze.spec import get_spec
from ctp.training.regression import FitConfig, fit_mlp
from ctp.utils.validation import MAX_SEED, check_options, int_option


@dataclass
class GCBCConfig:
    """What ``ctp baseline gcbc`` trains and evaluates (defaults are the CLI's)."""

    env: str  # antmaze-umaze, antmaze-medium-play, ...
    fit: FitConfig = field(default_factory=FitConfig)
    episodes: int = 100
    seed: int = 0  # the first evaluation seed
    num_envs: int = 10

    def validate(self) -> None:
        """One-line CTPError for the first option out of range."""
        self.fit.check()
        check_options([int_option("--episodes", self.episodes),
                       int_option("--seed", self.seed, 0, MAX_SEED - self.episodes),
                       (1 <= self.num_envs <= 256, "--num-envs", "in 1..256", self.num_envs)])


def hindsight_pairs(data: AntMazeData, rng: np.random.Generator
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs ``[M, D + 2]`` = s_t and g - x, y of s_t; actions ``[M, 8]``) for every step t
    but its episode's last, with g the x, y at a step drawn uniformly from t + 1 .. the
    episode's last step."""
    bounds = data.episode_bounds()
    ends = np.repeat(bounds[:, 1], bounds[:, 1] - bounds[:, 0])  # each step's episode end
    t = np.flatnonzero(np.arange(data.num_steps) < ends - 1)
    future = t + 1 + (rng.random(len(t)) * (ends[t] - 1 - t)).astype(np.int64)
    obs = data.observations
    inputs = np.concatenate([obs[t], obs[future, :2] - obs[t, :2]], axis=1)
    return (torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(data.actions[t], dtype=np.float32)))


def gcbc_baseline(cfg: GCBCConfig) -> dict[str, Any]:
    """Fit goal-conditioned BC on the env's dataset and evaluate it on the test seeds; the
    results document (``d4rl_normalized`` = 100 x success)."""
    cfg.validate()
    spec = get_spec(cfg.env)
    torch.set_num_threads(1)
    data = load_antmaze_dataset(spec.dataset_id)
    start = time.perf_counter()
    pairs = hindsight_pairs(data, np.random.default_rng(cfg.fit.seed))
    model, loss = fit_mlp(*pairs, cfg.fit, desc=f"GC-BC {spec.dataset_id}")
    trained = time.perf_counter()

    def make_policy(num_envs: int) -> Policy:
        @torch.no_grad()
        def act(obs: dict[str, np.ndarray]) -> np.ndarray:
            xy = np.asarray(obs["achieved_goal"], dtype=np.float32)
            inputs = np.concatenate([xy, obs["observation"], obs["desired_goal"] - xy], axis=1)
            return model(torch.as_tensor(inputs, dtype=torch.float32)).numpy()
        return act

    rows, latencies = rollout_success(spec, make_policy, cfg.episodes, cfg.seed, cfg.num_envs,
                                      progress=cfg.fit.progress, desc=f"GC-BC {spec.env_name}")
    fit = {k: v for k, v in asdict(cfg.fit).items() if k != "progress"}
    return success_document(spec, rows, latencies, policy="goal-conditioned BC (MLP s, g - xy)",
                            num_envs=cfg.num_envs, fit=fit, train_loss=loss,
                            train_seconds=trained - start,
                            eval_seconds=time.perf_counter() - trained)
