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
from helpers import CONFIGS, assert_one_line_error, run_main

from ctp.models.builder import load_invdyn, load_value
from ctp.planning.bundle import ExportConfig, export_planner, load_planner_file, unbundle_planner
from ctp.planning.planner import load_planner
from ctp.training.config import TrainConfig
from ctp.training.loop import train
from ctp.utils.errors import CTPError

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
                                           "stride": 4, "target_dims": 0,
                                           "reach": None}
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
                          "--invdyn: inverse dynamics k", "multiple of the plans' stride 4",
                          "got 1")
    assert not out.exists()


# ------------------------------------------------------------------- hopper planners


@pytest.fixture(scope="module")
def hopper(tmp_path_factory):
    """A 3000-step hopper-medium dataset sampled with the shipped actor, in its own Minari
    folder, and teacher / student / value / invdyn trained a few steps on it (horizon 8,
    stride 1): {root, teacher, student, value, invdyn, planner (all four, half)}."""
    from ctp.tasks.locomotion.generate import LocomotionGenerateConfig, generate_locomotion

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("minari")
    out = tmp_path_factory.mktemp("hopper")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        generate_locomotion(LocomotionGenerateConfig("hopper-medium", steps=3000,
                                                     progress=False))
        common = dict(dataset_id=HOPPER, horizon=8, stride=1, **UNET, **TINY)
        teacher = train(TrainConfig(kind="teacher", out_dir=str(out / "t"), **common)).latest
        student = train(TrainConfig(kind="ctm", teacher=str(teacher), out_dir=str(out / "c"),
                                    **common)).latest
        value, invdyn = _value_invdyn(out, horizon=8, stride=1, dataset_id=HOPPER)
        planner = export_planner(ExportConfig(str(student), str(out / "planner.pt"),
                                              str(teacher), value=str(value),
                                              invdyn=str(invdyn), half=True,
                                              defaults={"candidates": 8}))
    return {"root": root, "teacher": teacher, "student": student, "value": value,
            "invdyn": invdyn, "planner": planner}


@pytest.fixture
def hopper_root(hopper, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(hopper["root"]))
    return hopper


def _start_states(n: int) -> np.ndarray:
    from ctp.tasks.locomotion.spec import get_task

    env = get_task("hopper").make_env()
    states = np.stack([env.reset(seed=i)[0] for i in range(n)]).astype(np.float32)
    env.close()
    return states


def test_hopper_planner_file_defaults(hopper_root) -> None:
    payload = load_planner_file(hopper_root["planner"])
    assert payload["task"] == "locomotion" and payload["dataset_id"] == HOPPER
    assert payload["scorers"] == {"value": 1.0}
    assert payload["defaults"] == {"candidates": 8, "replan": 1}  # every env step
    planner = load_planner(hopper_root["planner"])
    assert planner.env == "hopper-medium" and planner.scorer_name() == "value"
    assert planner.invdyn.stride == planner.stride == 1


def test_value_scorer_ranks_candidates_by_v(hopper_root) -> None:
    planner = load_planner(hopper_root["planner"])
    obs = _start_states(3)
    goal = np.zeros((3, 0), np.float32)
    torch.manual_seed(11)
    candidates, scores = planner.plan_step(torch.from_numpy(obs), torch.from_numpy(goal))
    e, k, h, d = candidates.shape
    x = planner._normalize(candidates.reshape(e * k, h, d))
    start = planner._normalize(torch.from_numpy(obs)).repeat_interleave(k, dim=0)
    mask, value = planner.task.plan_condition(start, torch.zeros(e * k, 0), h,
                                              planner._normalize)
    v = planner.value(x, mask, value).view(e, k)
    torch.testing.assert_close(scores, v, rtol=1e-4, atol=1e-3)
    assert (v.max(1).values - v.min(1).values).min() > 0  # a ranking to get right
    torch.manual_seed(11)
    result = planner.plan(obs, goal)
    best = v.argmax(1)
    np.testing.assert_array_equal(result.trajectory, candidates[torch.arange(e), best].numpy())
    np.testing.assert_allclose(result.score, v.max(1).values.numpy(), rtol=1e-5)


