"""Dataset generation (Minari format), loading, normalising, windows and ``ctp data``.

Everything runs on real tiny datasets in temporary Minari folders: the session-wide
3000-step umaze dataset of ``conftest.tiny_umaze`` plus a few hand-built ones.
"""

import dataclasses
import io
import json
import os
import shutil

import gymnasium as gym
import minari
import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, run_ctp
from minari.data_collector import EpisodeBuffer

from ctp.data.catalog import dataset_info, list_datasets
from ctp.data.minari_io import CONTINUOUS_KEY, datasets_root
from ctp.data.normalizer import Normalizer
from ctp.data.windows import TrajectoryWindows, WindowConfig
from ctp.tasks.pointmaze.generate import GenerateConfig, generate_dataset
from ctp.tasks.pointmaze.loader import MazeData, load_maze_dataset
from ctp.tasks.pointmaze.spec import GOAL_RADIUS, get_maze_spec
from ctp.tasks.pointmaze.task import POINTMAZE as MAZE
from ctp.utils.errors import CTPError

UMAZE = "ctp/pointmaze/umaze-v1"
STEPS = 3000  # conftest.tiny_umaze
KEYS = {"observation", "achieved_goal", "desired_goal"}


@pytest.fixture
def data(minari_root) -> MazeData:
    return load_maze_dataset(UMAZE)


def copy_tiny(tiny_umaze, dest) -> None:
    """Copy the tiny dataset (and its namespace metadata) into another Minari folder."""
    shutil.copytree(tiny_umaze / "ctp", dest / "ctp")


def maze_spaces(obs_dim: int = 4) -> gym.spaces.Dict:
    return gym.spaces.Dict(
        {
            "observation": gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float64),
            "achieved_goal": gym.spaces.Box(-np.inf, np.inf, (2,), np.float64),
            "desired_goal": gym.spaces.Box(-np.inf, np.inf, (2,), np.float64),
        }
    )


def maze_buffer(i: int, first: np.ndarray, steps: int, rng: np.random.Generator) -> EpisodeBuffer:
    """A Dict-observation episode of ``steps`` steps whose first state is ``first`` [4]."""
    obs = np.concatenate([first[None], rng.normal(size=(steps, 4))])
    truncs = np.zeros(steps, dtype=bool)
    truncs[-1] = True
    return EpisodeBuffer(
        id=i,
        observations={
            "observation": obs,
            "achieved_goal": obs[:, :2].copy(),
            "desired_goal": np.zeros((steps + 1, 2)),
        },
        actions=rng.uniform(-1, 1, (steps, 2)).astype(np.float32),
        rewards=np.zeros(steps),
        terminations=np.zeros(steps, dtype=bool),
        truncations=truncs,
    )


def write_dataset(dataset_id: str, buffers, observation_space, action_space=None) -> None:
    with pytest.warns(UserWarning):  # Minari warns about the missing env / eval env
        minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            observation_space=observation_space,
            action_space=action_space or gym.spaces.Box(-1, 1, (2,), np.float32),
        )


# --- generation -------------------------------------------------------------------------------


def test_round_trip_through_minari(minari_root) -> None:
    dataset = minari.load_dataset(UMAZE)
    assert dataset.total_steps == STEPS
    episodes = list(dataset.iterate_episodes())
    assert len(episodes) == dataset.total_episodes > 5
    assert sum(len(ep.actions) for ep in episodes) == STEPS
    assert isinstance(dataset.observation_space, gym.spaces.Dict)
    assert set(dataset.observation_space.spaces) == KEYS
    assert dataset.action_space.shape == (2,)
    meta = dataset.storage.metadata
    assert meta["ref_min_score"] < meta["ref_max_score"]
    assert meta["eval_env_spec"] is not None
    assert meta["algorithm_name"] == "ctp-waypoint-expert"
    for ep in episodes:
        assert set(ep.observations) == KEYS
        steps = len(ep.actions)
        assert ep.observations["observation"].shape == (steps + 1, 4)
        assert ep.observations["achieved_goal"].shape == (steps + 1, 2)
        assert ep.observations["desired_goal"].shape == (steps + 1, 2)
        np.testing.assert_array_equal(
            ep.observations["achieved_goal"], ep.observations["observation"][:, :2]
        )
        assert np.all(np.abs(ep.actions) <= 1.0)


def test_episodes_are_goal_reaching_segments_of_one_run(minari_root) -> None:
    episodes = list(minari.load_dataset(UMAZE).iterate_episodes())
    for i, ep in enumerate(episodes):
        assert ep.truncations[-1] and not ep.truncations[:-1].any()
        assert not ep.terminations.any()
        # Sparse reward: 1 within the goal radius, and reaching the goal ends the episode.
        assert np.all(ep.rewards[:-1] == 0.0)
        final = ep.observations
        reached = np.linalg.norm(final["achieved_goal"][-1] - final["desired_goal"][-1])
        if i < len(episodes) - 1:
            assert reached <= GOAL_RADIUS
            assert ep.rewards[-1] == 1.0
            # The next episode starts where this one stopped.
            np.testing.assert_array_equal(
                episodes[i + 1].observations["observation"][0], final["observation"][-1]
            )
        # The goal is constant inside an episode, its first observation included (the env
        # reports the old goal in the state where it re-samples; the generator fixes that).
        goals = final["desired_goal"]
        np.testing.assert_array_equal(goals, np.broadcast_to(goals[0], goals.shape))
        if i > 0:
            assert not np.array_equal(goals[0], episodes[i - 1].observations["desired_goal"][0])


