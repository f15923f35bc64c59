"""Generate the D4RL-recipe AntMaze datasets in Minari format.

Recipe (docs/design.md, "AntMaze"): the data-generating controller (``ctp.tasks.antmaze.expert``:
maze solver + the shipped ant controller, actions scaled by ``ACTION_SCALE``) acts, Gaussian noise
N(0, 0.2^2) is added to its action, clipped to [-1, 1]; 1M steps, seed 123. Episodes are
D4RL's: the env is reset every ``episode_steps`` steps (700 umaze, 1000 otherwise) with a new
start and goal, and within an episode a reached goal is replaced by a new one (play and
diverse kinds); the fixed-goal umaze restarts at its start cell when the goal is reached.
Episodes are therefore separate runs (windows never cross them). The evaluation task is
recorded as the dataset's eval env, so
``minari.load_dataset(id).recover_environment(eval_env=True)`` returns it.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from ctp.data.minari_io import dataset_dir, staged_dataset, writing
from ctp.tasks.antmaze.envs import make_env
from ctp.tasks.antmaze.expert import ACTION_SCALE, SHIPPED_ACTOR, AntExpert, load_controller
from ctp.tasks.antmaze.spec import (
    ACTION_NOISE,
    REF_MAX_SCORE,
    REF_MIN_SCORE,
    AntMazeSpec,
    get_spec,
)
from ctp.utils.errors import CTPError
from ctp.utils.validation import check_options

OBS_KEYS = ("observation", "achieved_goal", "desired_goal")


@dataclass
class GenerateConfig:
    """What ``ctp data generate antmaze-<name>`` makes."""

    spec: AntMazeSpec
    steps: int = 1_000_000
    seed: int = 123
    force: bool = False
    progress: bool = True
    actor_path: str = str(SHIPPED_ACTOR)
    noise: float = ACTION_NOISE


def _collect(cfg: GenerateConfig) -> list:
    """Roll the noisy controller for ``cfg.steps`` steps; returns Minari episode buffers."""
    from minari.data_collector import EpisodeBuffer
    from tqdm import tqdm

    spec = cfg.spec
    env = make_env(spec, evaluation=False)
    rng = np.random.default_rng(cfg.seed)
    expert = AntExpert(spec, load_controller(cfg.actor_path), 1, rng)
    buffers: list = []

    def new_episode(seed: int | None) -> dict[str, list]:
        obs, _ = env.reset(seed=seed)
        expert.reset(0)
        return {"obs": [obs], "actions": [], "rewards": []}

    def close_episode(ep: dict[str, list]) -> None:
        n = len(ep["actions"])
        truncations = np.zeros(n, dtype=bool)
        truncations[-1] = True
        buffers.append(EpisodeBuffer(
            id=len(buffers), seed=cfg.seed if not buffers else None,
            observations={k: np.stack([o[k] for o in ep["obs"]]) for k in OBS_KEYS},
            actions=np.asarray(ep["actions"], dtype=np.float32),
            rewards=np.asarray(ep["rewards"]), terminations=np.zeros(n, dtype=bool),
            truncations=truncations))

    episode = new_episode(cfg.seed)
    for t in tqdm(range(cfg.steps), desc=f"generate {spec.env_name}", unit="step",
                  disable=not cfg.progress, mininterval=1.0):
        obs = episode["obs"][-1]
        batch = {k: v[None] for k, v in obs.items()}
        action = np.clip(expert.act(batch)[0] + rng.normal(0.0, cfg.noise, 8), -1.0, 1.0)
        obs, reward, _, truncated, info = env.step(action)
        episode["obs"].append(obs)
        episode["actions"].append(action)
        episode["rewards"].append(reward)
        if truncated or (info["success"] and not spec.continuing) or t == cfg.steps - 1:
            close_episode(episode)
            if t < cfg.steps - 1:
                episode = new_episode(None)
    env.close()
    return buffers


def generate_dataset(cfg: GenerateConfig) -> dict[str, float | int | str]:
    """Generate and store ``cfg.spec.dataset_id``; refuses to overwrite unless ``force``."""
    import minari

    check_options([
        (cfg.steps >= 2, "--steps", "at least 2", cfg.steps),
        (0 <= cfg.seed < 2**32, "--seed", "an integer in 0..2^32-1", cfg.seed),
        (0 <= cfg.noise < 10, "--noise", "a standard deviation in [0, 10)", cfg.noise),
    ])
    dataset_id = cfg.spec.dataset_id
    if dataset_dir(dataset_id).exists() and not cfg.force:
        raise CTPError(f"{dataset_id} already exists at {dataset_dir(dataset_id)}; pass "
                       "--force to regenerate")
    load_controller(cfg.actor_path)  # a missing or foreign file fails before any work
    start = time.perf_counter()
    buffers = _collect(cfg)
    env = make_env(cfg.spec, evaluation=False)
    eval_env = make_env(cfg.spec)
    with staged_dataset(dataset_id, cfg.force), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no code permalink: made locally
        minari.create_dataset_from_buffers(
            dataset_id=dataset_id, buffer=writing(buffers, dataset_id, cfg.progress),
            env=env, eval_env=eval_env,
            algorithm_name="ctp-bfs-waypoints+sac-ant-controller", author="ctp",
            ref_min_score=REF_MIN_SCORE, ref_max_score=REF_MAX_SCORE,
            description=(
                f"D4RL-recipe AntMaze {cfg.spec.name} data generated by ctp: BFS waypoints "
                f"followed by the shipped SAC ant controller (actions x {ACTION_SCALE}) with "
                f"N(0, {cfg.noise}^2) action noise, {cfg.steps} steps, seed {cfg.seed}."
            ),
        )
    env.close()
    eval_env.close()
    return {"dataset_id": dataset_id, "steps": cfg.steps, "episodes": len(buffers),
            "seconds": time.perf_counter() - start}


def generate_by_name(name: str, steps: int = 1_000_000, seed: int = 123, force: bool = False,
                     progress: bool = True, train_policy: bool = False, policy_seed: int = 0,
                     run_dir: str = "") -> str:
    """``ctp data generate antmaze-<name>``: with ``train_policy``, train (or resume) the ant
    controller first and generate with it; returns the one-line summary."""
    import torch

    torch.set_num_threads(1)  # the controller's small MLP: one thread is fastest
    spec = get_spec(name)
    if not train_policy and (run_dir or policy_seed):
        raise CTPError(f"--run-dir / --policy-seed: only with --train-policy ({name})")
    actor_path = str(SHIPPED_ACTOR)
    if train_policy:
        from ctp.tasks.antmaze.ant_policy import AntPolicyConfig, train_ant_policy

        actor_path = train_ant_policy(AntPolicyConfig(run_dir=run_dir, seed=policy_seed,
                                                      progress=progress))["actor_path"]
    result = generate_dataset(GenerateConfig(spec, steps=steps, seed=seed, force=force,
                                             progress=progress, actor_path=actor_path))
    return (f"wrote {result['dataset_id']}: {result['steps']} steps, {result['episodes']} "
            f"episodes, {result['seconds']:.0f} s")