def test_invdyn_controller_acts_towards_the_plans_next_state(hopper_root) -> None:
    planner = load_planner(hopper_root["planner"])
    obs = _start_states(2)
    result = planner.plan(obs, np.zeros((2, 0), np.float32))
    np.testing.assert_allclose(result.trajectory[:, 0], obs, atol=1e-4)  # start pinned
    with torch.no_grad():
        expected = planner.invdyn(torch.from_numpy(obs),
                                  torch.from_numpy(result.trajectory[:, 1])).numpy()
    np.testing.assert_array_equal(result.action, expected)
    # Followed on without replanning, the target moves one plan state per env step.
    controller = planner.controller()
    controller.set_plans(result.trajectory)
    controller.act(obs)
    np.testing.assert_array_equal(controller.target(), result.trajectory[:, 2])
    one = planner.plan(obs[0])  # one env, no goal argument (the task has none)
    assert one.trajectory.shape == (8, 11) and one.action.shape == (3,)


def test_invdyn_reaching_further_aims_at_the_plan_state_k_steps_ahead(hopper_root,
                                                                      tmp_path) -> None:
    _, invdyn3 = _value_invdyn(tmp_path, horizon=8, stride=3, dataset_id=HOPPER)
    path = export_planner(ExportConfig(str(hopper_root["student"]), str(tmp_path / "k3.pt"),
                                       value=str(hopper_root["value"]), invdyn=str(invdyn3)))
    planner = load_planner(path)
    assert (planner.invdyn.stride, planner.stride) == (3, 1)
    obs = _start_states(2)
    result = planner.plan(obs, np.zeros((2, 0), np.float32))
    with torch.no_grad():
        expected = planner.invdyn(torch.from_numpy(obs),
                                  torch.from_numpy(result.trajectory[:, 3])).numpy()
    np.testing.assert_array_equal(result.action, expected)
    _, invdyn8 = _value_invdyn(tmp_path / "far", horizon=8, stride=8, dataset_id=HOPPER)
    with pytest.raises(CTPError, match="up to the plans. span 7 env steps, got 8"):
        export_planner(ExportConfig(str(hopper_root["student"]), str(tmp_path / "k8.pt"),
                                    invdyn=str(invdyn8)))


