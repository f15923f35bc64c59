"""Locomotion datasets: SAC behaviour runs, medium sampling, replay export, loader, catalog.

Everything is real and tiny: stable-baselines3 SAC on Hopper-v4 for a few thousand steps,
Minari datasets written and read back, the shipped actors loaded as the CLI loads them.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, run_main

from ctp.data.catalog import dataset_info, list_datasets
from ctp.nn.actor import load_actor
from ctp.tasks import dataset_names
from ctp.tasks.locomotion.behaviour import BehaviourConfig, evaluate_actor, train_behaviour
from ctp.tasks.locomotion.generate import (
    LocomotionGenerateConfig,
    generate_locomotion,
    shipped_actor_path,
)
from ctp.tasks.locomotion.loader import load_locomotion_dataset
from ctp.tasks.locomotion.spec import DATASET_NAMES, TASKS, get_task, parse_dataset_name
from ctp.utils.errors import CTPError

HOPPER_MEDIUM = "ctp/mujoco/hopper/medium-v1"
HOPPER_REPLAY = "ctp/mujoco/hopper/medium-replay-v1"


def tiny_run(run_dir, **overrides) -> BehaviourConfig:
    """A Hopper SAC run of 1000-step evaluations that any evaluation return ends."""
    cfg = BehaviourConfig("hopper", run_dir=str(run_dir), max_steps=3000, eval_every=1000,
                          eval_episodes=1, learning_starts=500, target=-1000.0, check_episodes=1,
                          check_min=-1000.0, progress=False)
    return dataclasses.replace(cfg, **overrides)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A SAC run stopped at its first evaluation (the target is below any return)."""
    torch.set_num_threads(1)
    run_dir = tmp_path_factory.mktemp("sac")
    return run_dir, train_behaviour(tiny_run(run_dir))


def test_cli_choices_are_the_tasks() -> None:
    assert set(DATASET_NAMES) <= set(dataset_names())
    assert parse_dataset_name("walker2d-medium-replay") == (TASKS["walker2d"], "medium-replay")
    with pytest.raises(CTPError, match="hopper-medium, hopper-medium-replay"):
        parse_dataset_name("hopper-expert")
    with pytest.raises(CTPError, match="expected one of hopper, walker2d, halfcheetah"):
        get_task("ant")
    assert get_task("hopper").normalized(3234.3) == pytest.approx(100.0)
    assert get_task("walker2d").normalized(1.629008) == pytest.approx(0.0)


