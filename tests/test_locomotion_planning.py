"""Planning with value and inverse-dynamics networks: planner files that hold them, the value
scorer, the locomotion task's controller, and ``ctp plan`` on a tiny hopper dataset.

PointMaze files with the new networks must still plan exactly as before (the value scorer is
off for mazes); locomotion plans are scored by V and followed with ``a = f(s, plan[1])``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, run_main

from ctp.errors import CTPError
from ctp.inverse_dynamics import load_invdyn
from ctp.planning.bundle import ExportConfig, export_planner, load_planner_file, unbundle_planner
from ctp.planning.planner import Planner, load_planner
from ctp.train import TrainConfig, train
from ctp.value_net import load_value

HOPPER = "ctp/mujoco/hopper/medium-v1"
TINY = dict(batch_size=8, steps=3, progress=False)
UNET = dict(dim=16, dim_mults=(1, 2))


def _value_invdyn(out: Path, horizon: int, stride: int, dataset_id: str | None = None
                  ) -> tuple[Path, Path]:
    data = {"dataset_id": dataset_id} if dataset_id else {}
    value = train(TrainConfig(kind="value", horizon=horizon, stride=stride, out_dir=str(out / "v"),
                              **data, **UNET, **TINY)).latest
    invdyn = train(TrainConfig(kind="invdyn", stride=stride, hidden=(32, 32),
                               out_dir=str(out / "i"), **data, **TINY)).latest
    return value, invdyn


# ------------------------------------------------------------------- PointMaze files


@pytest.fixture
def maze_extras(planner_file, tmp_path, monkeypatch):
    """The session planner's checkpoints plus a value net and inverse dynamics (stride 4)."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(planner_file["root"]))
    value, invdyn = _value_invdyn(tmp_path, horizon=8, stride=4)
    critic = Path(planner_file["student"]).parent.parent / "k" / "latest.pt"
    return {**planner_file, "value": value, "invdyn": invdyn, "critic": critic}


def test_bundle_holds_value_and_invdyn_and_maze_plans_are_unchanged(maze_extras, tmp_path
                                                                     ) -> None:
    f = maze_extras
    path = export_planner(ExportConfig(str(f["student"]), str(tmp_path / "p.pt"),
                                       str(f["teacher"]), str(f["critic"]),
                                       value=str(f["value"]), invdyn=str(f["invdyn"])))
    payload = load_planner_file(path)
    assert payload["scorers"] == {"reward": 1.0, "dynamics": 10.0}  # value off for mazes
    value_ckpt = torch.load(f["value"], weights_only=True)
    assert payload["value"]["returns"] == value_ckpt["returns"]
    assert payload["invdyn"]["invdyn"] == {"obs_dim": 4, "act_dim": 2, "hidden": [32, 32],
                                           "stride": 4}
    old, new = load_planner(f["planner"]), load_planner(path)
    assert new.value is not None and new.invdyn is not None and old.value is None
    obs = np.array([[0.5, 1.0, 0.1, -0.2], [-1.0, -1.0, 0.0, 0.0]], np.float32)
    goal = np.array([[-1.0, 1.0], [1.0, 1.0]], np.float32)
    results = []
    for planner in (old, new):
        torch.manual_seed(5)
        results.append(planner.plan(obs, goal))
    np.testing.assert_array_equal(results[0].trajectory, results[1].trajectory)
    np.testing.assert_array_equal(results[0].action, results[1].action)

    # float16 weights, float32 statistics; unbundled back to checkpoints that load.
    half = load_planner_file(export_planner(ExportConfig(
        str(f["student"]), str(tmp_path / "h.pt"), value=str(f["value"]),
        invdyn=str(f["invdyn"]), half=True)))
    assert half["value"]["state"]["ret_mean"].dtype == torch.float32
    assert half["invdyn"]["state"]["mlp.in_std"].dtype == torch.float32
    weights = [v for k, v in half["invdyn"]["state"].items() if k.endswith("weight")]
    assert weights and all(w.dtype == torch.float16 for w in weights)
    written = unbundle_planner(tmp_path / "h.pt", tmp_path / "back")
    assert set(written) == {"ctm", "value", "invdyn"}
    value, _, vpayload = load_value(written["value"])
    invdyn, _, ipayload = load_invdyn(written["invdyn"])
    assert vpayload["returns"] == value_ckpt["returns"] and ipayload["stride"] == 4
    assert value.ret_mean.item() == pytest.approx(value_ckpt["returns"]["mean"])
    x = torch.zeros(1, 4)
    reference, _, _ = load_invdyn(f["invdyn"])
    torch.testing.assert_close(invdyn(x, x), reference(x, x), atol=2e-2, rtol=0)


def test_bundle_refuses_value_or_invdyn_of_another_plan_shape(maze_extras, tmp_path, capsys
                                                             ) -> None:
    f = maze_extras
    value16, invdyn1 = _value_invdyn(tmp_path / "other", horizon=16, stride=1)
    out = tmp_path / "p.pt"
    assert_one_line_error(run_main(capsys, "bundle", "--student", f["student"], "--value",
                                   value16, "--out", out),
                          "--value: horizon 16 differs from the student's 8")
    assert_one_line_error(run_main(capsys, "bundle", "--student", f["student"], "--invdyn",
                                   invdyn1, "--out", out),
                          "--invdyn: stride 1 differs from the student's 4")
    assert not out.exists()
