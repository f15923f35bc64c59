"""Locomotion baselines: MLP fitting, inverse-dynamics pairs, behaviour cloning end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, run_main

from ctp.cli import main
from ctp.nn.actor import SquashedGaussianActor
from ctp.tasks.locomotion.baselines import bc_baseline, bc_pairs, invdyn_pairs
from ctp.tasks.locomotion.generate import sample_episodes
from ctp.tasks.locomotion.loader import load_locomotion_dataset
from ctp.tasks.locomotion.spec import get_task
from ctp.training.regression import FitConfig, fit_mlp
from ctp.utils.errors import CTPError

HOPPER_MEDIUM = "ctp/mujoco/hopper/medium-v1"


@pytest.fixture(scope="module")
def hopper_data(tmp_path_factory):
    """A 1500-step Hopper-v4 dataset of an untrained actor, in its own Minari folder."""
    import minari

    root = tmp_path_factory.mktemp("minari")
    torch.manual_seed(0)
    spec = get_task("hopper")
    buffers = sample_episodes(spec, SquashedGaussianActor(11, 3), 1500, seed=5, progress=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        minari.create_dataset_from_buffers(
            HOPPER_MEDIUM, buffers, env=spec.env_id, algorithm_name="test", author="test",
            code_permalink="none", author_email="none", description="test",
            ref_min_score=spec.ref_min_score, ref_max_score=spec.ref_max_score)
        data = load_locomotion_dataset(HOPPER_MEDIUM)
    return root, data


def test_fit_mlp_learns_a_map() -> None:
    torch.manual_seed(1)
    x = torch.randn(2000, 5) * 3 + 1  # standardisation must cope with offset and scale
    y = torch.tanh(x[:, :2] @ torch.tensor([[0.5, -0.2], [0.1, 0.3]]))
    cfg = FitConfig(steps=600, lr=1e-3, hidden=(64,), progress=False)
    model, loss = fit_mlp(x, y, cfg)
    baseline = torch.nn.functional.mse_loss(y.mean(0).expand_as(y), y).item()
    assert loss < 0.1 * baseline
    again, loss_again = fit_mlp(x, y, cfg)
    assert loss_again == loss  # seeded: the same fit twice
    with pytest.raises(CTPError, match="--lr"):
        fit_mlp(x, y, FitConfig(lr=float("nan")))


def test_invdyn_pairs_stay_inside_episodes(hopper_data) -> None:
    _, data = hopper_data
    pairs, actions = invdyn_pairs(data)
    episodes = len(data.episode_starts)
    assert episodes > 3  # an untrained hopper falls: many short episodes
    assert pairs.shape == (data.num_steps - episodes, 22) and actions.shape[1] == 3
    # Every pair is (s_t, s_{t+1}) of one episode: s_{t+1} is the state after a_t.
    starts = set(data.episode_starts.tolist())
    rows = [t for t in range(data.num_steps - 1) if t + 1 not in starts]
    np.testing.assert_array_equal(pairs[:, 11:].numpy(), data.observations[np.array(rows) + 1])
    obs, act = bc_pairs(data)
    assert obs.shape == (data.num_steps, 11) and act.shape == (data.num_steps, 3)


@pytest.mark.slow
def test_bc_baseline_end_to_end(hopper_data, monkeypatch, tmp_path) -> None:
    root, data = hopper_data
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    out = tmp_path / "bc.json"
    assert main(["baseline", "bc", "hopper-medium", "--steps", "300", "--episodes", "3",
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["seeds"] == [0, 1, 2] and result["env_id"] == "Hopper-v4"
    behaviour = data.episode_returns()
    assert result["behaviour_return"]["mean"] == pytest.approx(behaviour.mean())
    spec = get_task("hopper")
    assert result["bc_d4rl_normalized"]["mean"] == pytest.approx(
        spec.normalized(result["bc_return"]["mean"]))
    # Same seeds, same fit: the evaluation is reproducible.
    again = bc_baseline("hopper-medium", FitConfig(steps=300, progress=False), episodes=3)
    assert again.bc_return["mean"] == pytest.approx(result["bc_return"]["mean"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("bc", "hopper-expert"), "unknown dataset 'hopper-expert'"),
        (("bc", "hopper-medium", "--lr", "nan"), "--lr: expected a finite positive"),
        (("bc", "hopper-medium", "--episodes", "0"), "--episodes: expected an int >= 1"),
        (("bc", "hopper-medium", "--steps", "0"), "--steps: expected an int >= 1"),
        (("bc", "walker2d-medium"), "ctp data generate walker2d-medium"),
    ],
    ids=["unknown-dataset", "nan-lr", "no-episodes", "no-steps", "missing-dataset"],
)
def test_cli_bad_input(args, message, hopper_data, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(hopper_data[0]))
    assert_one_line_error(run_main(capsys, "baseline", *args), message)