def test_noise_is_added_before_clipping(data) -> None:
    # Recipe: clip(PD + noise). Far from a waypoint the PD action is >> 1, so the noisy action
    # stays at the bound; clipping the PD action first would push half of those off it.
    # Measured on this dataset: 56% of action entries at +-1 (clip-first gives 34%).
    assert np.mean(np.abs(data.actions) == 1.0) > 0.45
    assert np.all(np.abs(data.actions) <= 1.0)


def test_metadata_marks_the_run_continuous(minari_root) -> None:
    meta = minari.load_dataset(UMAZE).storage.metadata
    assert meta[CONTINUOUS_KEY] is True


@pytest.mark.slow
def test_same_seed_same_data_other_seed_differs(tiny_umaze, tmp_path, monkeypatch) -> None:
    spec = get_maze_spec("umaze")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tiny_umaze))
    first = load_maze_dataset(UMAZE)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "a"))
    result = generate_dataset(GenerateConfig(spec, steps=STEPS, progress=False))
    assert (result.dataset_id, result.steps) == (UMAZE, STEPS)
    again = load_maze_dataset(UMAZE)
    assert result.episodes == len(again.episode_starts) == len(first.episode_starts)
    for field in ("observations", "actions", "rewards", "goals", "episode_starts"):
        np.testing.assert_array_equal(getattr(again, field), getattr(first, field), err_msg=field)
    assert again.ref_max_score == first.ref_max_score  # the expert run is seeded
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "b"))
    generate_dataset(GenerateConfig(spec, steps=STEPS, seed=7, progress=False))
    other = load_maze_dataset(UMAZE)
    assert other.num_steps == STEPS
    assert not np.array_equal(other.observations, first.observations)
    assert not np.array_equal(other.actions, first.actions)


def test_same_seed_same_random_reference_score(tiny_umaze, tmp_path, monkeypatch) -> None:
    from ctp.tasks.pointmaze.generate import reference_scores

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tiny_umaze))
    first = load_maze_dataset(UMAZE)
    # Same maze, same seed: the random-policy reference is recomputed from scratch.
    ref_min, ref_max = reference_scores(get_maze_spec("umaze"))
    assert ref_max == first.ref_max_score
    assert ref_min == first.ref_min_score


def test_overwrite_needs_force(tiny_umaze, own_root) -> None:
    copy_tiny(tiny_umaze, own_root)
    spec = get_maze_spec("umaze")
    with pytest.raises(CTPError, match="pass --force"):
        generate_dataset(GenerateConfig(spec, steps=200, progress=False))
    assert minari.load_dataset(UMAZE).total_steps == STEPS  # untouched
    result = generate_dataset(GenerateConfig(spec, steps=200, force=True, progress=False))
    assert result.steps == 200
    assert minari.load_dataset(UMAZE).total_steps == 200
    assert not [p for p in own_root.iterdir() if p.name.startswith(".ctp-staging-")]


def test_too_few_steps_is_a_ctp_error(own_root) -> None:
    with pytest.raises(CTPError, match="--steps"):
        generate_dataset(GenerateConfig(get_maze_spec("umaze"), steps=1, progress=False))
    assert not (own_root / UMAZE).exists()


def crash_after_writing(monkeypatch) -> list:
    real = minari.create_dataset_from_buffers
    calls = []

    def crash(*args, **kwargs):
        calls.append(os.environ["MINARI_DATASETS_PATH"])
        real(*args, **kwargs)
        raise RuntimeError("interrupted")

    monkeypatch.setattr(minari, "create_dataset_from_buffers", crash)
    return calls


def test_failed_write_leaves_no_dataset(own_root, monkeypatch) -> None:
    calls = crash_after_writing(monkeypatch)
    with pytest.raises(RuntimeError, match="interrupted"):
        generate_dataset(GenerateConfig(get_maze_spec("umaze"), steps=300, progress=False))
    assert len(calls) == 1 and calls[0] != str(own_root)  # Minari wrote into a staging folder
    assert os.environ["MINARI_DATASETS_PATH"] == str(own_root)  # restored
    assert not (own_root / UMAZE).exists()
    assert not [p for p in own_root.iterdir() if p.name.startswith(".ctp-staging-")]
    assert list_datasets() == ([], {})
    with pytest.raises(CTPError, match="ctp data generate pointmaze-umaze"):
        load_maze_dataset(UMAZE)


