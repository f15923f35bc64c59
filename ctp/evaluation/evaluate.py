"""Closed-loop evaluation of a planner in its task's vectorised envs.

Episodes use seeds seed .. seed + N - 1, E at a time. Scores: raw return, the normalised
score with the dataset's Minari reference constants, and ``d4rl_normalized`` with the task's
published D4RL constants (docs/design.md section 6); mean +- standard error over episodes. Plan
latency is the wall-clock time of ``Planner.plan`` (sample + score + rank + first action),
median and p95 after warm-up.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ctp.planning.config import PlannerConfig
from ctp.planning.planner import Planner, compile_note
from ctp.tasks import DEFAULT_ENV, task_for_env
from ctp.utils.atomic import write_json
from ctp.utils.errors import CTPError
from ctp.utils.stats import goal_distance, mean_se, normalized
from ctp.utils.validation import (
    MAX_SEED,
    check_options,
    check_output,
    int_option,
    resolve_device,
)

WARMUP_PLANS = 2


@dataclass
class EvalConfig:
    env: str = DEFAULT_ENV
    checkpoint: str | None = None  # planner file; None = the bundled one for env
    episodes: int = 20
    seed: int = 0
    num_envs: int = 1
    multi_goal: bool = False
    replan: int | None = None  # env steps between plans; None = plan once (open loop)
    cuda_graphs: bool = False
    device: str = "cpu"
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    out: str | None = None
    plot: str | None = None
    plot_episodes: int = 4
    progress: bool = True

    def validate(self) -> None:
        check_options([
            int_option("--episodes", self.episodes),
            int_option("--seed", self.seed, 0, MAX_SEED),
            (self.num_envs >= 1, "--num-envs", ">= 1", self.num_envs),
            (self.replan is None or self.replan >= 1, "--replan", ">= 1 env steps",
             self.replan),
        ])
        self.planner.validate()
        resolve_device(self.device)
        for option, path in (("--out", self.out), ("--plot", self.plot)):
            if path is not None:
                check_output(option, path, {"--checkpoint": self.checkpoint})


@dataclass
class Episode:
    seed: int
    ret: float
    success: bool
    plan_latencies_ms: list[float]
    path: np.ndarray  # [T + 1, P] executed positions (the task's Observation.position)
    plans: list[np.ndarray]  # chosen plans [H, D]
    goal: np.ndarray  # [G]
    rewards: np.ndarray | None = None  # [T] per env step, T the episode's length

    @property
    def steps(self) -> int:
        """Env steps the episode lasted (fewer than the task's when it terminated early)."""
        return len(self.path) - 1

    def goal_distances(self) -> dict[str, float]:
        """How near the goal the executed path came (goal tasks: the position's leading G
        dims against the goal's G): ``final_distance`` and ``closest_distance``."""
        g = len(self.goal)
        d = np.linalg.norm(self.path[:, :g] - self.goal[None, :], axis=1)
        return {"final_distance": round(float(d[-1]), 4),
                "closest_distance": round(float(d.min()), 4)}


def run_episodes(planner: Planner, cfg: EvalConfig) -> list[Episode]:
    """Roll out ``cfg.episodes`` episodes, ``cfg.num_envs`` at a time. The progress bar counts
    env steps (episodes x the task's episode length; an episode that ends early fills in the
    rest), so it moves during long episodes too."""
    from tqdm import tqdm

    task = planner.task
    env = task.env_name(cfg.env)
    seeds = list(range(cfg.seed, cfg.seed + cfg.episodes))
    episodes: list[Episode] = []
    steps = task.episode_steps(env)
    bar = tqdm(total=cfg.episodes * steps, desc=f"plan {cfg.env}", unit="step",
               disable=not cfg.progress, mininterval=1.0)
    for first in range(0, len(seeds), cfg.num_envs):
        batch = seeds[first : first + cfg.num_envs]
        envs = task.make_vector_env(env, len(batch), cfg.multi_goal)
        obs, _ = envs.reset(seed=batch)
        seen = task.observe(obs)
        follower = planner.controller()
        returns = np.zeros(len(batch))
        success = np.zeros(len(batch), dtype=bool)
        done = np.zeros(len(batch), dtype=bool)  # terminated or truncated (e.g. fell over)
        lengths = np.zeros(len(batch), dtype=np.int64)
        latencies: list[float] = []
        paths = [seen.position.copy()]
        rewards: list[np.ndarray] = []
        plans: list[np.ndarray] = []
        goals = seen.goal.copy()
        for t in range(steps):
            if done.all():
                break
            bar.update(len(batch))
            if t == 0 or (cfg.replan and t % cfg.replan == 0):
                result = planner.plan(seen.state, seen.goal)
                follower.set_plans(result.trajectory, result.target)
                latencies.append(result.latency_ms)
                plans.append(result.trajectory)
            obs, reward, terminated, truncated, info = envs.step(follower.act(seen.state))
            seen = task.observe(obs)
            live = ~done  # an ended episode's env resets itself: its later steps do not count
            reward = np.where(live, np.asarray(reward, dtype=np.float64), 0.0)
            returns += reward
            rewards.append(reward)
            lengths += live
            success |= live & np.asarray(info.get("success", np.zeros(len(batch), bool)),
                                         dtype=bool)
            done |= np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool)
            paths.append(seen.position.copy())
        envs.close()
        path_arr = np.stack(paths, axis=1)  # [E, T + 1, P]
        reward_arr = np.stack(rewards, axis=1)  # [E, T]
        for i, seed in enumerate(batch):
            n = int(lengths[i])
            episodes.append(Episode(seed, float(returns[i]), bool(success[i]), latencies,
                                    path_arr[i, : n + 1], [p[i] for p in plans], goals[i],
                                    rewards=reward_arr[i, :n]))
        bar.update((first + len(batch)) * steps - bar.n)  # the ended episodes' remaining steps
        bar.set_postfix(episodes=f"{len(episodes)}/{cfg.episodes}")
    bar.close()
    return episodes


