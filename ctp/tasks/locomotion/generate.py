"""Locomotion datasets in Minari format: ``medium`` from a behaviour actor, ``medium-replay``
from its SAC run's replay buffer.

``medium``: ``steps`` transitions (1M) of the actor with its stochastic actions, 1000-step
episodes ended as the env reports (termination or time limit), the last one truncated at the
budget. ``medium-replay``: every transition of the SAC run up to its medium checkpoint, in the
order it was collected (random warm-up actions included), split into episodes at the env's
terminations and truncations. Both store D4RL's reference constants as ``ref_min_score`` /
``ref_max_score`` and the random policy's mean return over 100 episodes.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ctp.data.minari_io import (
    RANDOM_RETURN_KEY,
    REF_SOURCE_KEY,
    dataset_dir,
    staged_dataset,
    writing,
)
from ctp.nn.actor import SquashedGaussianActor, load_actor
from ctp.tasks.locomotion.behaviour import BehaviourConfig, train_behaviour
from ctp.tasks.locomotion.spec import (
    BEHAVIOUR_KEY,
    REF_SOURCE,
    LocomotionSpec,
    parse_dataset_name,
)
from ctp.utils.errors import CTPError
from ctp.utils.stats import mean_se
from ctp.utils.validation import MAX_SEED, check_options, int_option

REF_EPISODES = 100


def shipped_actor_path(task: str) -> Path:
    """The medium behaviour actor bundled with the package for ``task``."""
    return Path(str(resources.files("ctp") / "assets" / "behaviour" / f"{task}-medium.pt"))


@dataclass
class LocomotionGenerateConfig:
    """What ``ctp data generate <task>-<kind>`` makes (defaults are the CLI's)."""

    name: str  # e.g. "hopper-medium"
    steps: int = 1_000_000  # medium only: transitions sampled from the actor
    seed: int = 123  # medium only: env resets and action noise
    force: bool = False
    train_policy: bool = False  # train (or resume) the SAC run instead of the shipped actor
    policy_seed: int = 0
    run_dir: str = ""  # the SAC run's folder; default runs/behaviour/<task>-seed<policy_seed>
    progress: bool = True


@dataclass
class LocomotionGenerateResult:
    dataset_id: str
    steps: int
    episodes: int
    return_mean: float
    return_se: float
    normalized_mean: float
    random_return: float
    seconds: float


def _buffer(i: int, seed: int | None, obs: np.ndarray, act: np.ndarray, rew: np.ndarray,
            term: np.ndarray, trunc: np.ndarray):
    from minari.data_collector import EpisodeBuffer

    return EpisodeBuffer(id=i, seed=seed, observations=obs, actions=act, rewards=rew,
                         terminations=term, truncations=trunc)


def sample_episodes(
    spec: LocomotionSpec, actor: SquashedGaussianActor, steps: int, seed: int,
    progress: bool = True,
) -> list:
    """Roll ``actor`` (stochastic actions) for ``steps`` env steps -> Minari episode buffers."""
    from tqdm import tqdm

    env = spec.make_env()
    generator = torch.Generator().manual_seed(seed)
    buffers: list = []
    obs, _ = env.reset(seed=seed)
    ep_obs, ep_act, ep_rew, ep_term = [obs], [], [], []
    with torch.inference_mode():
        for t in tqdm(range(steps), desc=f"sample {spec.env_id}", unit="step",
                      disable=not progress, mininterval=1.0):
            action = actor(torch.as_tensor(obs, dtype=torch.float32)[None],
                           generator=generator)[0].numpy()
            obs, reward, terminated, truncated, _ = env.step(action)
            ep_obs.append(obs)
            ep_act.append(action)
            ep_rew.append(reward)
            ep_term.append(terminated)
            if terminated or truncated or t == steps - 1:
                n = len(ep_act)
                trunc = np.zeros(n, dtype=bool)
                trunc[-1] = not terminated
                buffers.append(_buffer(len(buffers), seed if not buffers else None,
                                       np.asarray(ep_obs), np.asarray(ep_act, np.float32),
                                       np.asarray(ep_rew), np.asarray(ep_term), trunc))
                if t < steps - 1:
                    obs, _ = env.reset()
                    ep_obs, ep_act, ep_rew, ep_term = [obs], [], [], []
    env.close()
    return buffers


def replay_episodes(path: str | Path) -> list:
    """A SAC run's ``replay.npz`` (transitions in order) -> Minari episode buffers."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        obs, nxt = arrays["observations"], arrays["next_observations"]
        act, rew = arrays["actions"], arrays["rewards"]
        term, trunc = arrays["terminations"] > 0, arrays["truncations"] > 0
    except (OSError, ValueError, KeyError) as exc:
        raise CTPError(f"{path}: not a readable replay export ({exc})") from None
    if not all(np.isfinite(a).all() for a in (obs, nxt, act, rew)):
        raise CTPError(f"{path}: replay export holds NaN or inf values")
    ends = np.flatnonzero(term | trunc) + 1
    if len(ends) == 0 or ends[-1] != len(act):
        ends = np.append(ends, len(act))
    buffers, start = [], 0
    for end in ends:
        ep_trunc = trunc[start:end].copy()
        ep_trunc[-1] = not term[end - 1]  # the run's last, unfinished episode ends truncated
        observations = np.concatenate([obs[start:end], nxt[end - 1 : end]])
        buffers.append(_buffer(len(buffers), None, observations, act[start:end].astype(np.float32),
                               rew[start:end].astype(np.float64), term[start:end], ep_trunc))
        start = end
    return buffers


def random_policy_return(spec: LocomotionSpec, episodes: int = REF_EPISODES) -> float:
    """Mean return of uniform random actions over ``episodes`` episodes (seeded)."""
    env = spec.make_env()
    env.action_space.seed(123)
    total = 0.0
    for i in range(episodes):
        env.reset(seed=123 + i)
        done = False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += reward
            done = terminated or truncated
    env.close()
    return total / episodes


def _behaviour(cfg: LocomotionGenerateConfig, spec: LocomotionSpec, kind: str):
    """(actor path, replay path or None) for the dataset, training the SAC run if asked."""
    run_cfg = BehaviourConfig(spec.name, run_dir=cfg.run_dir, seed=cfg.policy_seed,
                              progress=cfg.progress).resolved()
    if cfg.train_policy:
        result = train_behaviour(run_cfg)
        replay = Path(result.replay_path) if kind == "medium-replay" else None
        return Path(result.actor_path), replay
    if kind == "medium":
        return shipped_actor_path(spec.name), None
    replay = Path(run_cfg.run_dir) / "replay.npz"
    if not replay.exists():
        raise CTPError(
            f"{replay}: no SAC run to export; {spec.name}-medium-replay is that run's replay "
            f"buffer, so it needs --train-policy (SAC from scratch, about 1-1.5 h on one thread)"
        )
    return Path(run_cfg.run_dir) / "medium-actor.pt", replay


def generate_locomotion(cfg: LocomotionGenerateConfig) -> LocomotionGenerateResult:
    """Generate and store one locomotion dataset; refuses to overwrite unless ``force``."""
    import minari

    spec, kind = parse_dataset_name(cfg.name)
    check_options([
        int_option("--steps", cfg.steps),
        int_option("--seed", cfg.seed, 0, MAX_SEED),
        int_option("--policy-seed", cfg.policy_seed, 0, MAX_SEED),
    ])
    dataset_id = spec.dataset_id(kind)
    if dataset_dir(dataset_id).exists() and not cfg.force:
        raise CTPError(
            f"{dataset_id} already exists at {dataset_dir(dataset_id)}; pass --force to regenerate"
        )
    start = time.perf_counter()
    actor_path, replay = _behaviour(cfg, spec, kind)
    actor, info = load_actor(actor_path)
    if (actor.latent_pi[0].in_features, actor.mu.out_features) != (spec.obs_dim, spec.act_dim):
        raise CTPError(f"{actor_path}: actor is for another task (obs/action dims differ)")
    if replay is None:
        buffers = sample_episodes(spec, actor, cfg.steps, cfg.seed, cfg.progress)
        how = (f"{cfg.steps} transitions of the medium SAC actor's stochastic actions, "
               f"seed {cfg.seed}")
    else:
        buffers = replay_episodes(replay)
        how = "every transition of the SAC run's replay buffer up to the medium checkpoint"
    returns = np.array([float(np.sum(b.rewards)) for b in buffers])
    if cfg.progress:
        print(f"random-policy return of {spec.env_id}: {REF_EPISODES} episodes",
              file=sys.stderr, flush=True)
    random_return = random_policy_return(spec)
    with staged_dataset(dataset_id, cfg.force), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no code permalink or e-mail: the data is made locally
        dataset = minari.create_dataset_from_buffers(
            dataset_id=dataset_id, buffer=writing(buffers, dataset_id, cfg.progress),
            env=spec.env_id,
            algorithm_name="stable-baselines3 SAC (ctp behaviour policy)", author="ctp",
            ref_min_score=spec.ref_min_score, ref_max_score=spec.ref_max_score,
            description=(f"D4RL-recipe {spec.name} {kind} data generated by ctp on "
                         f"{spec.env_id}: {how}."),
        )
        dataset.storage.update_metadata({
            RANDOM_RETURN_KEY: random_return,
            REF_SOURCE_KEY: REF_SOURCE,
            BEHAVIOUR_KEY: {k: v for k, v in info.items() if isinstance(v, (int, float, str))},
        })
    summary = mean_se(returns)
    return LocomotionGenerateResult(
        dataset_id, int(sum(len(b.actions) for b in buffers)), len(buffers),
        summary["mean"], summary["se"], spec.normalized(summary["mean"]), random_return,
        time.perf_counter() - start,
    )


def generate_by_name(name: str, steps: int = 1_000_000, seed: int = 123, force: bool = False,
                     progress: bool = True, train_policy: bool = False, policy_seed: int = 0,
                     run_dir: str = "") -> str:
    """``ctp data generate <task>-<kind>``: generate it, return the one-line summary."""
    import torch

    torch.set_num_threads(1)  # SAC's small MLPs: one thread is fastest, and leaves a core free
    result = generate_locomotion(LocomotionGenerateConfig(
        name, steps=steps, seed=seed, force=force, train_policy=train_policy,
        policy_seed=policy_seed, run_dir=run_dir, progress=progress,
    ))
    return (f"wrote {result.dataset_id}: {result.steps} steps, {result.episodes} episodes, "
            f"return {result.return_mean:.1f} +- {result.return_se:.1f} "
            f"(D4RL-normalised {result.normalized_mean:.1f}), random policy "
            f"{result.random_return:.1f}, {result.seconds:.0f} s")