def test_failed_final_rename_restores_the_old_dataset(tiny_umaze, own_root, monkeypatch) -> None:
    import ctp.data.minari_io as minari_io

    copy_tiny(tiny_umaze, own_root)
    real_replace = os.replace

    def replace(src, dst):
        if str(dst) == str(own_root / UMAZE) and ".ctp-staging-" in str(src) and (
            not str(src).endswith("replaced")
        ):
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(minari_io.os, "replace", replace)
    with pytest.raises(CTPError, match="writing ctp/pointmaze/umaze-v1 failed .disk full"):
        generate_dataset(
            GenerateConfig(get_maze_spec("umaze"), steps=300, force=True, progress=False)
        )
    monkeypatch.setattr(minari_io.os, "replace", real_replace)
    assert minari.load_dataset(UMAZE).total_steps == STEPS
    assert not [p for p in own_root.iterdir() if p.name.startswith(".ctp-staging-")]
    assert not (own_root / (UMAZE + ".ctp-replaced")).exists()


def test_concurrent_generation_is_refused_not_replaced(tiny_umaze, own_root, monkeypatch) -> None:
    real = minari.create_dataset_from_buffers

    def other_finishes_first(*args, **kwargs):
        dataset = real(*args, **kwargs)
        copy_tiny(tiny_umaze, own_root)  # another `ctp data generate` moved its copy in
        return dataset

    monkeypatch.setattr(minari, "create_dataset_from_buffers", other_finishes_first)
    with pytest.raises(CTPError, match="appeared while this dataset was generated"):
        generate_dataset(GenerateConfig(get_maze_spec("umaze"), steps=300, progress=False))
    assert minari.load_dataset(UMAZE).total_steps == STEPS  # the other one is intact


def test_leftovers_of_killed_generations_are_cleaned(tiny_umaze, own_root) -> None:
    from ctp.data.minari_io import staged_dataset

    dead = own_root / ".ctp-staging-999999999-abc"  # no such process
    live = own_root / f".ctp-staging-{os.getpid()}-xyz"  # a generation still running
    dead.mkdir(parents=True)
    live.mkdir()
    # A --force killed between its two renames: the old dataset sits next to its id.
    copy_tiny(tiny_umaze, own_root)
    os.replace(own_root / UMAZE, own_root / (UMAZE + ".ctp-replaced"))
    with pytest.raises(RuntimeError, match="stop"), staged_dataset(UMAZE):
        raise RuntimeError("stop")
    assert not dead.exists() and live.exists()
    assert minari.load_dataset(UMAZE).total_steps == STEPS


def test_unwritable_data_folder_is_one_line(tmp_path, monkeypatch) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(not_a_folder))
    with pytest.raises(CTPError, match="cannot write datasets here"):
        generate_dataset(GenerateConfig(get_maze_spec("umaze"), steps=300, progress=False))


def test_failed_forced_write_keeps_the_old_dataset(tiny_umaze, own_root, monkeypatch) -> None:
    copy_tiny(tiny_umaze, own_root)
    crash_after_writing(monkeypatch)
    with pytest.raises(RuntimeError, match="interrupted"):
        generate_dataset(
            GenerateConfig(get_maze_spec("umaze"), steps=300, force=True, progress=False)
        )
    assert minari.load_dataset(UMAZE).total_steps == STEPS
    assert not [p for p in own_root.iterdir() if p.name.startswith(".ctp-staging-")]


# --- loader -----------------------------------------------------------------------------------


def test_loader_arrays(data) -> None:
    n = data.num_steps
    assert n == STEPS and data.continuous
    assert data.dataset_id == UMAZE and data.maze is get_maze_spec("umaze")
    assert data.observations.shape == (n, 4) and data.actions.shape == (n, 2)
    assert data.goals.shape == (n, 2) and data.rewards.shape == (n,)
    for array in (data.observations, data.actions, data.goals, data.rewards):
        assert array.dtype == np.float32
    assert data.episode_starts.dtype == np.int64
    assert data.episode_starts[0] == 0 and np.all(np.diff(data.episode_starts) > 0)
    bounds = data.episode_bounds()
    assert bounds.shape == (len(data.episode_starts), 2)
    np.testing.assert_array_equal(bounds[:, 0], data.episode_starts)
    np.testing.assert_array_equal(bounds[:-1, 1], bounds[1:, 0])
    assert bounds[-1, 1] == n and np.all(bounds[:, 1] > bounds[:, 0])
    assert data.ref_min_score < data.ref_max_score


def test_loader_matches_minari_episodes(data) -> None:
    dataset = minari.load_dataset(UMAZE)
    assert len(data.episode_starts) == dataset.total_episodes
    meta = dataset.storage.metadata
    assert data.ref_min_score == meta["ref_min_score"]
    assert data.ref_max_score == meta["ref_max_score"]
    for (start, end), ep in zip(data.episode_bounds(), dataset.iterate_episodes()):
        assert end - start == len(ep.actions)
        np.testing.assert_array_equal(
            data.observations[start:end], ep.observations["observation"][:-1].astype(np.float32)
        )
        np.testing.assert_array_equal(
            data.goals[start:end], ep.observations["desired_goal"][:-1].astype(np.float32)
        )
        np.testing.assert_array_equal(data.actions[start:end], ep.actions.astype(np.float32))
        np.testing.assert_array_equal(data.rewards[start:end], ep.rewards.astype(np.float32))