@pytest.mark.slow
def test_sac_run_stops_at_target_and_exports_its_replay(finished_run) -> None:
    run_dir, result = finished_run
    assert result.step == 1000  # the first evaluation already beats the target
    rows = [json.loads(r) for r in (run_dir / "evals.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1000]
    assert (run_dir / "learning-curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    actor, info = load_actor(result.actor_path)
    assert info["step"] == 1000 and info["task"] == "hopper"
    # The logged evaluation is the shipped actor's deterministic return, reproducibly.
    again = evaluate_actor(get_task("hopper"), actor, 1, info["seed"] + 10_000)
    assert again[0] == pytest.approx(rows[0]["return_mean"], rel=1e-6)
    with np.load(result.replay_path) as replay:
        assert replay["observations"].shape == (1000, 11)
        assert replay["actions"].shape == (1000, 3)
        # In order: each transition starts where the previous ended, unless an episode ended.
        ended = (replay["terminations"] + replay["truncations"])[:-1] > 0
        same = np.all(replay["observations"][1:] == replay["next_observations"][:-1], axis=1)
        assert np.all(same | ended) and not np.all(same)


@pytest.mark.slow
def test_sac_run_resumes_and_refuses_changed_settings(tmp_path) -> None:
    torch.set_num_threads(1)
    cfg = tiny_run(tmp_path, max_steps=2000, target=1e9)
    with pytest.raises(CTPError, match="no checkpoint reached the medium target"):
        train_behaviour(cfg)
    with pytest.raises(CTPError, match="made with seed=0, not 3"):
        train_behaviour(dataclasses.replace(cfg, seed=3))
    with pytest.raises(CTPError, match="no checkpoint reached"):
        train_behaviour(dataclasses.replace(cfg, max_steps=3000))  # a longer budget resumes
    rows = [json.loads(r) for r in (tmp_path / "evals.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1000, 2000, 3000]
    assert rows[2]["seconds"] > rows[1]["seconds"]
    assert len(list((tmp_path / "checkpoints").glob("actor-*.pt"))) == 3


@pytest.mark.slow
def test_a_checkpoint_on_target_must_also_pass_the_stochastic_check(tmp_path) -> None:
    torch.set_num_threads(1)
    cfg = tiny_run(tmp_path, max_steps=2000, check_min=1e9, check_episodes=2)
    with pytest.raises(CTPError, match=r"stochastic check >= 1000000000.0"):
        train_behaviour(cfg)
    rows = [json.loads(r) for r in (tmp_path / "evals.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1000, 2000]
    assert all(np.isfinite(r["stochastic_normalized"]) for r in rows)
    assert not (tmp_path / "medium.json").exists()


@pytest.mark.slow
def test_medium_replay_dataset_is_the_replay_buffer(finished_run, own_root) -> None:
    run_dir, result = finished_run
    made = generate_locomotion(LocomotionGenerateConfig(
        "hopper-medium-replay", run_dir=str(run_dir), progress=False))
    assert made.dataset_id == HOPPER_REPLAY and made.steps == 1000
    data = load_locomotion_dataset(HOPPER_REPLAY)
    with np.load(result.replay_path) as replay:
        np.testing.assert_allclose(data.observations, replay["observations"], rtol=1e-6)
        np.testing.assert_allclose(data.actions, replay["actions"])
        np.testing.assert_allclose(data.rewards, replay["rewards"], rtol=1e-6)
    assert len(data.episode_starts) == made.episodes > 1
    assert data.env_id == "Hopper-v4"
    assert data.episode_returns().mean() == pytest.approx(made.return_mean, rel=1e-5)


@pytest.mark.slow
def test_train_policy_medium_samples_the_actor_not_the_replay(finished_run, own_root,
                                                              monkeypatch) -> None:
    _, result = finished_run
    import ctp.tasks.locomotion.generate as generate

    monkeypatch.setattr(generate, "train_behaviour", lambda cfg: result)  # the finished run
    made = generate_locomotion(LocomotionGenerateConfig("hopper-medium", steps=300,
                                                        train_policy=True, progress=False))
    assert made.steps == 300  # 300 sampled steps, not the run's 1000-step replay buffer
    assert load_locomotion_dataset(HOPPER_MEDIUM).num_steps == 300


@pytest.mark.slow
def test_medium_dataset_from_an_actor(finished_run, own_root, monkeypatch) -> None:
    _, result = finished_run
    import ctp.tasks.locomotion.generate as generate

    monkeypatch.setattr(generate, "shipped_actor_path", lambda task: result.actor_path)
    made = generate_locomotion(LocomotionGenerateConfig("hopper-medium", steps=2500,
                                                        progress=False))
    data = load_locomotion_dataset(HOPPER_MEDIUM)
    assert data.num_steps == 2500 and len(data.episode_starts) == made.episodes
    lengths = np.diff(np.append(data.episode_starts, data.num_steps))
    assert lengths.max() <= 1000
    # Every episode but the budget-cut last one ends in a termination or the time limit.
    ends = np.append(data.episode_starts[1:], data.num_steps) - 1
    assert all(data.terminals[e] or length == 1000 for e, length in zip(ends[:-1], lengths))
    info = dataset_info(HOPPER_MEDIUM)
    assert info.task == "locomotion" and info.env_id == "Hopper-v4"
    assert (info.ref_min_score, info.ref_max_score) == (-20.272305, 3234.3)
    assert info.normalized_mean == pytest.approx(made.normalized_mean, rel=1e-5)
    assert info.random_policy_return == pytest.approx(made.random_return)
    assert list_datasets() == ([HOPPER_MEDIUM], {})
    with pytest.raises(CTPError, match="already exists"):
        generate_locomotion(LocomotionGenerateConfig("hopper-medium", steps=10, progress=False))


@pytest.mark.slow
def test_killed_generation_leaves_nothing(finished_run, own_root, monkeypatch) -> None:
    run_dir, _ = finished_run
    import minari

    real = minari.create_dataset_from_buffers

    def killed(*args, **kwargs):
        real(*args, **kwargs)  # the dataset is written (into the staging folder) ...
        raise KeyboardInterrupt  # ... and the process is killed before it moves in

    monkeypatch.setattr(minari, "create_dataset_from_buffers", killed)
    with pytest.raises(KeyboardInterrupt):
        generate_locomotion(LocomotionGenerateConfig(
            "hopper-medium-replay", run_dir=str(run_dir), progress=False))
    assert list_datasets() == ([], {})
    assert not (own_root / HOPPER_REPLAY).exists()
    assert not [p for p in own_root.iterdir() if p.name.startswith(".ctp-staging-")]


def test_medium_replay_without_a_run_says_what_it_costs(tmp_path, own_root) -> None:
    with pytest.raises(CTPError, match="needs --train-policy"):
        generate_locomotion(LocomotionGenerateConfig(
            "walker2d-medium-replay", run_dir=str(tmp_path / "none"), progress=False))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("generate", "hopper-expert"), "expected one of pointmaze-umaze"),
        (("generate", "pointmaze-umaze", "--train-policy"), "only for locomotion and AntMaze"),
        (("generate", "walker2d-medium-replay", "--run-dir", "nowhere"), "needs --train-policy"),
        (("generate", "hopper-medium", "--steps", "0"), "--steps: expected an int >= 1"),
        (("generate", "hopper-medium", "--policy-seed", "-1"), "--policy-seed"),
        (("info", HOPPER_MEDIUM), "ctp data generate hopper-medium"),
        (("info", "mujoco/ant/medium-v0"), "not a dataset id of any task"),
    ],
    ids=["unknown-name", "maze-with-policy", "replay-without-run", "zero-steps",
         "negative-policy-seed", "missing-dataset", "unknown-task-id"],
)
def test_cli_bad_input(args, message, own_root, capsys) -> None:
    assert_one_line_error(run_main(capsys, "data", *args), message)
    assert not (own_root / HOPPER_MEDIUM).exists()


def write_dataset(dataset_id: str, env_id: str, obs_dim: int, act_dim: int,
                  steps: int = 40, nan_at: int | None = None) -> None:
    """A small Minari dataset of random transitions under ``dataset_id``."""
    import minari
    from minari.data_collector import EpisodeBuffer

    rng = np.random.default_rng(0)
    obs = rng.normal(size=(steps + 1, obs_dim))
    if nan_at is not None:
        obs[nan_at, 0] = np.nan
    buffer = EpisodeBuffer(
        id=0, observations=obs, actions=rng.uniform(-1, 1, (steps, act_dim)).astype(np.float32),
        rewards=rng.normal(size=steps), terminations=np.zeros(steps, bool),
        truncations=np.eye(1, steps, steps - 1, dtype=bool)[0])
    import gymnasium as gym

    minari.create_dataset_from_buffers(
        dataset_id, [buffer], env=env_id,
        observation_space=gym.spaces.Box(-np.inf, np.inf, (obs_dim,)),
        action_space=gym.spaces.Box(-1, 1, (act_dim,)), algorithm_name="test", author="test",
        code_permalink="none", author_email="none", ref_min_score=0.0, ref_max_score=1.0)


def test_loader_checks_spaces_and_values(own_root) -> None:
    write_dataset("ctp/mujoco/walker2d/medium-v1", "Hopper-v4", 11, 3)
    with pytest.raises(CTPError, match=r"observation_space: expected Box of shape \(17,\)"):
        load_locomotion_dataset("ctp/mujoco/walker2d/medium-v1")
    usable, unusable = list_datasets()
    assert usable == [] and "observation_space" in unusable["ctp/mujoco/walker2d/medium-v1"]
    write_dataset("ctp/mujoco/hopper/medium-v1", "Hopper-v4", 11, 3, nan_at=7)
    with pytest.raises(CTPError, match="observations holds NaN or inf .first at step 7"):
        load_locomotion_dataset(HOPPER_MEDIUM)
    with pytest.raises(CTPError, match="ctp data generate hopper-medium-replay"):
        load_locomotion_dataset(HOPPER_REPLAY)
    with pytest.raises(CTPError, match="place a copy"):
        load_locomotion_dataset("mujoco/hopper/medium-v0")


def test_public_minari_copy_is_read_and_flagged(own_root) -> None:
    """A public ``mujoco/<task>/medium-v0`` copy (v5 envs) loads; info says it is not D4RL's."""
    import gymnasium as gym
    import minari
    from minari.data_collector import EpisodeBuffer

    v5 = gym.make("HalfCheetah-v5")
    obs, _ = v5.reset(seed=0)
    observations, actions, rewards = [obs], [], []
    for _ in range(30):
        action = v5.action_space.sample()
        obs, reward, *_ = v5.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
    buffer = EpisodeBuffer(id=0, observations=np.array(observations),
                           actions=np.array(actions), rewards=np.array(rewards),
                           terminations=np.zeros(30, bool),
                           truncations=np.eye(1, 30, 29, dtype=bool)[0])
    minari.create_dataset_from_buffers("mujoco/halfcheetah/medium-v0", [buffer], env=v5,
                                       algorithm_name="test", author="test",
                                       code_permalink="none", author_email="none")
    data = load_locomotion_dataset("mujoco/halfcheetah/medium-v0")
    assert data.env_id == "HalfCheetah-v5" and data.num_steps == 30
    np.testing.assert_allclose(data.rewards, np.array(rewards, np.float32))
    info = dataset_info("mujoco/halfcheetah/medium-v0")
    assert "v5 dynamics" in info.note and info.task == "locomotion"


@pytest.mark.parametrize("task", sorted(TASKS))
def test_shipped_behaviour_actor(task) -> None:
    path = shipped_actor_path(task)
    if not path.exists():
        pytest.skip(f"{path.name}: not shipped yet")
    actor, info = load_actor(path)
    spec = get_task(task)
    assert (actor.latent_pi[0].in_features, actor.mu.out_features) == (spec.obs_dim,
                                                                       spec.act_dim)
    assert info["env_id"] == spec.env_id and info["step"] > 0
    assert info["eval_normalized"] >= spec.medium_target
    assert path.stat().st_size < 1_000_000
