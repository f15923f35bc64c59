"""The goal distance (issue 35): pairs of places of one episode, the expectile loss, training
to the data's fast end on a toy corridor, the ``distance`` scorer, its options and resume
checks (on AntMaze data through bundle and plan: tests/tasks/antmaze)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, run_main

from ctp.cli import build_parser
from ctp.commands.train import config_from_args
from ctp.data.conditioning import start_goal_condition
from ctp.data.normalizer import Normalizer
from ctp.models.builder import load_mlp_network
from ctp.models.distance import TimePairs, expectile_loss
from ctp.planning.scorers import LEARNED
from ctp.tasks import registry
from ctp.tasks.base import Candidates, Condition, StepStream
from ctp.training.config import TrainConfig
from ctp.training.loop import train
from ctp.utils.checkpoint import load_checkpoint
from ctp.utils.errors import CTPError

torch.set_num_threads(1)

STEPS, SPEED, PAUSE = 200, 0.1, 80  # steps per episode, metres per step, steps paused
RELAY = 20  # steps of a relay walk's leg (2 m)


def corridor_x(pause: bool) -> np.ndarray:
    """x of one walk along the corridor from 0 at SPEED; with ``pause`` it stands at x = 1
    for PAUSE steps (the data's wander)."""
    t = np.arange(STEPS)
    if not pause:
        return t * SPEED
    return np.where(t < 10, t * SPEED, np.maximum(1.0, 1.0 + (t - 10 - PAUSE) * SPEED))


class CorridorTask:
    """Walks along x from 0, half of them pausing at x = 1 (``corridor_x``), y 0 plus a third
    dim that is not a position; the goal is x, y."""

    name = "corridor"
    goal_dims = 2

    def dataset_ids(self) -> tuple[str, ...]:
        return ("corridor/walk-v0",)

    def owns_dataset(self, dataset_id: str) -> bool:
        return dataset_id.startswith("corridor/")

    def load(self, dataset_id: str) -> StepStream:
        x = np.concatenate([corridor_x(pause) for pause in [False, True] * 4])
        x = x.astype(np.float32)
        obs = np.stack([x, np.zeros_like(x), np.ones_like(x)], axis=1)
        starts = np.arange(0, len(x), STEPS)
        return StepStream(dataset_id, obs, np.zeros_like(x), starts, False, None, None)

    def check_spaces(self, dataset_id: str, dataset) -> None:
        raise AssertionError("made in memory")

    def condition(self, start: torch.Tensor, goal: torch.Tensor, horizon: int) -> Condition:
        return start_goal_condition(start, goal, horizon, 2)

    def window_condition(self, x: torch.Tensor, normalizer: Normalizer) -> Condition:
        return self.condition(x[:, 0], x[:, -1], x.shape[1])


class RelayCorridor(CorridorTask):
    """Two kinds of walk that only meet at (2, 0): along x from (0, 0), and from there along
    y to (2, 2) (RELAY steps each, then standing), so no episode holds both ends."""

    name = "relay"

    def owns_dataset(self, dataset_id: str) -> bool:
        return dataset_id.startswith("relay/")

    def load(self, dataset_id: str) -> StepStream:
        leg = np.minimum(np.arange(2 * RELAY), RELAY) * SPEED
        first = np.stack([leg, 0.0 * leg], axis=1)
        second = np.stack([2.0 + 0.0 * leg, leg], axis=1)
        xy = np.concatenate([first, second] * 4).astype(np.float32)
        obs = np.concatenate([xy, np.ones((len(xy), 1), np.float32)], axis=1)
        return StepStream(dataset_id, obs, np.zeros(len(xy)), np.arange(0, len(xy), 2 * RELAY),
                          False, None, None)


class NoGoalCorridor(CorridorTask):
    name = "corridor-nogoal"
    goal_dims = 0

    def owns_dataset(self, dataset_id: str) -> bool:
        return dataset_id == "corridor-nogoal/walk-v0"


@pytest.fixture
def corridor(monkeypatch) -> CorridorTask:
    task = CorridorTask()
    monkeypatch.setitem(registry(), task.name, task)
    monkeypatch.setitem(registry(), "corridor-nogoal", NoGoalCorridor())
    monkeypatch.setitem(registry(), "relay", RelayCorridor())
    return task


def test_time_pairs_lie_later_in_the_same_episode(corridor) -> None:
    data = corridor.load("corridor/walk-v0")
    pairs = TimePairs(data, 2)
    idx = np.arange(len(pairs))
    batch = pairs.batch(idx)
    dt = np.rint(batch["target"].numpy() * pairs.scale).astype(np.int64)
    episode = idx // STEPS
    assert (dt >= 0).all() and (idx + dt < (episode + 1) * STEPS).all()  # never past its end
    np.testing.assert_array_equal(batch["goal"].numpy(), data.observations[idx + dt, :2])
    np.testing.assert_array_equal(batch["position"].numpy(), data.observations[idx, :2])
    assert dt[STEPS - 1] == 0 and dt[:STEPS - 1].max() > STEPS // 2  # spans the rest
    assert pairs.scale == pytest.approx((STEPS - 1) / 4)  # mean of (rest / 2) over the steps
    assert torch.equal(pairs.batch(idx)["goal"], batch["goal"])  # fixed by its indices


def test_waypoints_lie_later_in_the_pairs_own_episode(corridor) -> None:
    """With waypoints, each pair gets W places of its own episode at least as late as it,
    their hops in units of the scale, and a share of its goals from anywhere in the data
    (``own`` False); goals of its own episode are dt later, as without waypoints."""
    data = corridor.load("corridor/walk-v0")
    pairs = TimePairs(data, 2, waypoints=3, random_goals=0.5)
    idx = np.arange(len(pairs))
    batch = pairs.batch(idx)
    hops = np.rint(batch["hops"].numpy() * pairs.scale).astype(np.int64)  # [N, 3]
    episode = idx // STEPS
    assert hops.shape == (len(idx), 3) and (hops >= 0).all()
    assert (idx[:, None] + hops < (episode[:, None] + 1) * STEPS).all()
    np.testing.assert_array_equal(batch["waypoint"].numpy(),
                                  data.observations[idx[:, None] + hops, :2])
    own = batch["own"].numpy()
    assert 0.45 < own.mean() < 0.55
    dt = np.rint(batch["target"].numpy() * pairs.scale).astype(np.int64)
    np.testing.assert_array_equal(batch["goal"].numpy()[own],
                                  data.observations[(idx + dt)[own], :2])


def test_stitched_distance_joins_episodes_through_a_shared_place(corridor, tmp_path) -> None:
    """Relay walks (0, 0) -> (2, 0) and (2, 0) -> (2, 2), 20 steps each: no episode holds both
    ends, yet the stitched distance between them is near the legs' 40 steps (the data's own
    times alone put it near 57 here, extrapolated), and each leg stays near 20."""
    torch.manual_seed(0)
    result = train(TrainConfig(kind="distance", dataset_id="relay/walk-v0", hidden=(64, 64),
                               batch_size=256, steps=1500, lr=3e-3, lr_schedule="cosine",
                               waypoints=4, random_goals=0.5, expectile=0.3,
                               out_dir=str(tmp_path / "d"), progress=False))
    payload = load_checkpoint(result.latest, "distance")
    net = load_mlp_network("distance", payload["distance"], payload["ema"], "d")
    d = net(torch.tensor([[0.0, 0.0], [0.0, 0.0], [2.0, 0.0]]),
            torch.tensor([[2.0, 2.0], [2.0, 0.0], [2.0, 2.0]])).detach()
    assert 30 < float(d[0]) < 48 and 14 < float(d[1]) < 28 and 14 < float(d[2]) < 28


def test_expectile_loss_settles_below_the_mean_for_a_low_tau() -> None:
    """The minimiser of the loss over a constant is the tau-expectile: for the targets 20 and
    100 (equal shares), 28 at tau = 0.1 and the mean 60 at tau = 0.5."""
    target = torch.tensor([20.0, 100.0])
    for tau, expected in ((0.1, 28.0), (0.5, 60.0), (0.9, 92.0)):
        pred = torch.zeros((), requires_grad=True)
        opt = torch.optim.LBFGS([pred], max_iter=100, line_search_fn="strong_wolfe")

        def closure(tau=tau, pred=pred, opt=opt):
            opt.zero_grad()
            loss = expectile_loss(pred.expand(2), target, tau)
            loss.backward()
            return loss

        opt.step(closure)
        assert float(pred.detach()) == pytest.approx(expected, abs=0.1)


def test_distance_learns_the_data_fast_end(corridor, tmp_path) -> None:
    """From x = 0 to x = 2 the walks take 20 steps, the pausing ones 100, as often near
    those places: fitted at tau = 0.1 the distance lies near 28 (the expectile), well under
    the mean 60; further goals take longer."""
    torch.manual_seed(0)
    result = train(TrainConfig(kind="distance", dataset_id="corridor/walk-v0", hidden=(64, 64),
                               batch_size=256, steps=1500, lr=3e-3, lr_schedule="cosine",
                               out_dir=str(tmp_path / "d"), progress=False))
    payload = load_checkpoint(result.latest, "distance")
    assert payload["unet"] is None and payload["distance"]["goal_dims"] == 2
    net = load_mlp_network("distance", payload["distance"], payload["ema"], "d")
    start = torch.zeros(3, 2)
    goals = torch.tensor([[0.0, 0.0], [2.0, 0.0], [8.0, 0.0]])
    d = net(start, goals).detach()
    assert float(d[0]) < 25 and 15 < float(d[1]) < 45 and float(d[2]) > 60
    assert net(torch.zeros(1, 3), goals[1:2]).shape == (1,)  # reads a state's leading dims


def test_distance_scorer_rates_the_state_the_controller_heads_for() -> None:
    """A network that reads the metres to the goal: the scorer reads the plan at
    ``aim_state`` (between plan states it interpolates) and returns minus plan states."""

    class Metres(torch.nn.Module):
        def forward(self, position, goal):
            return (position[..., :2] - goal).norm(dim=-1) * 10.0  # 10 steps per metre

    x = torch.arange(5.0)  # plan states 1 m apart along x
    raw = torch.stack([torch.stack([x, torch.zeros(5)], -1),
                       torch.stack([-x, torch.zeros(5)], -1)])  # [2, 5, 2]: east, west
    goal = torch.tensor([[10.0, 0.0], [10.0, 0.0]])
    score = LEARNED["distance"].score
    for aim_state, expected in ((1.0, [-9 * 10 / 4, -11 * 10 / 4]),
                                (2.5, [-7.5 * 10 / 4, -12.5 * 10 / 4]),
                                (4.0, [-6 * 10 / 4, -14 * 10 / 4])):
        plans = Candidates(raw, raw, goal, raw, raw, 4, 0.45, aim_state)
        torch.testing.assert_close(score(Metres(), plans), torch.tensor(expected))
    assert LEARNED["distance"].penalty and LEARNED["distance"].network == "distance"


def test_distance_needs_a_goal_task_and_a_valid_expectile(corridor, tmp_path, capsys) -> None:
    with pytest.raises(CTPError, match="needs a goal task") as info:
        train(TrainConfig(kind="distance", dataset_id="corridor-nogoal/walk-v0", steps=1,
                          out_dir=str(tmp_path / "n"), progress=False))
    assert "\n" not in str(info.value)
    for bad in ("0", "1", "nan"):
        assert_one_line_error(run_main(capsys, "train", "distance", "--expectile", bad),
                              "--expectile", "in (0, 1)")
    common = dict(kind="distance", dataset_id="corridor/walk-v0", batch_size=8, steps=2,
                  out_dir=str(tmp_path / "r"), progress=False)
    train(TrainConfig(**common))
    with pytest.raises(CTPError, match="--resume: .* was trained with expectile"):
        train(TrainConfig(**{**common, "steps": 4}, resume=True, expectile=0.2))
    with pytest.raises(CTPError, match="--resume: .* was trained with waypoints 0"):
        train(TrainConfig(**{**common, "steps": 4}, resume=True, waypoints=2))
    for option, bad, expected in (("--waypoints", "-1", "an int >= 0"),
                                  ("--random-goals", "1", "a share in [0, 1)")):
        assert_one_line_error(run_main(capsys, "train", "distance", option, bad), option,
                              expected)
    assert_one_line_error(run_main(capsys, "train", "distance", "--random-goals", "0.5"),
                          "--random-goals", "0 without --waypoints", "0.5")


def test_cli_defaults_are_the_librarys() -> None:
    cli = config_from_args(build_parser().parse_args(["train", "distance"]))
    assert cli.to_dict() == TrainConfig(kind="distance").to_dict()
    assert (cli.expectile, cli.lr) == (0.1, 3e-4)