def test_ctp_plan_hopper_runs_whole_episodes(hopper_root, tmp_path, capsys) -> None:
    out, plot = tmp_path / "r.json", tmp_path / "r.png"
    proc = run_main(capsys, "plan", "--env", "hopper-medium", "--checkpoint",
                    hopper_root["planner"], "--episodes", "2", "--num-envs", "2", "--out", out,
                    "--plot", plot, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "d4rl_normalized" in proc.stdout and "every 1 steps" in proc.stdout
    result = json.loads(out.read_text())
    maze_keys = {"env", "checkpoint", "dataset_id", "episodes", "seeds", "task", "sampler",
                 "nfe", "jumps", "edm_steps", "candidates", "scorer", "velocities", "aim",
                 "target_radius", "back_off",
                 "horizon", "stride", "replan", "num_envs", "cuda_graphs", "compiled", "device",
                 "torch_threads",
                 "ref_min_score", "ref_max_score", "d4rl_ref_min_score", "d4rl_ref_max_score",
                 "goal_radius", "return", "normalized", "d4rl_normalized", "success_rate",
                 "goal_distance", "latency_ms", "per_episode"}
    assert set(result) == maze_keys and result["goal_distance"] is None
    assert result["target_radius"] is None and result["back_off"] is None
    assert np.isfinite(result["d4rl_normalized"]["mean"])
    assert result["success_rate"] is None and "n/a (no goal)" in proc.stdout
    assert (result["d4rl_ref_min_score"], result["d4rl_ref_max_score"]) == (-20.272305, 3234.3)
    assert result["replan"] == 1 and result["nfe"] == 1 and result["candidates"] == 8
    assert result["latency_ms"]["p50"] > 0 and result["seeds"] == [0, 1]
    for episode in result["per_episode"]:
        # replanned at every step of the episode, which ends when the hopper falls (or at 1000)
        assert 1 <= episode["steps"] <= 1000
        assert len(episode["plan_latencies_ms"]) >= episode["steps"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_locomotion_bad_input_is_one_line(hopper_root, tmp_path, capsys) -> None:
    h = hopper_root
    # No inverse dynamics in the file: planning says what to bundle.
    nodyn = export_planner(ExportConfig(str(h["student"]), str(tmp_path / "n.pt"),
                                        value=str(h["value"])))
    assert_one_line_error(run_main(capsys, "plan", "--env", "hopper-medium", "--checkpoint",
                                   nodyn, "--episodes", "1"),
                          "needs inverse dynamics", "ctp bundle --invdyn INVDYN.pt")
    # No value network: the default score has nothing to score with.
    assert_one_line_error(run_main(capsys, "bundle", "--student", h["student"], "--invdyn",
                                   h["invdyn"], "--out", tmp_path / "v.pt"),
                          "scorer 'value' has weight 1", "pass --value")
    value16, _ = _value_invdyn(tmp_path / "o", horizon=16, stride=1, dataset_id=HOPPER)
    assert_one_line_error(run_main(capsys, "bundle", "--student", h["student"], "--value",
                                   value16, "--invdyn", h["invdyn"], "--out", tmp_path / "w.pt"),
                          "--value: horizon 16 differs from the student's 8")
    assert_one_line_error(run_main(capsys, "plan", "--env", "hopper-expert", "--checkpoint",
                                   h["planner"]), "unknown locomotion env 'hopper-expert'")
    assert_one_line_error(run_main(capsys, "plan", "--env", "halfcheetah-medium",
                                   "--checkpoint", h["planner"], "--episodes", "1"),
                          "trained on ctp/mujoco/hopper/medium-v1 (hopper-medium), not "
                          "halfcheetah-medium")
    assert_one_line_error(run_main(capsys, "plan", "--env", "hopper-medium", "--checkpoint",
                                   h["planner"], "--multi-goal", "--episodes", "1"),
                          "--multi-goal: hopper-medium has no goal")
    # Its controller reads whole plan states: velocities implied by positions mean nothing.
    assert_one_line_error(run_main(capsys, "plan", "--env", "hopper-medium", "--checkpoint",
                                   h["planner"], "--velocities", "positions", "--episodes", "1"),
                          "velocities 'positions'", "locomotion controller", "expected 'plan'")


@pytest.mark.parametrize("env, task, dims", [("hopper-medium", "hopper", (11, 3)),
                                              ("hopper-medium-replay", "hopper", (11, 3)),
                                              ("walker2d-medium", "walker2d", (17, 6)),
                                              ("walker2d-medium-replay", "walker2d", (17, 6)),
                                              ("halfcheetah-medium", "halfcheetah", (17, 6)),
                                              ("halfcheetah-medium-replay", "halfcheetah",
                                               (17, 6))])
def test_shipped_locomotion_planners_plan_with_their_recipe_settings(env, task, dims) -> None:
    from ctp.recipe.config import load_recipe
    from ctp.tasks.locomotion.spec import get_task

    recipe = load_recipe(CONFIGS / f"locomotion/{env}.toml")
    planner = load_planner(env=env)  # ctp/assets/<env>.pt
    assert planner.task.name == "locomotion" and planner.scorer_name() == "value"
    assert (planner.horizon, planner.stride, planner.invdyn.stride) == (
        recipe.teacher["horizon"], recipe.teacher["stride"], recipe.invdyn["stride"])
    assert planner.config.candidates == recipe.bundle["candidates"]
    # The file's networks have the recipe's sizes (hopper and walker2d medium: two levels).
    for name, cfg, table in (("teacher", planner.teacher.net.cfg, recipe.teacher),
                             ("student", planner.student.net.cfg, recipe.teacher),
                             ("value", planner.value.cfg, recipe.value)):
        assert (cfg.dim, list(cfg.dim_mults)) == (table["dim"], table["dim_mults"]), name
    gym_env = get_task(task).make_env()
    state = gym_env.reset(seed=0)[0].astype(np.float32)
    gym_env.close()
    result = planner.plan(state)
    assert result.trajectory.shape == (32, dims[0]) and result.action.shape == (dims[1],)
    assert np.all(np.abs(result.action) <= 1.0) and np.isfinite(result.score)


@pytest.mark.slow
def test_shipped_hopper_planner_hops(capsys, tmp_path) -> None:
    out = tmp_path / "r.json"
    proc = run_main(capsys, "plan", "--env", "hopper-medium", "--episodes", "1", "--seed",
                    "1000", "--out", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    # One validation episode: the data's mean is 51.8 (D4RL-normalised); falling early
    # would score under 15.
    assert result["d4rl_normalized"]["mean"] > 60
