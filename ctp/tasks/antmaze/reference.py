"""The reference row of AntMaze tables: the data-generating controller on the evaluation task.

``ctp baseline expert antmaze-<name>`` rolls the maze solver + shipped ant controller in E
evaluation envs at a time (seeds seed .. seed + N - 1), without noise or with the data's, and
writes the keys ``ctp plan --out`` writes: ``d4rl_normalized`` {mean, se} (100 x success,
D4RL's constants 0 / 1), ``success_rate``, ``goal_distance``, ``latency_ms`` (per decision of
the whole batch) and ``per_episode``. An episode's return is 1 when the ant came within 0.45 m
of the goal at any step (D4RL ends the episode there), else 0. It is the ceiling planners are
compared against, never part of a planner.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ctp.tasks.antmaze.envs import make_vector_env
from ctp.tasks.antmaze.expert import ACTION_SCALE, SHIPPED_ACTOR, AntExpert, load_controller
from ctp.tasks.antmaze.spec import (
    GOAL_RADIUS,
    REF_MAX_SCORE,
    REF_MIN_SCORE,
    AntMazeSpec,
    get_spec,
)
from ctp.utils.stats import goal_distance, mean_se
from ctp.utils.validation import check_options

Policy = Callable[[dict[str, np.ndarray]], np.ndarray]  # obs dict of E envs -> actions [E, 8]


@dataclass
class ExpertConfig:
    """What ``ctp baseline expert`` evaluates."""

    env: str
    episodes: int = 100
    seed: int = 0
    num_envs: int = 10
    noise: float = 0.0
    actor_path: str = str(SHIPPED_ACTOR)
    action_scale: float = ACTION_SCALE
    progress: bool = True

    def validate(self) -> None:
        """Raise a CTPError naming the first option out of range."""
        check_options([
            (self.episodes >= 1, "--episodes", ">= 1", self.episodes),
            (0 <= self.seed < 2**32 - self.episodes, "--seed",
             "an integer in 0..2^32-1 (with every episode's seed)", self.seed),
            (1 <= self.num_envs <= 256, "--num-envs", "in 1..256", self.num_envs),
            (0 <= self.noise < 10, "--noise", "a standard deviation in [0, 10)", self.noise),
            (0 < self.action_scale <= 1, "--action-scale", "in (0, 1]", self.action_scale),
        ])


def rollout_success(spec: AntMazeSpec, make_policy: Callable[[int], Policy], episodes: int,
                    seed: int, num_envs: int, noise: float = 0.0, progress: bool = True,
                    desc: str = "") -> tuple[list[dict[str, Any]], list[float]]:
    """Roll a policy over evaluation episodes (seeds seed .. seed + episodes - 1), ``num_envs``
    at a time; ``make_policy(E)`` gives a fresh ``act(obs dict) -> actions [E, 8]`` for each
    batch. -> (per-episode rows: seed, return 1 / 0, success, steps, arrival_step (-1: none),
    final_distance (to the goal at arrival, else at the last step), closest_distance;
    decision latencies in ms, one per call of ``act``)."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    seeds = list(range(seed, seed + episodes))
    rows, latencies = [], []
    bar = tqdm(total=episodes * spec.episode_steps, unit="step", disable=not progress,
               desc=desc or spec.env_name, mininterval=1.0)
    for first in range(0, episodes, num_envs):
        batch = seeds[first:first + num_envs]
        envs = make_vector_env(spec, len(batch))
        act = make_policy(len(batch))
        obs, _ = envs.reset(seed=batch)
        success = np.zeros(len(batch), dtype=bool)
        arrival = np.full(len(batch), -1)
        final = closest = _to_goal(obs)
        for t in range(spec.episode_steps):
            start = time.perf_counter()
            action = act(obs)
            latencies.append(1e3 * (time.perf_counter() - start))
            if noise:
                action = np.clip(action + rng.normal(0.0, noise, action.shape), -1, 1)
            obs, _, _, _, info = envs.step(action)
            reached = np.asarray(info["success"], dtype=bool)
            arrival[reached & ~success] = t + 1
            final = np.where(success, final, _to_goal(obs))  # held from the arrival on
            closest = np.minimum(closest, final)
            success |= reached
            bar.update(len(batch))
        envs.close()
        rows += [{"seed": s, "return": float(ok), "success": bool(ok), "steps": spec.episode_steps,
                  "arrival_step": int(a), "final_distance": round(float(f), 4),
                  "closest_distance": round(float(c), 4)}
                 for s, ok, a, f, c in zip(batch, success, arrival, final, closest)]
    bar.close()
    return rows, latencies


def success_document(spec: AntMazeSpec, rows: list[dict[str, Any]], latencies: list[float],
                     **fields: Any) -> dict[str, Any]:
    """The keys ``ctp plan --out`` writes for AntMaze (100 x success, its SE, success rate,
    decision latency p50 / p95, per-episode rows), after ``fields`` (env, policy, ...)."""
    scores = [100.0 * r["return"] for r in rows]
    return {
        "env": spec.env_name, "dataset_id": spec.dataset_id, **fields,
        "episodes": len(rows), "seeds": [r["seed"] for r in rows], "task": "single-task",
        "torch_threads": torch.get_num_threads(),
        "ref_min_score": REF_MIN_SCORE, "ref_max_score": REF_MAX_SCORE,
        "d4rl_ref_min_score": REF_MIN_SCORE, "d4rl_ref_max_score": REF_MAX_SCORE,
        "goal_radius": GOAL_RADIUS, "return": mean_se([r["return"] for r in rows]),
        "normalized": mean_se(scores), "d4rl_normalized": mean_se(scores),
        "success_rate": float(np.mean([r["success"] for r in rows])),
        "goal_distance": goal_distance(rows),
        "latency_ms": {"p50": float(np.percentile(latencies, 50)),
                       "p95": float(np.percentile(latencies, 95)), "plans": len(latencies)},
        "per_episode": rows,
    }


def _to_goal(obs: dict[str, np.ndarray]) -> np.ndarray:
    """``[E]``: each ant's distance to its goal (x, y)."""
    return np.linalg.norm(np.asarray(obs["achieved_goal"]) - np.asarray(obs["desired_goal"]),
                          axis=1)


def evaluate_expert(cfg: ExpertConfig) -> dict[str, Any]:
    """Roll the controller over ``cfg.episodes`` evaluation episodes; the results document."""
    cfg.validate()
    spec = get_spec(cfg.env)
    torch.set_num_threads(1)
    controller = load_controller(cfg.actor_path, cfg.action_scale)
    rng = np.random.default_rng(cfg.seed)

    def make_policy(num_envs: int) -> Policy:
        return AntExpert(spec, controller, num_envs, rng, jitter=False).act

    rows, latencies = rollout_success(spec, make_policy, cfg.episodes, cfg.seed, cfg.num_envs,
                                      cfg.noise, cfg.progress, f"expert {spec.env_name}")
    return success_document(spec, rows, latencies, checkpoint=cfg.actor_path,
                            policy="expert (ours): BFS waypoints + SAC ant controller",
                            noise=cfg.noise, action_scale=cfg.action_scale,
                            num_envs=cfg.num_envs)
