"""The value network and the inverse-dynamics model (issue 18, training side): return-to-go
targets, transition pairs, both objectives through the one trainer on tiny data, their
loaders, the CLI defaults and resume checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, run_main

from ctp.cli import build_parser
from ctp.commands.train import config_from_args
from ctp.data.conditioning import start_goal_condition
from ctp.data.normalizer import Normalizer
from ctp.data.windows import TrajectoryWindows, WindowConfig, discounted_returns_to_go
from ctp.models.builder import load_invdyn, load_value
from ctp.models.inverse_dynamics import invdyn_pairs
from ctp.tasks import registry
from ctp.tasks.base import Condition, StepStream
from ctp.training.config import TrainConfig
from ctp.training.loop import train
from ctp.training.objectives import OBJECTIVES
from ctp.utils.checkpoint import load_checkpoint
from ctp.utils.errors import CTPError

torch.set_num_threads(1)

DIM, EPISODES, EPISODE_STEPS = 5, 4, 250
SEEDS = {"toyrl/train-v0": 0, "toyrl/test-v0": 1, "toyrl/noactions-v0": 2}


class RewardToyTask:
    """Random walks: ``s_{t+1}[:2] = s_t[:2] + 0.1 a_t`` (a uniform in [-1, 1]^2), the other
    dims drift; reward ``s_t[0]``. Each dataset id is its own seed (train / held-out test)."""

    name = "toyrl"

    def dataset_ids(self) -> tuple[str, ...]:
        return tuple(SEEDS)

    def owns_dataset(self, dataset_id: str) -> bool:
        return dataset_id in SEEDS

    def load(self, dataset_id: str) -> StepStream:
        rng = np.random.default_rng(SEEDS[dataset_id])
        n = EPISODES * EPISODE_STEPS
        actions = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
        obs = np.zeros((n, DIM), np.float32)
        for e in range(EPISODES):
            s = rng.uniform(-1, 1, DIM).astype(np.float32)
            for t in range(e * EPISODE_STEPS, (e + 1) * EPISODE_STEPS):
                obs[t] = s
                s = s.copy()
                s[:2] += 0.1 * actions[t]
                s[2:] += rng.normal(scale=0.05, size=DIM - 2).astype(np.float32)
        starts = np.arange(0, n, EPISODE_STEPS)
        return StepStream(dataset_id, obs, obs[:, 0].copy(), starts, False, None, None,
                          actions=None if "noactions" in dataset_id else actions)

    def check_spaces(self, dataset_id: str, dataset) -> None:
        raise AssertionError("made in memory")

    def condition(self, start: torch.Tensor, goal: torch.Tensor, horizon: int) -> Condition:
        return start_goal_condition(start, goal, horizon, 0)

    def window_condition(self, x: torch.Tensor, normalizer: Normalizer) -> Condition:
        return self.condition(x[:, 0], x[:, -1], x.shape[1])


@pytest.fixture
def toy(monkeypatch) -> RewardToyTask:
    task = RewardToyTask()
    monkeypatch.setitem(registry(), task.name, task)
    return task


def slow_returns_to_go(rewards: np.ndarray, starts: np.ndarray, gamma: float) -> np.ndarray:
    """The reference: one backward pass per step, restarting at every episode end."""
    n = len(rewards)
    ends = set(starts.tolist()) | {n}
    out, acc = np.zeros(n), 0.0
    for t in range(n - 1, -1, -1):
        if t + 1 in ends:
            acc = 0.0
        acc = float(rewards[t]) + gamma * acc
        out[t] = acc
    return out


@pytest.mark.parametrize("gamma", [0.0, 1e-6, 0.5, 0.9, 0.99, 0.999, 1.0])
def test_returns_to_go_match_a_slow_loop(gamma) -> None:
    rng = np.random.default_rng(3)
    for n, lead in ((1, 0), (7, 0), (3000, 0), (3000, 17)):
        rewards = rng.normal(size=n).astype(np.float32)
        starts = np.unique(np.concatenate([[lead], rng.integers(lead, n, size=max(1, n // 200))]))
        starts = starts[starts < n]
        fast = discounted_returns_to_go(rewards, starts, gamma)
        slow = slow_returns_to_go(rewards, starts, gamma)
        assert fast.dtype == np.float64 and fast.shape == (n,)
        np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-9 * (1 + np.abs(slow).max()))


def test_returns_to_go_of_long_episodes_do_not_underflow() -> None:
    rewards = np.ones(200_000)
    out = discounted_returns_to_go(rewards, np.array([0]), 0.9)  # 0.9**200000 == 0.0
    remaining = np.arange(200_000, 0, -1)
    np.testing.assert_allclose(out, (1 - 0.9 ** remaining) / 0.1, rtol=1e-12)
    assert out[-1] == 1.0 and np.isclose(out[-2], 1.9)


def test_window_returns_are_their_first_steps_even_across_episodes() -> None:
    rng = np.random.default_rng(0)
    n = 60
    data = StepStream("x", rng.normal(size=(n, 3)).astype(np.float32),
                      rng.normal(size=n).astype(np.float32), np.array([0, 25, 40]), True,
                      None, None)
    windows = TrajectoryWindows(RewardToyTask(), data, WindowConfig(4, 3))
    got = windows.window_returns(0.9)
    slow = slow_returns_to_go(data.rewards, data.episode_starts, 0.9)
    assert len(got) == n - 9  # continuous: windows cross episode ends
    np.testing.assert_allclose(got, slow[windows.start_indices(np.arange(len(windows)))])


def test_invdyn_pairs_are_k_steps_apart_inside_episodes(toy) -> None:
    data = toy.load("toyrl/train-v0")
    for k in (1, 3):
        inputs, actions = invdyn_pairs(data, k)
        rows = [t for t in range(data.num_steps)
                if (t + k) // EPISODE_STEPS == t // EPISODE_STEPS and t + k < data.num_steps]
        assert inputs.shape == (len(rows), 2 * DIM) and actions.shape == (len(rows), 2)
        np.testing.assert_array_equal(inputs[:, :DIM].numpy(), data.observations[rows])
        np.testing.assert_array_equal(inputs[:, DIM:].numpy(), data.observations[
            np.array(rows) + k])
        np.testing.assert_array_equal(actions.numpy(), data.actions[rows])
    data.continuous = True  # one run: pairs may cross episode ends
    assert len(invdyn_pairs(data, 3)[0]) == data.num_steps - 3


def _held_out_windows(normalizer: Normalizer, horizon: int) -> tuple[dict, np.ndarray]:
    windows = TrajectoryWindows(RewardToyTask(), RewardToyTask().load("toyrl/test-v0"),
                                WindowConfig(horizon, 1), normalizer)
    return windows.batch(np.arange(len(windows))), windows.window_returns(0.9)


def test_value_loss_falls_and_predicts_held_out_returns(toy, tmp_path) -> None:
    cfg = dict(kind="value", dataset_id="toyrl/train-v0", horizon=8, stride=1, dim=16,
               dim_mults=(1, 2), gamma=0.9, batch_size=32, steps=300, lr=1e-3, log_every=25,
               checkpoint_every=100, progress=False)
    result = train(TrainConfig(out_dir=str(tmp_path / "v"), **cfg))
    assert result.step == 300
    losses = [json.loads(line)["loss"]
              for line in (tmp_path / "v" / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < 0.5 * losses[0]

    net, normalizer, payload = load_value(result.latest)
    assert payload["kind"] == "value" and payload["returns"]["gamma"] == 0.9
    assert not any(p.requires_grad for p in net.parameters()) and not net.training
    train_returns = TrajectoryWindows(toy, toy.load("toyrl/train-v0"), WindowConfig(8, 1)
                                      ).window_returns(0.9)
    assert payload["returns"]["mean"] == pytest.approx(train_returns.mean())
    assert payload["returns"]["std"] == pytest.approx(train_returns.std())
    batch, true = _held_out_windows(normalizer, 8)
    with torch.no_grad():
        pred = net(batch["x"], batch["mask"], batch["value"]).numpy()  # raw returns
    assert pred.shape == true.shape
    assert np.corrcoef(pred, true)[0, 1] > 0.9
    assert np.mean((pred - true) ** 2) < 0.3 * np.var(true)  # R^2 > 0.7 on unseen episodes


def test_invdyn_recovers_held_out_actions(toy, tmp_path) -> None:
    result = train(TrainConfig(kind="invdyn", dataset_id="toyrl/train-v0", hidden=(64, 64),
                               batch_size=64, steps=300, lr=1e-3, out_dir=str(tmp_path / "i"),
                               progress=False))
    model, normalizer, payload = load_invdyn(result.latest)
    assert payload["invdyn"] == {"obs_dim": DIM, "act_dim": 2, "hidden": [64, 64], "stride": 1,
                                 "target_dims": 0, "reach": None}
    assert payload["config"]["stride"] == 1 and normalizer.dim == DIM  # invdyn's default k
    inputs, actions = invdyn_pairs(toy.load("toyrl/test-v0"), 1)
    with torch.no_grad():
        pred = model(inputs[:, :DIM], inputs[:, DIM:])
    mse = torch.mean((pred - actions) ** 2).item()
    train_mean = torch.from_numpy(toy.load("toyrl/train-v0").actions).mean(0)
    baseline = torch.mean((train_mean - actions) ** 2).item()
    assert mse < 0.1 * baseline, (mse, baseline)


def test_invdyn_on_the_targets_leading_dims_ignores_the_rest(toy, tmp_path) -> None:
    """target_dims 2: the model reads the change of the target's x, y only (the toy's actions
    move exactly those), recovers held-out actions and is blind to the other target dims."""
    result = train(TrainConfig(kind="invdyn", dataset_id="toyrl/train-v0", hidden=(64, 64),
                               batch_size=64, steps=300, lr=1e-3, target_dims=2,
                               out_dir=str(tmp_path / "i"), progress=False))
    model, _, payload = load_invdyn(result.latest)
    assert payload["invdyn"]["target_dims"] == 2 and model.mlp.net[0].in_features == DIM + 2
    reach = payload["invdyn"]["reach"]  # the 90th percentile of the pairs' x, y change
    lengths = (lambda p: (p[:, DIM:DIM + 2] - p[:, :2]).norm(dim=-1))(
        invdyn_pairs(toy.load("toyrl/train-v0"), 1)[0])
    assert reach == pytest.approx(float(torch.quantile(lengths, 0.9)), rel=1e-5)
    inputs, actions = invdyn_pairs(toy.load("toyrl/test-v0"), 1)
    state, target = inputs[:, :DIM], inputs[:, DIM:]
    moved = target.clone()
    moved[:, 2:] += 5.0
    with torch.no_grad():
        pred = model(state, target)
        assert torch.equal(pred, model(state, moved))
        far, at_reach = target.clone(), target.clone()  # the same way, 10x and 1x reach off
        way = torch.nn.functional.normalize(torch.randn(len(state), 2), dim=-1)
        far[:, :2], at_reach[:, :2] = state[:, :2] + 10 * reach * way, state[:, :2] + reach * way
        torch.testing.assert_close(model(state, far), model(state, at_reach))
    train_mean = torch.from_numpy(toy.load("toyrl/train-v0").actions).mean(0)
    baseline = torch.mean((train_mean - actions) ** 2).item()
    assert torch.mean((pred - actions) ** 2).item() < 0.1 * baseline
    with pytest.raises(CTPError, match=f"--target-dims: expected 0 .all. up to the state width "
                       f"{DIM}, got 9"):
        train(TrainConfig(kind="invdyn", dataset_id="toyrl/train-v0", steps=1, target_dims=9,
                          out_dir=str(tmp_path / "j"), progress=False))


def test_invdyn_refuses_a_dataset_without_actions(toy, tmp_path) -> None:
    with pytest.raises(CTPError, match="toyrl/noactions-v0: inverse dynamics needs actions"
                       ) as info:
        train(TrainConfig(kind="invdyn", dataset_id="toyrl/noactions-v0", steps=1,
                          out_dir=str(tmp_path / "i"), progress=False))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("kind", "first", "changed", "field"), [
    ("value", {"gamma": 0.9}, {"gamma": 0.95}, "gamma"),
    ("value", {"stride": 1}, {"stride": 2}, "stride"),
    ("invdyn", {"stride": 1}, {"stride": 2}, "stride"),
    ("invdyn", {"hidden": (16,)}, {"hidden": (32,)}, "hidden"),
    ("invdyn", {"target_dims": 0}, {"target_dims": 2}, "target_dims"),
])
def test_resume_refuses_a_changed_config(toy, tmp_path, kind, first, changed, field) -> None:
    common = dict(kind=kind, dataset_id="toyrl/train-v0", horizon=8, dim=16, dim_mults=(1, 2),
                  batch_size=8, steps=2, out_dir=str(tmp_path / "run"), progress=False)
    train(TrainConfig(**common, **first))
    resumed = train(TrainConfig(**{**common, "steps": 4}, resume=True, **first))
    assert resumed.step == 4 and load_checkpoint(resumed.latest, kind)["step"] == 4
    with pytest.raises(CTPError, match=f"--resume: .* was trained with {field}"):
        train(TrainConfig(**{**common, "steps": 6}, resume=True, **changed))


@pytest.mark.parametrize("kind", ["value", "invdyn"])
def test_cli_defaults_are_the_librarys(kind) -> None:
    cli = config_from_args(build_parser().parse_args(["train", kind]))
    library = TrainConfig(kind=kind)
    assert cli.to_dict() == library.to_dict()
    defaults = OBJECTIVES[kind].defaults
    assert (library.lr, library.ema_decay) == (defaults["lr"], defaults["ema_decay"])
    assert library.stride == (1 if kind == "invdyn" else TrainConfig().stride)


def test_value_and_invdyn_train_on_the_maze_data(minari_root, tmp_path, capsys) -> None:
    """The continuous PointMaze data: windows cross episode ends; the CLI end to end."""
    tiny = ("--batch-size", "8", "--steps", "3", "--no-progress")
    proc = run_main(capsys, "train", "value", "--horizon", "8", "--stride", "4", "--dim", "16",
                    "--dim-mults", "1,2", "--gamma", "0.95", "--out", tmp_path / "v", *tiny)
    assert proc.returncode == 0, proc.stderr
    net, normalizer, payload = load_value(tmp_path / "v" / "latest.pt")
    assert payload["dataset_id"] == "ctp/pointmaze/umaze-v1" and normalizer.dim == 4
    x = torch.zeros(2, 8, 4)
    assert net(x, torch.zeros_like(x), x).shape == (2,)
    proc = run_main(capsys, "train", "invdyn", "--stride", "4", "--hidden", "32",
                    "--out", tmp_path / "i", *tiny)
    assert proc.returncode == 0, proc.stderr
    model, _, payload = load_invdyn(tmp_path / "i" / "latest.pt")
    assert model.stride == 4 and model(torch.zeros(3, 4), torch.zeros(3, 4)).shape == (3, 2)
    assert_one_line_error(run_main(capsys, "train", "value", "--gamma", "0", "--out",
                                   tmp_path / "o"), "--gamma", "(0, 1]")