def mark_continuous(dataset_id: str) -> None:
    minari.load_dataset(dataset_id).storage.update_metadata({CONTINUOUS_KEY: True})


def test_foreign_datasets_are_not_continuous(own_root) -> None:
    # Chained episodes (each starts where the last ended, as in D4RL's own data) without
    # ctp's metadata flag: a foreign dataset, never windowed across its boundaries.
    rng = np.random.default_rng(0)
    chained = [maze_buffer(0, rng.normal(size=4), 10, rng)]
    chained.append(maze_buffer(1, chained[0].observations["observation"][-1], 7, rng))
    write_dataset("ctp/pointmaze/medium-v7", chained, maze_spaces())
    loaded = load_maze_dataset("ctp/pointmaze/medium-v7")
    assert not loaded.continuous and loaded.maze.name == "medium"
    np.testing.assert_array_equal(loaded.episode_starts, [0, 10])
    assert loaded.num_steps == 17
    assert loaded.ref_min_score is None and loaded.ref_max_score is None
    # The flag makes it one run.
    mark_continuous("ctp/pointmaze/medium-v7")
    assert load_maze_dataset("ctp/pointmaze/medium-v7").continuous


def test_continuous_flag_on_a_broken_run_names_the_field(own_root) -> None:
    rng = np.random.default_rng(0)
    apart = [maze_buffer(0, rng.normal(size=4), 10, rng),
             maze_buffer(1, rng.normal(size=4), 7, rng)]
    write_dataset("ctp/pointmaze/large-v7", apart, maze_spaces())
    loaded = load_maze_dataset("ctp/pointmaze/large-v7")
    assert not loaded.continuous and loaded.maze.name == "large"
    np.testing.assert_array_equal(loaded.episode_bounds(), [[0, 10], [10, 17]])
    mark_continuous("ctp/pointmaze/large-v7")
    with pytest.raises(CTPError, match=f"metadata '{CONTINUOUS_KEY}'.*episode 1"):
        load_maze_dataset("ctp/pointmaze/large-v7")


def test_datasets_root_agrees_with_minari(tmp_path, monkeypatch) -> None:
    from minari.storage import get_dataset_path

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "m"))
    assert datasets_root() == get_dataset_path() == tmp_path / "m"
    monkeypatch.delenv("MINARI_DATASETS_PATH")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets_root() == get_dataset_path() == tmp_path / "home" / ".minari" / "datasets"
    monkeypatch.setenv("MINARI_DATASETS_PATH", " ")
    with pytest.raises(CTPError, match="MINARI_DATASETS_PATH: set but empty"):
        datasets_root()


def test_foreign_dataset_with_box_observations(own_root) -> None:
    buffer = EpisodeBuffer(
        id=0,
        observations=np.zeros((11, 4)),
        actions=np.zeros((10, 2), np.float32),
        rewards=np.zeros(10),
        terminations=np.zeros(10, bool),
        truncations=np.eye(1, 10, 9, dtype=bool)[0],
    )
    write_dataset(
        "ctp/pointmaze/umaze-v9", [buffer], gym.spaces.Box(-np.inf, np.inf, (4,), np.float64)
    )
    assert minari.load_dataset("ctp/pointmaze/umaze-v9").total_steps == 10  # Minari reads it
    with pytest.raises(CTPError, match="observation_space") as info:
        load_maze_dataset("ctp/pointmaze/umaze-v9")
    assert "ctp/pointmaze/umaze-v9" in str(info.value)


def test_foreign_dataset_with_wrong_shapes(own_root) -> None:
    rng = np.random.default_rng(1)
    buffer = maze_buffer(0, rng.normal(size=4), 5, rng)
    buffer = dataclasses.replace(
        buffer,
        observations={**buffer.observations,
                      "observation": np.concatenate([buffer.observations["observation"]] * 2, 1)},
    )
    write_dataset("ctp/pointmaze/umaze-v8", [buffer], maze_spaces(obs_dim=8))
    expected = r"observation_space\['observation'\]: expected shape \(4,\)"
    with pytest.raises(CTPError, match=expected):
        load_maze_dataset("ctp/pointmaze/umaze-v8")

    buffer = maze_buffer(0, rng.normal(size=4), 5, rng)
    buffer = dataclasses.replace(buffer, actions=np.zeros((5, 3), np.float32))
    write_dataset("ctp/pointmaze/umaze-v7", [buffer], maze_spaces(),
                  gym.spaces.Box(-1, 1, (3,), np.float32))
    with pytest.raises(CTPError, match="action_space"):
        load_maze_dataset("ctp/pointmaze/umaze-v7")


def test_missing_dataset_names_the_command(own_root) -> None:
    with pytest.raises(CTPError, match="ctp data generate pointmaze-umaze") as info:
        load_maze_dataset(UMAZE)
    assert str(own_root) in str(info.value)
    with pytest.raises(CTPError, match="ctp data generate pointmaze-large"):
        load_maze_dataset("ctp/pointmaze/large-v1")
    with pytest.raises(CTPError, match="place a copy"):
        load_maze_dataset("D4RL/pointmaze/umaze-v2")
    with pytest.raises(CTPError, match="not a PointMaze"):
        load_maze_dataset("D4RL/antmaze/umaze-v1")


