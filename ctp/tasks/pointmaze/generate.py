"""Generate D4RL-recipe PointMaze datasets with the waypoint expert, in Minari format.

Recipe (docs/design.md section 6): continuing task with the goal re-sampled when reached,
the waypoint expert's PD action plus N(0, 0.5^2) noise, clipped to [-1, 1], one Minari episode per
goal reached (truncated on success), seed 123, 1M steps. Reference scores are Minari's: the mean
return of a random policy and of the (noise-free) expert over 100 episodes of the eval env.

The episodes are consecutive segments of one physical run (each starts where the previous one
stopped); the metadata says so under ``CONTINUOUS_KEY`` so that windows may span them.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ctp.data.minari_io import CONTINUOUS_KEY, dataset_dir, staged_dataset, writing
from ctp.tasks.maze_grid import MazeGeometry
from ctp.tasks.pointmaze.expert import WaypointExpert
from ctp.tasks.pointmaze.maze import make_env
from ctp.tasks.pointmaze.spec import MazeSpec, get_maze_spec
from ctp.utils.errors import CTPError
from ctp.utils.validation import MAX_SEED, check_options, int_option

ACTION_NOISE = 0.5
REF_EPISODES = 100


@dataclass
class GenerateConfig:
    """What ``ctp data generate`` makes."""

    maze: MazeSpec
    steps: int = 1_000_000
    seed: int = 123
    force: bool = False
    progress: bool = True


@dataclass
class GenerateResult:
    dataset_id: str
    steps: int
    episodes: int
    ref_min_score: float
    ref_max_score: float
    seconds: float


def _collect(cfg: GenerateConfig) -> list:
    """Roll the noisy expert for ``cfg.steps`` steps; returns Minari episode buffers."""
    from minari.data_collector import EpisodeBuffer
    from tqdm import tqdm

    env = make_env(cfg.maze, eval_goal=False, reset_target=True, max_episode_steps=cfg.steps + 1)
    rng = np.random.default_rng(cfg.seed)
    expert = WaypointExpert(MazeGeometry(cfg.maze.layout), rng)
    obs, _ = env.reset(seed=cfg.seed)
    keys = ("observation", "achieved_goal", "desired_goal")
    stream = {k: np.empty((cfg.steps + 1, obs[k].shape[0])) for k in keys}
    actions = np.empty((cfg.steps, 2), dtype=np.float32)
    rewards = np.empty(cfg.steps)
    success = np.zeros(cfg.steps, dtype=bool)
    for k in keys:
        stream[k][0] = obs[k]
    for t in tqdm(range(cfg.steps), desc=f"generate {cfg.maze.env_name}", unit="step",
                  disable=not cfg.progress, mininterval=1.0):
        action = np.clip(expert.pd_action(obs) + rng.normal(0.0, ACTION_NOISE, 2), -1.0, 1.0)
        obs, reward, _, _, info = env.step(action)
        actions[t], rewards[t], success[t] = action, reward, info["success"]
        for k in keys:
            stream[k][t + 1] = obs[k]
    env.close()
    # One episode per goal reached; the last, unfinished one ends at the step budget.
    ends = np.flatnonzero(success) + 1
    if len(ends) == 0 or ends[-1] != cfg.steps:
        ends = np.append(ends, cfg.steps)
    buffers, start = [], 0
    for i, end in enumerate(ends):
        truncs = np.zeros(end - start, dtype=bool)
        truncs[-1] = True
        observations = {k: stream[k][start : end + 1] for k in keys}
        if i > 0:
            # The env builds an observation before re-sampling the goal, so the state shared
            # with the previous episode still names the old goal; give it this episode's goal.
            goals = observations["desired_goal"].copy()
            goals[0] = goals[1]
            observations["desired_goal"] = goals
        buffers.append(
            EpisodeBuffer(
                id=i,
                seed=cfg.seed if i == 0 else None,
                observations=observations,
                actions=actions[start:end],
                rewards=rewards[start:end],
                terminations=np.zeros(end - start, dtype=bool),
                truncations=truncs,
            )
        )
        start = end
    return buffers


def reference_scores(maze: MazeSpec, episodes: int = REF_EPISODES) -> tuple[float, float]:
    """(random, expert) mean returns over ``episodes`` eval-env episodes, as Minari computes."""
    from minari.utils import get_average_reference_score

    env = make_env(maze, eval_goal=True)
    env.action_space.seed(123)  # the random policy is reproducible, like the env resets
    ref_min = get_average_reference_score(env, lambda _: env.action_space.sample(), episodes)
    expert = WaypointExpert(MazeGeometry(maze.layout), np.random.default_rng(123), jitter=False)
    ref_max = get_average_reference_score(env, expert.act, episodes)
    env.close()
    return ref_min, ref_max


def generate_dataset(cfg: GenerateConfig) -> GenerateResult:
    """Generate and store ``cfg.maze.dataset_id``; refuses to overwrite unless ``force``."""
    import minari

    check_options([int_option("--steps", cfg.steps, 2),
                   int_option("--seed", cfg.seed, 0, MAX_SEED)])
    dataset_id = cfg.maze.dataset_id
    if dataset_dir(dataset_id).exists() and not cfg.force:
        raise CTPError(
            f"{dataset_id} already exists at {dataset_dir(dataset_id)}; pass --force to regenerate"
        )
    start = time.perf_counter()
    buffers = _collect(cfg)
    if cfg.progress:
        print(f"reference scores of {cfg.maze.env_name}: {REF_EPISODES} episodes each of a "
              "random policy and the noise-free expert", file=sys.stderr, flush=True)
    ref_min, ref_max = reference_scores(cfg.maze)
    env = make_env(cfg.maze, eval_goal=False, reset_target=True)
    eval_env = make_env(cfg.maze, eval_goal=True)
    with staged_dataset(dataset_id, cfg.force), warnings.catch_warnings():
        # No code permalink or author e-mail on purpose: the dataset is made locally.
        warnings.simplefilter("ignore", UserWarning)
        dataset = minari.create_dataset_from_buffers(
            dataset_id=dataset_id,
            buffer=writing(buffers, dataset_id, cfg.progress),
            env=env,
            eval_env=eval_env,
            algorithm_name="ctp-waypoint-expert",
            author="ctp",
            ref_min_score=ref_min,
            ref_max_score=ref_max,
            description=(
                f"D4RL-recipe PointMaze {cfg.maze.name} data generated by ctp: waypoint expert "
                f"with N(0, {ACTION_NOISE}^2) action noise, {cfg.steps} steps, seed {cfg.seed}; "
                "episodes are consecutive segments of one continuing run."
            ),
        )
        dataset.storage.update_metadata({CONTINUOUS_KEY: True})
    env.close()
    eval_env.close()
    return GenerateResult(
        dataset_id, cfg.steps, len(buffers), ref_min, ref_max, time.perf_counter() - start
    )


def generate_by_name(name: str, steps: int = 1_000_000, seed: int = 123, force: bool = False,
                     progress: bool = True, **options: object) -> str:
    """``ctp data generate pointmaze-<maze>``: generate it, return the one-line summary."""
    if any(options.values()):
        given = ", ".join(f"--{k.replace('_', '-')}" for k, v in options.items() if v)
        raise CTPError(f"{given}: only for locomotion and AntMaze datasets, not {name}")
    result = generate_dataset(GenerateConfig(get_maze_spec(name), steps=steps, seed=seed,
                                             force=force, progress=progress))
    return (f"wrote {result.dataset_id}: {result.steps} steps, {result.episodes} episodes, "
            f"ref_min_score {result.ref_min_score:.2f}, ref_max_score "
            f"{result.ref_max_score:.2f}, {result.seconds:.0f} s")