def summarize(planner: Planner, cfg: EvalConfig, episodes: list[Episode],
              cuda_graphs: bool) -> dict[str, Any]:
    """The results document (``--out`` JSON) for a list of episodes."""
    env = planner.task.env_name(cfg.env)
    d4rl_min, d4rl_max = planner.task.reference_scores(env)
    ref_min, ref_max = planner.payload_meta["ref_min_score"], planner.payload_meta["ref_max_score"]
    returns = [e.ret for e in episodes]
    has_goal = planner.task.goal_dims > 0  # success (reaching it) means nothing without one
    lat = np.concatenate([e.plan_latencies_ms for e in episodes[:: max(cfg.num_envs, 1)]])
    # How near the goal the episodes came (env units; AntMaze: metres): a finer read than
    # success where few or none arrive.
    per_episode = [
        {"seed": e.seed, "return": e.ret, "success": e.success, "steps": e.steps,
         **(e.goal_distances() if has_goal else {}),
         "plan_latencies_ms": [round(v, 3) for v in e.plan_latencies_ms]}
        for e in episodes
    ]
    result: dict[str, Any] = {
        "env": env,
        "checkpoint": planner.source,
        "dataset_id": planner.payload_meta["dataset_id"],
        "episodes": len(episodes),
        "seeds": [e.seed for e in episodes],
        "task": "multi2d" if cfg.multi_goal else "single-task",
        "sampler": planner.config.sampler,
        "nfe": planner.config.nfe,
        "jumps": planner.config.jumps if planner.config.sampler == "ctm" else None,
        "edm_steps": planner.config.edm_steps if planner.config.sampler == "edm" else None,
        "candidates": planner.config.candidates,
        "scorer": planner.scorer_name(),
        "velocities": planner.config.velocities,
        "aim": planner.config.aim,
        "target_radius": planner.config.target_radius,
        "back_off": planner.config.back_off,
        "horizon": planner.horizon,
        "stride": planner.stride,
        "replan": cfg.replan,
        "num_envs": cfg.num_envs,
        "cuda_graphs": cuda_graphs,
        "compiled": planner.config.compile,
        "device": str(planner.device),
        "torch_threads": torch.get_num_threads(),
        "ref_min_score": ref_min,
        "ref_max_score": ref_max,
        "d4rl_ref_min_score": d4rl_min,
        "d4rl_ref_max_score": d4rl_max,
        "goal_radius": planner.config.goal_radius if has_goal else None,
        "return": mean_se(returns),
        "normalized": (mean_se([normalized(r, ref_min, ref_max) for r in returns])
                       if ref_min is not None and ref_max is not None else None),
        "d4rl_normalized": mean_se(
            [normalized(r, d4rl_min, d4rl_max) for r in returns]
        ),
        "success_rate": float(np.mean([e.success for e in episodes])) if has_goal else None,
        "goal_distance": goal_distance(per_episode) if has_goal else None,
        "latency_ms": {"p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95)),
                       "plans": int(len(lat))},
        "per_episode": per_episode,
    }
    return result


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def format_table(result: dict[str, Any]) -> str:
    """A human-readable table of one evaluation."""
    def ms(x: dict[str, float]) -> str:
        return f"{x['mean']:.1f} +- {x['se']:.1f}"

    norm = ms(result["normalized"]) if result["normalized"] else "n/a (no ref scores)"
    rows = [
        ("env", f"{result['env']} ({result['task']})"),
        ("episodes", f"{result['episodes']} (seeds {result['seeds'][0]}..{result['seeds'][-1]})"),
        ("d4rl_normalized", ms(result["d4rl_normalized"])),
        ("normalized", norm),
        ("return", ms(result["return"])),
        ("success rate", "n/a (no goal)" if result["success_rate"] is None
                         else f"{100 * result['success_rate']:.0f}%"),
        *([("goal distance", f"median {result['goal_distance']['final_median']:.2f} at the "
                             f"end, {result['goal_distance']['closest_median']:.2f} closest")]
          if result.get("goal_distance") else []),
        ("plan latency", f"p50 {result['latency_ms']['p50']:.1f} ms, "
                         f"p95 {result['latency_ms']['p95']:.1f} ms"),
        ("sampler / NFE", f"{result['sampler']} / {result['nfe']}"),
        ("candidates", str(result["candidates"])),
        ("scorer", result["scorer"]),
        *([("acts toward", f"the state nearest the goal within {result['target_radius']:g} "
                           "of the agent (goal distance)")]
          if result.get("target_radius") else []),
        *([("backs off", f"{result['back_off']} steps away from it when stuck")]
          if result.get("back_off") else []),
        ("velocities", result["velocities"]),
        ("replan", "open loop" if not result["replan"] else f"every {result['replan']} steps"),
        ("ref constants", f"minari {_fmt(result['ref_min_score'])} / "
                          f"{_fmt(result['ref_max_score'])}; d4rl "
                          f"{result['d4rl_ref_min_score']} / {result['d4rl_ref_max_score']}"),
        ("device", f"{result['device']} ({result['torch_threads']} threads), "
                   f"cuda graphs {'on' if result['cuda_graphs'] else 'off'}, "
                   f"torch.compile {'on' if result['compiled'] else 'off'}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def evaluate(cfg: EvalConfig, planner: Planner | None = None,
             show: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Load the planner (unless given), warm up, roll out, summarise; writes --out/--plot.

    ``show(result)`` is called with the results before any file is written, so that a failed
    write (a full disk) cannot lose them."""
    from ctp.planning.planner import load_planner

    cfg.validate()
    task = task_for_env(cfg.env)
    env = task.env_name(cfg.env)
    if cfg.multi_goal and not task.goal_dims:
        raise CTPError(f"--multi-goal: {env} has no goal to vary (task {task.name!r})")
    if planner is None:
        planner = load_planner(cfg.checkpoint, cfg.device, cfg.planner, env)
    if planner.task is not task or planner.env != env:
        raise CTPError(
            f"{planner.source}: trained on {planner.payload_meta['dataset_id']} "
            f"({planner.env}), not {env}"
        )
    torch.manual_seed(cfg.seed)
    graphs = False
    if cfg.cuda_graphs:
        graphs = planner.enable_cuda_graphs(min(cfg.num_envs, cfg.episodes))
        if not graphs:
            warnings.warn("--cuda-graphs needs a CUDA device; planning eagerly", stacklevel=2)
    warm = min(cfg.num_envs, cfg.episodes)
    if planner.config.compile and cfg.progress:
        print(compile_note(), file=sys.stderr, flush=True)
    for _ in range(WARMUP_PLANS):
        planner.plan(np.zeros((warm, planner.state_dim), np.float32),
                     np.zeros((warm, planner.task.goal_dims), np.float32))
    episodes = run_episodes(planner, cfg)
    result = summarize(planner, cfg, episodes, graphs)
    if show is not None:
        show(result)
    if cfg.out:
        write_json(cfg.out, result)
    if cfg.plot:
        task.plot(env, episodes[: cfg.plot_episodes], cfg.plot,
                  title=f"{env}: {result['sampler']} NFE {result['nfe']}, "
                        f"K={result['candidates']}")
    return result
