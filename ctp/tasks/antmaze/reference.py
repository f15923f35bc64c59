"""The reference row of AntMaze tables: the data-generating controller on the evaluation task.

``ctp baseline expert antmaze-<name>`` rolls the maze solver + shipped ant controller in E
evaluation envs at a time (seeds seed .. seed + N - 1), without noise or with the data's, and
writes the keys ``ctp plan --out`` writes: ``d4rl_normalized`` {mean, se} (100 x success, D4RL's
constants 0 / 1), ``success_rate``, ``latency_ms`` (per decision of the whole batch) and
``per_episode``. An episode's return is 1 when the ant came within 0.45 m of the goal at any
step (D4RL ends the episode there), else 0. It is the ceiling planners are compared against,
never part of a planner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ctp.tasks.antmaze.envs import make_vector_env
from ctp.tasks.antmaze.expert import SHIPPED_ACTOR, AntExpert, load_controller
from ctp.tasks.antmaze.spec import REF_MAX_SCORE, REF_MIN_SCORE, get_spec
from ctp.utils.stats import mean_se
from ctp.utils.validation import check_options


@dataclass
class ExpertConfig:
    """What ``ctp baseline expert`` evaluates."""

    env: str
    episodes: int = 100
    seed: int = 0
    num_envs: int = 10
    noise: float = 0.0
    actor_path: str = str(SHIPPED_ACTOR)
    progress: bool = True

    def validate(self) -> None:
        """Raise a CTPError naming the first option out of range."""
        check_options([
            (self.episodes >= 1, "--episodes", ">= 1", self.episodes),
            (0 <= self.seed < 2**32 - self.episodes, "--seed",
             "an integer in 0..2^32-1 (with every episode's seed)", self.seed),
            (1 <= self.num_envs <= 256, "--num-envs", "in 1..256", self.num_envs),
            (0 <= self.noise < 10, "--noise", "a standard deviation in [0, 10)", self.noise),
        ])


def evaluate_expert(cfg: ExpertConfig) -> dict[str, Any]:
    """Roll the controller over ``cfg.episodes`` evaluation episodes; the results document."""
    from tqdm import tqdm

    cfg.validate()
    spec = get_spec(cfg.env)
    torch.set_num_threads(1)
    controller = load_controller(cfg.actor_path)
    rng = np.random.default_rng(cfg.seed)
    seeds = list(range(cfg.seed, cfg.seed + cfg.episodes))
    rows, latencies = [], []
    bar = tqdm(total=cfg.episodes * spec.episode_steps, unit="step", disable=not cfg.progress,
               desc=f"expert {spec.env_name}", mininterval=1.0)
    for first in range(0, cfg.episodes, cfg.num_envs):
        batch = seeds[first:first + cfg.num_envs]
        envs = make_vector_env(spec, len(batch))
        expert = AntExpert(spec, controller, len(batch), rng, jitter=False)
        obs, _ = envs.reset(seed=batch)
        success = np.zeros(len(batch), dtype=bool)
        arrival = np.full(len(batch), -1)
        for t in range(spec.episode_steps):
            start = time.perf_counter()
            action = expert.act(obs)
            latencies.append(1e3 * (time.perf_counter() - start))
            if cfg.noise:
                action = np.clip(action + rng.normal(0.0, cfg.noise, action.shape), -1, 1)
            obs, _, _, _, info = envs.step(action)
            reached = np.asarray(info["success"], dtype=bool)
            arrival[reached & ~success] = t + 1
            success |= reached
            bar.update(len(batch))
        envs.close()
        rows += [{"seed": s, "return": float(ok), "success": bool(ok), "steps": spec.episode_steps,
                  "arrival_step": int(a)} for s, ok, a in zip(batch, success, arrival)]
    bar.close()
    scores = [100.0 * r["return"] for r in rows]
    return {
        "env": spec.env_name, "checkpoint": cfg.actor_path, "dataset_id": spec.dataset_id,
        "policy": "expert (ours): BFS waypoints + SAC ant controller",
        "episodes": len(rows), "seeds": seeds, "task": "single-task", "noise": cfg.noise,
        "num_envs": cfg.num_envs, "torch_threads": torch.get_num_threads(),
        "ref_min_score": REF_MIN_SCORE, "ref_max_score": REF_MAX_SCORE,
        "d4rl_ref_min_score": REF_MIN_SCORE, "d4rl_ref_max_score": REF_MAX_SCORE,
        "goal_radius": 0.45, "return": mean_se([r["return"] for r in rows]),
        "normalized": mean_se(scores), "d4rl_normalized": mean_se(scores),
        "success_rate": float(np.mean([r["success"] for r in rows])),
        "latency_ms": {"p50": float(np.percentile(latencies, 50)),
                       "p95": float(np.percentile(latencies, 95)), "plans": len(latencies)},
        "per_episode": rows,
    }