def test_corrupt_dataset_is_a_ctp_error(tiny_umaze, own_root) -> None:
    copy_tiny(tiny_umaze, own_root)
    (own_root / UMAZE / "data" / "metadata.json").write_text("{ not json")
    with pytest.raises(CTPError, match="cannot be read as a Minari dataset"):
        load_maze_dataset(UMAZE)


# --- catalog ----------------------------------------------------------------------------------


def test_catalog_lists_and_describes(tiny_umaze, own_root) -> None:
    assert list_datasets() == ([], {})
    copy_tiny(tiny_umaze, own_root)
    # A half-written dataset in a staging folder is not listed.
    staging = own_root / ".ctp-staging-abc"
    copy_tiny(tiny_umaze, staging)
    assert list_datasets() == ([UMAZE], {})
    info = dataset_info(UMAZE)
    assert info.dataset_id == UMAZE and info.steps == STEPS
    assert info.episodes == minari.load_dataset(UMAZE).total_episodes
    assert info.ref_min_score < info.ref_max_score
    assert info.size_mb > 0 and info.path == str(own_root / UMAZE)
    assert info.continuous_episodes
    assert "Dict" in info.observation_space and "Box" in info.action_space
    with pytest.raises(CTPError, match="ctp data generate pointmaze-medium"):
        dataset_info("ctp/pointmaze/medium-v1")


# --- normalizer -------------------------------------------------------------------------------


def test_normalizer_maps_min_max_to_unit_range(data) -> None:
    norm = Normalizer.fit(data.observations)
    assert norm.dim == 4 and norm.low.dtype == norm.high.dtype == np.float64
    np.testing.assert_array_equal(norm.low, data.observations.min(axis=0))
    np.testing.assert_array_equal(norm.high, data.observations.max(axis=0))
    z = norm.normalize(data.observations)
    assert z.dtype == np.float32 and z.shape == data.observations.shape
    np.testing.assert_allclose(z.min(axis=0), -1.0, atol=1e-6)
    np.testing.assert_allclose(z.max(axis=0), 1.0, atol=1e-6)
    assert np.all(z >= -1.0 - 1e-6) and np.all(z <= 1.0 + 1e-6)
    np.testing.assert_allclose(norm.normalize(norm.low), -1.0, atol=1e-15)
    np.testing.assert_allclose(norm.normalize(norm.high), 1.0, atol=1e-15)
    np.testing.assert_allclose(norm.normalize((norm.low + norm.high) / 2), 0.0, atol=1e-15)


def test_normalizer_round_trip_numpy_and_torch(data) -> None:
    norm = Normalizer.fit(data.observations)
    x64 = data.observations.astype(np.float64)
    np.testing.assert_allclose(norm.unnormalize(norm.normalize(x64)), x64, rtol=0, atol=1e-12)
    back = norm.unnormalize(norm.normalize(data.observations))
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, data.observations, rtol=0, atol=1e-5)
    for dtype, atol in ((torch.float32, 1e-5), (torch.float64, 1e-12)):
        t = torch.from_numpy(data.observations[:500]).to(dtype).reshape(5, 100, 4)
        z = norm.normalize(t)
        assert isinstance(z, torch.Tensor) and z.dtype == dtype and z.shape == t.shape
        np.testing.assert_allclose(z.numpy(), norm.normalize(t.numpy()), rtol=0, atol=atol)
        torch.testing.assert_close(norm.unnormalize(z), t, atol=atol, rtol=0)


def test_normalizer_state_dict_is_exact(data) -> None:
    rng = np.random.default_rng(3)
    norm = Normalizer.fit(data.observations.astype(np.float64) + rng.normal(0, 1e-9, (STEPS, 4)))
    state = json.loads(json.dumps(norm.state_dict()))
    assert set(state) == {"low", "high"}
    restored = Normalizer.from_state_dict(state)
    np.testing.assert_array_equal(restored.low, norm.low)
    np.testing.assert_array_equal(restored.high, norm.high)
    buf = io.BytesIO()
    torch.save(norm.state_dict(), buf)
    buf.seek(0)
    restored = Normalizer.from_state_dict(torch.load(buf, weights_only=True))
    np.testing.assert_array_equal(restored.high, norm.high)
    x = data.observations[:100]
    np.testing.assert_array_equal(restored.normalize(x), norm.normalize(x))


def test_normalizer_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError):
        Normalizer(np.zeros(3), np.ones(2))
    with pytest.raises(ValueError):
        Normalizer(np.zeros((2, 2)), np.ones((2, 2)))


def test_normalizer_constant_dimension_is_finite() -> None:
    data = np.array([[3.0, 0.0], [3.0, 1.0], [3.0, 0.5]])
    z = Normalizer.fit(data).normalize(data)
    assert np.all(np.isfinite(z))
    np.testing.assert_allclose(z[:, 1], [-1.0, 1.0, 0.0])
    np.testing.assert_allclose(Normalizer.fit(data).unnormalize(z), data)


