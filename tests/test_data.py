"""Dataset generation (Minari format), loading, normalising and windows, on tiny data."""

import dataclasses
import json
import os
import subprocess
import sys

import minari
import numpy as np
import pytest
import torch

from ctp.data.generate import GenerateConfig, generate_dataset
from ctp.data.loader import load_maze_dataset
from ctp.data.normalizer import Normalizer
from ctp.data.windows import TrajectoryWindows, WindowConfig
from ctp.envs.specs import GOAL_RADIUS, get_maze_spec
from ctp.errors import CTPError

UMAZE = "ctp/pointmaze/umaze-v1"


@pytest.fixture
def root(tiny_umaze, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tiny_umaze))
    return tiny_umaze


@pytest.fixture
def data(root):
    return load_maze_dataset(UMAZE)


def test_round_trip_through_minari(root) -> None:
    dataset = minari.load_dataset(UMAZE)
    assert dataset.total_steps == 3000
    meta = dataset.storage.metadata
    assert meta["ref_min_score"] < meta["ref_max_score"]
    assert meta["eval_env_spec"] is not None and meta["algorithm_name"] == "ctp-waypoint-expert"
    episodes = list(dataset.iterate_episodes())
    assert len(episodes) == dataset.total_episodes > 5
    assert sum(len(ep.actions) for ep in episodes) == 3000
    for ep in episodes:
        assert set(ep.observations) == {"observation", "achieved_goal", "desired_goal"}
        assert ep.truncations[-1] and not ep.truncations[:-1].any()
        assert np.all(np.abs(ep.actions) <= 1.0)
    for ep in episodes[:-1]:  # every finished episode ends at its goal
        final = ep.observations
        assert np.linalg.norm(final["achieved_goal"][-1] - final["desired_goal"][-1]) <= GOAL_RADIUS


def test_same_seed_same_data_other_seed_differs(tmp_path, monkeypatch, data) -> None:
    spec = get_maze_spec("umaze")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "a"))
    generate_dataset(GenerateConfig(spec, steps=3000, progress=False))
    again = load_maze_dataset(UMAZE)
    np.testing.assert_array_equal(again.observations, data.observations)
    np.testing.assert_array_equal(again.actions, data.actions)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "b"))
    generate_dataset(GenerateConfig(spec, steps=3000, seed=7, progress=False))
    assert not np.array_equal(load_maze_dataset(UMAZE).actions, data.actions)


def test_overwrite_needs_force(root) -> None:
    with pytest.raises(CTPError, match="pass --force"):
        generate_dataset(GenerateConfig(get_maze_spec("umaze"), steps=10, progress=False))


def test_failed_write_leaves_no_dataset(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    real = minari.create_dataset_from_buffers

    def crash(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("interrupted")

    monkeypatch.setattr(minari, "create_dataset_from_buffers", crash)
    with pytest.raises(RuntimeError):
        generate_dataset(GenerateConfig(get_maze_spec("umaze"), steps=500, progress=False))
    assert not (tmp_path / UMAZE).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ctp-staging-")]


def test_loader_arrays(data) -> None:
    n = data.num_steps
    assert n == 3000 and data.continuous
    assert data.observations.shape == (n, 4) and data.actions.shape == (n, 2)
    assert data.goals.shape == (n, 2) and data.rewards.shape == (n,)
    assert data.observations.dtype == np.float32
    assert data.episode_starts[0] == 0 and np.all(np.diff(data.episode_starts) > 0)
    bounds = data.episode_bounds()
    assert bounds[-1, 1] == n and np.array_equal(bounds[1:, 0], bounds[:-1, 1])
    assert data.ref_min_score < data.ref_max_score


def test_foreign_dataset_names_the_wrong_field(root) -> None:
    import gymnasium as gym
    from minari.data_collector import EpisodeBuffer

    obs = np.zeros((11, 4))
    buffer = EpisodeBuffer(id=0, observations=obs, actions=np.zeros((10, 2), np.float32),
                           rewards=np.zeros(10), terminations=np.zeros(10, bool),
                           truncations=np.eye(1, 10, 9, dtype=bool)[0])
    minari.create_dataset_from_buffers(
        "ctp/pointmaze/umaze-v9", [buffer],
        observation_space=gym.spaces.Box(-np.inf, np.inf, (4,)),
        action_space=gym.spaces.Box(-1, 1, (2,)),
    )
    with pytest.raises(CTPError, match="observation_space"):
        load_maze_dataset("ctp/pointmaze/umaze-v9")


def test_missing_dataset_names_the_command(root) -> None:
    with pytest.raises(CTPError, match="ctp data generate pointmaze-medium"):
        load_maze_dataset("ctp/pointmaze/medium-v1")


def test_normalizer_round_trip(data) -> None:
    norm = Normalizer.fit(data.observations)
    z = norm.normalize(data.observations)
    np.testing.assert_allclose(z.min(axis=0), -1, atol=1e-6)
    np.testing.assert_allclose(z.max(axis=0), 1, atol=1e-6)
    np.testing.assert_allclose(norm.unnormalize(z), data.observations, atol=1e-5)
    t = torch.from_numpy(data.observations[:50])
    torch.testing.assert_close(norm.unnormalize(norm.normalize(t)), t, atol=1e-5, rtol=0)
    restored = Normalizer.from_state_dict(json.loads(json.dumps(norm.state_dict())))
    np.testing.assert_array_equal(restored.low, norm.low)
    np.testing.assert_array_equal(restored.high, norm.high)


def test_windows_shape_condition_and_stride(data) -> None:
    h, stride = 8, 4
    windows = TrajectoryWindows(data, WindowConfig(h, stride))
    span = (h - 1) * stride + 1
    assert len(windows) == data.num_steps - span + 1
    item = windows[0]
    assert {k: v.shape for k, v in item.items()} == {k: (h, 4) for k in ("x", "mask", "value")}
    expected_mask = torch.zeros(h, 4)
    expected_mask[0] = 1
    expected_mask[-1] = 1
    torch.testing.assert_close(item["mask"], expected_mask)
    torch.testing.assert_close(item["value"][0], item["x"][0])
    torch.testing.assert_close(item["value"][-1, :2], item["x"][-1, :2])
    zero_v = torch.from_numpy(windows.normalizer.normalize(np.zeros(4))[2:]).float()
    torch.testing.assert_close(item["value"][-1, 2:], zero_v)
    norm_obs = windows.normalizer.normalize(data.observations)
    np.testing.assert_allclose(item["x"][1].numpy(), norm_obs[stride], atol=1e-6)
    last = windows[len(windows) - 1]
    np.testing.assert_allclose(last["x"][-1].numpy(), norm_obs[-1], atol=1e-6)
    with pytest.raises(IndexError):
        windows[len(windows)]
    idx = np.array([0, 5, len(windows) - 1])
    batch = windows.batch(idx)
    for j, i in enumerate(idx):
        torch.testing.assert_close(batch["x"][j], windows[int(i)]["x"])


def test_non_continuous_windows_stay_inside_episodes(data) -> None:
    data = dataclasses.replace(data, continuous=False)
    cfg = WindowConfig(horizon=4, stride=3)
    windows = TrajectoryWindows(data, cfg)
    starts = windows.start_indices(np.arange(len(windows)))
    bounds = data.episode_bounds()
    episode = np.searchsorted(bounds[:, 0], starts, side="right") - 1
    assert np.all(starts + cfg.span <= bounds[episode, 1])
    valid = sum(max(0, e - s - cfg.span + 1) for s, e in bounds)
    assert len(windows) == valid == len(set(starts.tolist()))


def test_window_longer_than_every_episode(data) -> None:
    data = dataclasses.replace(data, continuous=False)
    with pytest.raises(CTPError, match="no window of"):
        TrajectoryWindows(data, WindowConfig(horizon=2000, stride=1))


def run_ctp(root, *args):
    return subprocess.run([sys.executable, "-m", "ctp", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "MINARI_DATASETS_PATH": str(root)})


def test_cli_list_and_info(root) -> None:
    listed = json.loads(run_ctp(root, "data", "list", "--json").stdout)
    assert UMAZE in listed["datasets"]
    info = json.loads(run_ctp(root, "data", "info", UMAZE, "--json").stdout)
    assert info["steps"] == 3000 and info["episodes"] > 5 and info["size_mb"] > 0
    assert info["ref_min_score"] < info["ref_max_score"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("data", "generate", "pointmaze-foo"), "expected one of pointmaze-umaze"),
        (("data", "info", "ctp/pointmaze/medium-v1"), "ctp data generate pointmaze-medium"),
        (("data", "generate", "pointmaze-umaze", "--steps", "1", "--force"), "--steps"),
    ],
)
def test_cli_bad_input(root, args, message) -> None:
    proc = run_ctp(root, *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ctp: error:") and message in lines[0], (
        proc.stderr
    )