def test_normalizer_constant_dimension_maps_to_zero() -> None:
    data = np.array([[3.0, 0.0], [3.0, 1.0]])
    np.testing.assert_allclose(Normalizer.fit(data).normalize(data)[:, 0], 0.0)


# --- windows ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("horizon", "stride"), [(2, 1), (8, 4), (32, 1), (5, 7)])
def test_continuous_windows(data, horizon: int, stride: int) -> None:
    cfg = WindowConfig(horizon, stride)
    span = (horizon - 1) * stride + 1
    assert cfg.span == span
    windows = TrajectoryWindows(MAZE, data, cfg)
    n = data.num_steps
    assert len(windows) == n - span + 1
    np.testing.assert_array_equal(windows.start_indices(np.arange(len(windows))),
                                  np.arange(n - span + 1))
    norm_obs = windows.normalizer.normalize(data.observations)
    zero_v = windows.normalizer.normalize(np.zeros(4))[2:]
    expected_mask = torch.zeros(horizon, 4)
    expected_mask[0] = 1.0
    expected_mask[horizon - 1] = 1.0
    for i in (0, 1, len(windows) // 2, len(windows) - 1):
        item = windows[i]
        assert {k: tuple(v.shape) for k, v in item.items()} == {
            k: (horizon, 4) for k in ("x", "mask", "value")
        }
        assert all(v.dtype == torch.float32 for v in item.values())
        np.testing.assert_allclose(item["x"].numpy(), norm_obs[i : i + span : stride], atol=1e-6)
        torch.testing.assert_close(item["mask"], expected_mask, rtol=0, atol=0)
        value = item["value"]
        torch.testing.assert_close(value[0], item["x"][0], rtol=0, atol=0)
        torch.testing.assert_close(value[-1, :2], item["x"][-1, :2], rtol=0, atol=0)
        np.testing.assert_allclose(value[-1, 2:].numpy(), zero_v, atol=1e-6)
        assert not value[1:-1].any()  # nothing pinned in between
        np.testing.assert_allclose(item["x"][1].numpy(), norm_obs[i + stride], atol=1e-6)
    last = windows[len(windows) - 1]
    np.testing.assert_allclose(last["x"][-1].numpy(), norm_obs[-1], atol=1e-6)
    with pytest.raises(IndexError):
        windows[len(windows)]
    with pytest.raises(IndexError):
        windows[-1]


def test_windows_use_a_given_normalizer(data) -> None:
    norm = Normalizer(np.full(4, -10.0), np.full(4, 10.0))
    windows = TrajectoryWindows(MAZE, data, WindowConfig(4, 2), norm)
    assert windows.normalizer is norm
    np.testing.assert_allclose(windows[3]["x"].numpy(), data.observations[3:10:2] / 10.0,
                               atol=1e-6)
    np.testing.assert_allclose(windows[3]["value"][-1, 2:].numpy(), 0.0, atol=1e-7)


def test_batch_equals_stacked_items(data) -> None:
    windows = TrajectoryWindows(MAZE, data, WindowConfig(6, 3))
    idx = np.array([0, 17, 17, 999, len(windows) - 1])
    batch = windows.batch(idx)
    for key in ("x", "mask", "value"):
        assert batch[key].shape == (len(idx), 6, 4)
        stacked = torch.stack([windows[int(i)][key] for i in idx])
        torch.testing.assert_close(batch[key], stacked, rtol=0, atol=0)
    with pytest.raises(IndexError):
        windows.batch(np.array([0, len(windows)]))


@pytest.mark.parametrize(("horizon", "stride"), [(4, 3), (2, 1), (10, 2)])
def test_non_continuous_windows_stay_inside_episodes(data, horizon: int, stride: int) -> None:
    data = dataclasses.replace(data, continuous=False)
    cfg = WindowConfig(horizon, stride)
    windows = TrajectoryWindows(MAZE, data, cfg)
    starts = windows.start_indices(np.arange(len(windows)))
    bounds = data.episode_bounds()
    episode = np.searchsorted(bounds[:, 0], starts, side="right") - 1
    ends = starts + cfg.span - 1  # last step of each window
    assert np.all(starts >= bounds[episode, 0]) and np.all(ends < bounds[episode, 1])
    valid = [s for lo, hi in bounds for s in range(lo, hi - cfg.span + 1)]
    assert len(windows) == len(valid)
    np.testing.assert_array_equal(starts, valid)  # every valid start, once, in stream order
    assert len(windows) < data.num_steps - cfg.span + 1  # fewer than the continuous count
    norm_obs = windows.normalizer.normalize(data.observations)
    for i in (0, len(windows) - 1):
        np.testing.assert_allclose(windows[i]["x"].numpy(),
                                   norm_obs[starts[i] : ends[i] + 1 : stride], atol=1e-6)


def test_hindsight_goals_lie_later_in_the_episode_and_hold_the_window(data) -> None:
    """--hindsight-goals p: a share p of windows take a goal from the rest of their episode
    after their first step, the same for the same batch; states from the goal's step on are
    held at it, a goal past the window is pinned at its end (x, y) and the window is the
    data's; a task without goals refuses it."""
    from ctp.tasks.locomotion.task import LOCOMOTION

    data = dataclasses.replace(data, continuous=False)
    plain = TrajectoryWindows(MAZE, data, WindowConfig(4, 3))
    drawn = TrajectoryWindows(MAZE, data, WindowConfig(4, 3, hindsight_goals=0.6))
    idx = np.arange(len(drawn))
    rows, start = drawn.goal_rows(idx), plain.start_indices(idx)
    last = plain.goal_rows(idx)
    np.testing.assert_array_equal(last, start + 9)
    bounds = data.episode_bounds()
    episode_end = bounds[np.searchsorted(bounds[:, 0], start, side="right") - 1, 1]
    assert np.all(rows > start) and np.all(rows < episode_end)
    assert 0.5 < (rows != last).mean() < 0.7  # about p (a drawn goal may be the last state)
    assert (rows < last).any() and (rows > last).any()
    np.testing.assert_array_equal(drawn.goal_rows(idx), rows)  # seeded by the batch
    some = idx[:256]
    batch, goal = drawn.batch(some), drawn.goal_rows(some)
    held = np.minimum(start[:256, None] + np.arange(4) * 3, goal[:, None])
    expected = drawn.normalizer.normalize(data.observations[held]).astype(np.float32)
    expected[:, -1, :2] = drawn.normalizer.normalize(data.observations[goal])[:, :2]
    torch.testing.assert_close(batch["x"], torch.from_numpy(expected))
    torch.testing.assert_close(batch["value"][:, -1, :2], torch.from_numpy(expected[:, -1, :2]))
    with pytest.raises(CTPError, match=r"--hindsight-goals: expected a share in \[0, 1\], "
                       "got 1.5"):
        TrajectoryWindows(MAZE, data, WindowConfig(4, 3, hindsight_goals=1.5))
    with pytest.raises(CTPError, match="--hindsight-goals: .* has no goals; expected 0"):
        TrajectoryWindows(LOCOMOTION, data, WindowConfig(4, 3, hindsight_goals=0.5))


def test_window_longer_than_every_episode(data) -> None:
    longest = int(np.diff(data.episode_bounds(), axis=1).max())
    separate = dataclasses.replace(data, continuous=False)
    TrajectoryWindows(MAZE, separate, WindowConfig(longest, 1))  # fits in the longest episode
    with pytest.raises(CTPError, match="no window of"):
        TrajectoryWindows(MAZE, separate, WindowConfig(longest + 1, 1))
    # The continuous stream holds longer windows, up to its full length.
    assert len(TrajectoryWindows(MAZE, data, WindowConfig(longest + 1, 1))) == STEPS - longest
    assert len(TrajectoryWindows(MAZE, data, WindowConfig(STEPS, 1))) == 1
    with pytest.raises(CTPError, match="no window of"):
        TrajectoryWindows(MAZE, data, WindowConfig(STEPS + 1, 1))


@pytest.mark.parametrize(("horizon", "stride"), [(1, 1), (0, 1), (4, 0)])
def test_window_config_is_checked(data, horizon: int, stride: int) -> None:
    with pytest.raises(CTPError, match="horizon >= 2 and stride >= 1"):
        TrajectoryWindows(MAZE, data, WindowConfig(horizon, stride))


def synthetic_data(obs_dim: int, steps: int = 120) -> MazeData:
    """Random ``obs_dim``-wide observations with 2-D goals in two episodes (no env behind)."""
    rng = np.random.default_rng(0)
    return MazeData(
        dataset_id="synthetic", maze=get_maze_spec("umaze"),
        observations=rng.normal(size=(steps, obs_dim)).astype(np.float32),
        actions=np.zeros((steps, 2), np.float32), rewards=np.zeros(steps, np.float32),
        goals=np.zeros((steps, 2), np.float32), episode_starts=np.array([0, 50]),
        continuous=False, ref_min_score=None, ref_max_score=None,
    )


def test_windows_pairs_and_teacher_take_the_datas_width() -> None:
    from ctp.models.builder import build_teacher
    from ctp.models.edm import EDMConfig
    from ctp.nn import UNetConfig
    from ctp.training.config import TrainConfig
    from ctp.training.objectives import TeacherObjective
    from ctp.training.teacher_pairs import draw_conditions, teacher_targets

    data = synthetic_data(obs_dim=7)
    windows = TrajectoryWindows(MAZE, data, WindowConfig(8, 3))
    assert windows.obs_dim == 7
    batch = windows.batch(np.arange(5))
    assert {k: tuple(v.shape) for k, v in batch.items()} == {
        k: (5, 8, 7) for k in ("x", "mask", "value")}
    rows = windows.start_indices(np.arange(5))[:, None] + np.arange(8) * 3
    np.testing.assert_allclose(batch["x"].numpy(),
                               windows.normalizer.normalize(data.observations[rows]), atol=1e-6)
    value, mask = batch["value"], batch["mask"]
    torch.testing.assert_close(value[:, 0], batch["x"][:, 0], rtol=0, atol=0)
    torch.testing.assert_close(value[:, -1, :2], batch["x"][:, -1, :2], rtol=0, atol=0)
    rest = windows.normalizer.normalize(np.zeros(7))[2:]  # the goal's other 5 dims at zero
    np.testing.assert_allclose(value[:, -1, 2:].numpy(), np.tile(rest, (5, 1)), atol=1e-6)
    assert mask[:, [0, -1]].all() and not mask[:, 1:-1].any()

    start, goal = draw_conditions(windows, 6, 0.5, np.random.default_rng(1))
    assert start.shape == goal.shape == (6, 7)
    teacher = build_teacher(UNetConfig(obs_dim=7, horizon=8, dim=16, dim_mults=(1, 2)),
                            EDMConfig()).eval()
    target = teacher_targets(MAZE, teacher, torch.randn(6, 8, 7), start, goal, heun_steps=2,
                             batch_size=4)
    assert target.shape == (6, 8, 7)
    torch.testing.assert_close(target[:, 0], start)
    torch.testing.assert_close(target[:, -1], goal)

    objective = TeacherObjective(TrainConfig(horizon=8, dim=16, dim_mults=(1, 2)),
                                 torch.device("cpu"), windows.obs_dim)
    loss, _ = objective.loss(batch, k=1)
    assert objective.module.net.cfg.obs_dim == 7 and torch.isfinite(loss)
    loss.backward()

    with pytest.raises(CTPError, match="7-dim observations, but the normaliser is 4-dim"):
        TrajectoryWindows(MAZE, data, WindowConfig(8, 3), Normalizer(np.zeros(4), np.ones(4)))


# --- ctp data (CLI) ---------------------------------------------------------------------------


def test_cli_list_and_info(minari_root) -> None:
    proc = run_ctp("data", "list", "--json", root=minari_root)
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    assert listed == {"root": str(minari_root), "datasets": [UMAZE], "unusable": {}}
    proc = run_ctp("data", "info", UMAZE, "--json", root=minari_root)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    dataset = minari.load_dataset(UMAZE)
    assert info["dataset_id"] == UMAZE
    assert info["steps"] == STEPS and info["episodes"] == dataset.total_episodes > 5
    meta = dataset.storage.metadata
    assert info["ref_min_score"] == pytest.approx(meta["ref_min_score"])
    assert info["ref_max_score"] == pytest.approx(meta["ref_max_score"])
    assert info["ref_min_score"] < info["ref_max_score"] and info["size_mb"] > 0
    assert info["continuous_episodes"] is True


def test_info_of_maze_data_gives_no_normalised_score(minari_root) -> None:
    """PointMaze's ref scores are returns of an episode toward the evaluation goal, not of
    the dataset's goal-to-goal episodes: no normalised score, a note saying why."""
    info = dataset_info(UMAZE)
    assert info.normalized_mean is None and info.ref_max_score is not None
    assert "evaluation goal" in info.note
    proc = run_ctp("data", "info", UMAZE, root=minari_root)
    assert proc.returncode == 0 and "normalized_mean" not in proc.stdout, proc.stderr


def test_cli_generate_no_progress_is_quiet(tmp_path) -> None:
    proc = run_ctp("data", "generate", "pointmaze-umaze", "--steps", "200", "--no-progress",
                   root=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert (tmp_path / UMAZE / "data" / "main_data.hdf5").is_file()


def test_cli_list_empty_folder(tmp_path) -> None:
    proc = run_ctp("data", "list", root=tmp_path)
    assert proc.returncode == 0
    assert "no usable datasets" in proc.stdout
    assert "ctp data generate pointmaze-umaze" in proc.stdout


@pytest.mark.parametrize(
    ("args", "prefix", "message"),
    [
        (("data", "generate", "pointmaze-foo"), "ctp: error:", "pointmaze-umaze"),
        (("data", "info", "ctp/pointmaze/medium-v1"), "ctp: error:",
         "ctp data generate pointmaze-medium"),
        (("data", "generate", "pointmaze-umaze", "--steps", "1", "--force"), "ctp: error:",
         "--steps"),
        (("data", "generate", "pointmaze-umaze", "--steps", "ten"),
         "ctp: error:", "(see 'ctp data generate --help')"),
        (("data", "generate", "pointmaze-umaze", "--steps", "10", "--seed", "-1"),
         "ctp: error:", "--seed: expected an int >= 0 and <= 4294967295"),
        (("data", "info", "D4RL/kitchen/complete-v2"), "ctp: error:",
         "not a dataset id of any task"),
        (("data", "list"), "ctp: error:", "MINARI_DATASETS_PATH: set but empty"),
    ],
    ids=["unknown-maze", "missing-dataset", "too-few-steps", "bad-int", "negative-seed",
         "foreign-id", "empty-minari-path"],
)
def test_cli_bad_input(tmp_path, args, prefix, message) -> None:
    root = "" if "MINARI_DATASETS_PATH" in message else tmp_path
    proc = run_ctp(*args, root=root)
    assert_one_line_error(proc, message, prefix=prefix)
    assert proc.stdout == ""
    assert not (tmp_path / UMAZE).exists()
