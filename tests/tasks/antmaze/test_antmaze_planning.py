"""Planning on AntMaze: the task's condition, observation split and success-ending evaluation,
``ctp plan`` end to end with a planner trained a few steps on a tiny dataset, and the
goal-conditioned BC baseline on the same data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, run_main

from ctp.planning.bundle import ExportConfig, export_planner
from ctp.tasks import get_task, planning_task, task_for_env
from ctp.tasks.antmaze.envs import make_env
from ctp.tasks.antmaze.gcbc import hindsight_pairs
from ctp.tasks.antmaze.generate import GenerateConfig, generate_dataset
from ctp.tasks.antmaze.loader import load_antmaze_dataset
from ctp.tasks.antmaze.spec import get_spec
from ctp.tasks.base import PlanningTask
from ctp.training.config import TrainConfig
from ctp.training.loop import train
from ctp.utils.errors import CTPError

UMAZE = "ctp/antmaze/umaze-v1"
TINY = dict(batch_size=8, steps=3, progress=False)


@pytest.fixture(scope="module")
def umaze(tmp_path_factory):
    """A 1500-step umaze dataset from the shipped controller (so the data spans the maze from
    start to goal, as the planner's input guard expects), in its own Minari folder, and a
    planner (teacher, student, inverse dynamics k = 3 on the target's x, y, between plan
    states; horizon 8, stride 4) trained 3 steps."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    root, out = tmp_path_factory.mktemp("minari"), tmp_path_factory.mktemp("antmaze")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        generate_dataset(GenerateConfig(get_spec("umaze"), steps=1500, progress=False))
        common = dict(dataset_id=UMAZE, horizon=8, stride=4, dim=16, dim_mults=(1, 2), **TINY)
        teacher = train(TrainConfig(kind="teacher", out_dir=str(out / "t"), **common)).latest
        student = train(TrainConfig(kind="ctm", teacher=str(teacher), out_dir=str(out / "c"),
                                    **common)).latest
        invdyn = train(TrainConfig(kind="invdyn", dataset_id=UMAZE, stride=3, hidden=(32, 32),
                                   target_dims=2, out_dir=str(out / "i"), **TINY)).latest
        whole = train(TrainConfig(kind="invdyn", dataset_id=UMAZE, stride=3, hidden=(32, 32),
                                  out_dir=str(out / "w"), **TINY)).latest
        planner = export_planner(ExportConfig(str(student), str(out / "planner.pt"),
                                              str(teacher), invdyn=str(invdyn), half=True,
                                              defaults={"candidates": 4, "replan": 100}))
        # Plans of the ant's x, y alone (half the goals from after the window), followed by
        # the same x, y-reading inverse dynamics.
        xy_teacher = train(TrainConfig(kind="teacher", plan_dims=2, hindsight_goals=0.5,
                                       out_dir=str(out / "xt"), **common)).latest
        xy_student = train(TrainConfig(kind="ctm", teacher=str(xy_teacher),
                                       out_dir=str(out / "xc"), **common)).latest
        xy_planner = export_planner(ExportConfig(str(xy_student), str(out / "xy.pt"),
                                                 invdyn=str(invdyn),
                                                 defaults={"candidates": 4, "replan": 100}))
        whole_k4 = train(TrainConfig(kind="invdyn", dataset_id=UMAZE, stride=4, hidden=(8,),
                                     out_dir=str(out / "w4"), **TINY)).latest
    return {"root": root, "student": student, "planner": planner, "teacher": teacher,
            "invdyn": invdyn, "whole_state_invdyn": whole, "xy_teacher": xy_teacher,
            "xy_student": xy_student, "xy_planner": xy_planner, "whole_state_k4": whole_k4}


@pytest.fixture
def umaze_root(umaze, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(umaze["root"]))
    return umaze


def test_antmaze_task_conditions_and_observations() -> None:
    task = planning_task(get_task("antmaze"))
    assert isinstance(task, PlanningTask) and task_for_env("antmaze-large-play") is task
    assert task.env_for_dataset("D4RL/antmaze/medium-diverse-v1") == "antmaze-medium-diverse"
    assert task.episode_steps("antmaze-umaze") == 700
    assert task.reference_scores("antmaze-large-diverse") == (0.0, 1.0)
    start, goal = torch.randn(3, 29), torch.tensor([[8.0, 4.0]] * 3)
    mask, value = task.plan_condition(start, goal, 6, lambda t: t / 2)
    assert mask[:, 0].all() and torch.equal(value[:, 0], start)
    assert mask[:, -1, :2].all() and not mask[:, -1, 2:].any() and not mask[:, 1:-1].any()
    assert torch.equal(value[:, -1, :2], goal / 2)  # the goal's x, y, normalised
    obs = {"observation": np.ones((2, 27)), "achieved_goal": np.zeros((2, 2)),
           "desired_goal": np.full((2, 2), 3.0)}
    seen = task.observe(obs)
    assert seen.state.shape == (2, 29) and seen.state.dtype == np.float32
    assert (seen.state[:, :2] == 0).all() and (seen.goal == 3).all()
    with pytest.raises(CTPError, match="unknown AntMaze env 'antmaze-medium'"):
        task.env_name("antmaze-medium")
    with pytest.raises(CTPError, match="--multi-goal: AntMaze is evaluated on its maze's one"):
        task.make_vector_env("antmaze-umaze", 1, True)
    with pytest.raises(CTPError, match="AntMaze planning needs inverse dynamics"):
        task.controller(4, {})


def test_evaluation_episodes_end_with_return_one_at_the_goal() -> None:
    """D4RL's evaluation: the first step within 0.45 m of the goal ends the episode with
    reward 1; the data's env (not stop_at_goal) goes on."""
    for stop, ends in ((True, True), (False, False)):
        env = make_env(get_spec("umaze"), stop_at_goal=stop)
        obs, _ = env.reset(seed=0)
        env.unwrapped.ant_env.data.qpos[:2] = obs["desired_goal"]
        _, reward, terminated, _, info = env.step(np.zeros(8))
        assert (reward, terminated, bool(info["success"])) == (1.0, ends, True)
        env.close()


def test_ctp_plan_antmaze_runs_and_scores_success(umaze_root, tmp_path, capsys) -> None:
    out, plot = tmp_path / "r.json", tmp_path / "r.png"
    proc = run_main(capsys, "plan", "--env", "antmaze-umaze", "--checkpoint",
                    umaze_root["planner"], "--episodes", "2", "--num-envs", "2", "--out", out,
                    "--plot", plot, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert (result["d4rl_ref_min_score"], result["d4rl_ref_max_score"]) == (0.0, 1.0)
    assert result["success_rate"] in (0.0, 0.5, 1.0) and result["replan"] == 100
    for episode in result["per_episode"]:
        assert episode["return"] in (0.0, 1.0) and 1 <= episode["steps"] <= 700
    assert result["d4rl_normalized"]["mean"] == pytest.approx(100 * result["success_rate"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_invdyn_between_plan_states_reads_positions_only(umaze_root, tmp_path, capsys) -> None:
    """k = 3 on plans of stride 4 bundles when the model reads x, y only (above); a model
    reading whole states must hit a plan state."""
    proc = run_main(capsys, "bundle", "--student", umaze_root["student"], "--invdyn",
                    umaze_root["whole_state_invdyn"], "--out", tmp_path / "p.pt")
    assert_one_line_error(proc, "--invdyn: inverse dynamics k", "multiple of the plans' "
                          "stride 4", "got 3")
    assert_one_line_error(run_main(capsys, "bundle", "--student", umaze_root["student"],
                                   "--aim", "6", "--out", tmp_path / "q.pt"),
                          "--aim: sets how far ahead the inverse dynamics aims", "--invdyn")


def test_aim_sets_how_far_ahead_the_inverse_dynamics_heads(umaze_root, tmp_path, capsys
                                                          ) -> None:
    """--aim 6 (k = 3): the controller's target is the interpolated plan 6 env steps on; the
    file's default, the JSON's record; beyond the plan's span (28) a one-line error."""
    from ctp.planning import PlannerConfig, load_planner

    planner = load_planner(umaze_root["planner"], config=PlannerConfig(aim=6))
    controller = planner.controller()
    plans = np.arange(2 * 8 * 29, dtype=np.float32).reshape(2, 8, 29)
    controller.set_plans(plans)
    np.testing.assert_allclose(controller.target(), plans[:, 1] + 0.5 * (plans[:, 2] - plans[:, 1]))
    assert load_planner(umaze_root["planner"]).controller().k == 3  # the model's own k
    out = tmp_path / "r.json"
    proc = run_main(capsys, "plan", "--env", "antmaze-umaze", "--checkpoint",
                    umaze_root["planner"], "--aim", "6", "--episodes", "1", "--num-envs", "1",
                    "--out", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["aim"] == 6
    assert_one_line_error(run_main(capsys, "plan", "--env", "antmaze-umaze", "--checkpoint",
                                   umaze_root["planner"], "--aim", "29", "--episodes", "1"),
                          "--aim: inverse dynamics k", "span 28 env steps, got 29")
    assert_one_line_error(run_main(capsys, "plan", "--env", "antmaze-umaze", "--checkpoint",
                                   umaze_root["planner"], "--aim", "0", "--episodes", "1"),
                          "--aim", "env steps >= 1")


def test_xy_plans_from_whole_observations(umaze_root, tmp_path, capsys) -> None:
    """--plan-dims 2: the networks plan x, y only (their normaliser; the student inherited
    it from the teacher, as its --hindsight-goals); the planner reads 29-dim observations, plans
    their x, y and acts through inverse dynamics that reads the whole observed state."""
    from ctp.planning import load_planner
    from ctp.training.teacher_pairs import PairsConfig, make_pairs

    for key in ("xy_teacher", "xy_student"):  # the student plans and trains as its teacher
        payload = torch.load(umaze_root[key], weights_only=False)
        assert payload["unet"]["obs_dim"] == 2 and len(payload["normalizer"]["low"]) == 2
        assert payload["config"]["hindsight_goals"] == 0.5
    planner = load_planner(umaze_root["xy_planner"])
    assert (planner.obs_dim, planner.state_dim) == (2, 29)
    data = load_antmaze_dataset(UMAZE)
    result = planner.plan(data.observations[:3], data.observations[[40, 80, 120], :2])
    assert result.trajectory.shape == (3, 8, 2) and result.action.shape == (3, 8)
    np.testing.assert_allclose(result.trajectory[:, 0], data.observations[:3, :2], atol=1e-5)
    with pytest.raises(CTPError, match=r"observation: expected an array of shape \[E, 29\]"):
        planner.plan(data.observations[:3, :2], data.observations[:3, :2])
    bad = data.observations[:1].copy()
    bad[0, 20] = np.nan  # a dim the plans do not hold is still checked finite
    with pytest.raises(CTPError, match=r"observation\[0, 20\] is nan, expected a finite number$"):
        planner.plan(bad, data.observations[:1, :2])
    pairs = make_pairs(PairsConfig(str(umaze_root["xy_teacher"]), str(tmp_path / "pairs.pt"),
                                   count=4, heun_steps=2, batch_size=4, progress=False))
    assert torch.load(pairs, weights_only=False)["target"].shape == (4, 8, 2)
    out = tmp_path / "r.json"
    proc = run_main(capsys, "plan", "--env", "antmaze-umaze", "--checkpoint",
                    umaze_root["xy_planner"], "--episodes", "1", "--out", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["per_episode"][0]["steps"] >= 1


def test_plan_dims_refused_where_no_plan_fits(umaze_root, tmp_path, capsys) -> None:
    """Fewer dims than the task's scorer reads, more than the data has, or an inverse
    dynamics reading whole targets beside x, y plans: one-line errors naming the option."""
    for dims, expected in (("1", "expected 0 (all) or 2..29, got 1"),
                           ("30", "expected 0 (all) or 2..29, got 30")):
        proc = run_main(capsys, "train", "teacher", "--dataset", UMAZE, "--plan-dims", dims,
                        "--horizon", "8", "--steps", "1", "--out", tmp_path / dims)
        assert_one_line_error(proc, "--plan-dims: ctp/antmaze/umaze-v1 has 29-dim states",
                              expected)
    assert_one_line_error(run_main(capsys, "train", "teacher", "--plan-dims", "-1"),
                          "--plan-dims")
    proc = run_main(capsys, "bundle", "--student", umaze_root["xy_student"], "--invdyn",
                    umaze_root["whole_state_k4"], "--out", tmp_path / "p.pt")
    assert_one_line_error(proc, "--invdyn: reads 29-dim states and the leading 29 dims of its "
                          "target, the plans hold 2-dim states")


def test_antmaze_planner_bad_input_is_one_line(umaze_root, capsys, monkeypatch, tmp_path
                                               ) -> None:
    planner = umaze_root["planner"]
    assert_one_line_error(run_main(capsys, "plan", "--env", "antmaze-large-play",
                                   "--checkpoint", planner, "--episodes", "1"),
                          "trained on ctp/antmaze/umaze-v1 (antmaze-umaze), not "
                          "antmaze-large-play")
    assert_one_line_error(run_main(capsys, "plan", "--env", "pointmaze-umaze", "--checkpoint",
                                   planner, "--episodes", "1"), "antmaze")
    with monkeypatch.context() as patch:  # an install without the env's planner file
        patch.setattr("ctp.planning.bundle.BUNDLED_DIR", tmp_path)
        assert_one_line_error(run_main(capsys, "plan", "--env", "antmaze-umaze-diverse",
                                       "--episodes", "1"), "antmaze-umaze-diverse")
    assert_one_line_error(run_main(capsys, "plan", "--env", "antmaze-umaze", "--checkpoint",
                                   planner, "--velocities", "positions", "--episodes", "1"),
                          "velocities 'positions'", "AntMaze controller", "expected 'plan'")


def test_distance_scorer_in_an_antmaze_planner(umaze_root, planner_file, tmp_path, capsys
                                               ) -> None:
    """``ctp train distance`` on the umaze data, bundled beside the planner's networks with a
    distance weight; the planner plans with it, ``ctp unbundle`` returns it, and a distance of
    other data is refused."""
    from ctp.planning import load_planner
    from ctp.planning.bundle import unbundle_planner
    from ctp.utils.checkpoint import load_checkpoint

    tiny = ("--batch-size", "8", "--steps", "3", "--hidden", "16,16", "--no-progress")
    proc = run_main(capsys, "train", "distance", "--dataset", "ctp/antmaze/umaze-v1",
                    "--out", tmp_path / "d", *tiny)
    assert proc.returncode == 0, proc.stderr
    distance = tmp_path / "d" / "latest.pt"
    out = tmp_path / "p.pt"
    proc = run_main(capsys, "bundle", "--student", umaze_root["student"], "--teacher",
                    umaze_root["teacher"], "--invdyn", umaze_root["invdyn"], "--distance",
                    distance, "--scorer", "distance=1", "--aim", "6", "--half", "--out", out)
    assert proc.returncode == 0, proc.stderr
    planner = load_planner(out)
    assert planner.scorer_name() == "reward - 1*distance" and planner.aim_state == 1.5
    assert planner.scorer_networks["distance"].time_scale.dtype == torch.float32
    proc = run_main(capsys, "plan", "--env", "antmaze-umaze", "--checkpoint", out,
                    "--episodes", "1", "--out", tmp_path / "r.json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["scorer"] == "reward - 1*distance" and result["per_episode"][0]["steps"] >= 1
    written = unbundle_planner(out, tmp_path / "back", kinds=("distance",))
    back = load_checkpoint(written["distance"], "distance")
    assert back["distance"] == load_checkpoint(distance)["distance"]
    assert_one_line_error(run_main(capsys, "bundle", "--student", planner_file["student"],
                                   "--distance", distance, "--out", tmp_path / "x.pt"),
                          "--distance: dataset_id 'ctp/antmaze/umaze-v1' differs from the "
                          "student's 'ctp/pointmaze/umaze-v1'")



def test_target_radius_acts_toward_a_candidate_state(umaze_root, tmp_path, capsys) -> None:
    """``--target-radius``: the planner acts toward the candidate state the goal distance
    rates nearest the goal (a radius that holds every state of these 3-step plans: the best
    of all), on the plan it returns; the file keeps the setting and ``--back-off``, the JSON
    records both; without a distance it is a one-line error."""
    from ctp.planning import PlannerConfig, load_planner

    tiny = ("--batch-size", "8", "--steps", "3", "--hidden", "16,16", "--no-progress")
    assert run_main(capsys, "train", "distance", "--dataset", UMAZE, "--out", tmp_path / "d",
                    *tiny).returncode == 0
    out = tmp_path / "p.pt"
    proc = run_main(capsys, "bundle", "--student", umaze_root["student"], "--invdyn",
                    umaze_root["invdyn"], "--distance", tmp_path / "d" / "latest.pt",
                    "--target-radius", "50", "--back-off", "30", "--candidates", "8",
                    "--out", out)
    assert proc.returncode == 0, proc.stderr
    planner = load_planner(out)
    assert planner.config.target_radius == 50 and planner.config.back_off == 30
    obs, _ = make_env(get_spec("umaze")).reset(seed=3)
    state = np.concatenate([obs["achieved_goal"], obs["observation"]]).astype(np.float32)
    torch.manual_seed(0)
    result = planner.plan(state, obs["desired_goal"])
    assert (np.abs(result.trajectory[1:] - result.target).max(axis=1) < 1e-5).any()
    rate = planner.scorer_networks["distance"]
    times = rate(torch.from_numpy(result.trajectory[1:]).float(),
                 torch.from_numpy(np.tile(obs["desired_goal"], (7, 1))).float())
    rated = rate(torch.from_numpy(result.target)[None].float(),
                 torch.from_numpy(obs["desired_goal"])[None].float())
    assert float(rated) <= float(times.min()) + 1e-4
    invdyn = planner.invdyn
    change = result.target[:2] - state[:2]
    asked = state[:2] + invdyn.reach * change / np.linalg.norm(change)
    expected = invdyn(torch.from_numpy(state)[None], torch.from_numpy(asked)[None].float())
    np.testing.assert_allclose(result.action, expected[0].detach().numpy(), atol=1e-5)
    assert load_planner(out, config=PlannerConfig(target_radius=None)).plan(
        state, obs["desired_goal"]).target is None
    proc = run_main(capsys, "plan", "--env", "antmaze-umaze", "--checkpoint", out,
                    "--episodes", "1", "--out", tmp_path / "r.json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["target_radius"] == 50 and written["back_off"] == 30
    assert "acts toward" in proc.stdout and "30 steps away from it when stuck" in proc.stdout
    assert_one_line_error(run_main(capsys, "plan", "--env", "antmaze-umaze", "--checkpoint",
                                   umaze_root["planner"], "--target-radius", "2",
                                   "--episodes", "1"),
                          "--target-radius: the planner file has no goal distance")
    assert_one_line_error(run_main(capsys, "bundle", "--student", umaze_root["student"],
                                   "--invdyn", umaze_root["invdyn"], "--target-radius", "2",
                                   "--out", tmp_path / "q.pt"),
                          "--target-radius: needs a goal task, --distance and --invdyn")
    assert_one_line_error(run_main(capsys, "plan", "--env", "antmaze-umaze", "--checkpoint",
                                   out, "--target-radius", "nan", "--episodes", "1"),
                          "--target-radius", "a finite number > 0")


def test_a_bundled_teacher_keeps_the_hindsight_goals_its_students_inherit(umaze_root, tmp_path
                                                                          ) -> None:
    """A planner file records its teacher's --hindsight-goals; unbundled (as a recipe's
    ``[teacher] from_planner`` does), the teacher's config holds it again, so a student
    distilled from it trains on the same windows."""
    from ctp.planning.bundle import unbundle_planner
    from ctp.training.config import _resolve_from_parent
    from ctp.utils.checkpoint import load_checkpoint

    planner = export_planner(ExportConfig(str(umaze_root["xy_student"]), str(tmp_path / "p.pt"),
                                          str(umaze_root["xy_teacher"])))
    teacher = unbundle_planner(planner, tmp_path / "back", kinds=("teacher",))["teacher"]
    assert load_checkpoint(teacher)["config"]["hindsight_goals"] == 0.5
    student = TrainConfig(kind="ctm", teacher=str(teacher))
    _resolve_from_parent(student)
    assert student.hindsight_goals == 0.5


def test_hindsight_goals_lie_later_in_the_same_episode(umaze_root) -> None:
    data = load_antmaze_dataset(UMAZE)
    inputs, actions = hindsight_pairs(data, np.random.default_rng(0))
    bounds = data.episode_bounds()
    assert len(inputs) == len(actions) == data.num_steps - len(bounds)
    obs = torch.from_numpy(data.observations)
    row = 0
    for start, end in bounds:  # every step but each episode's last, in order
        steps = end - 1 - start
        block = inputs[row:row + steps]
        assert torch.equal(block[:, :29], obs[start:end - 1])
        goals = block[:, :2] + block[:, 29:]  # the hindsight goal's x, y
        for i in range(0, steps, 97):
            later = obs[start + i + 1:end, :2]
            assert torch.isclose(later, goals[i]).all(dim=1).any()
        assert torch.equal(actions[row:row + steps],
                           torch.from_numpy(data.actions[start:end - 1]))
        row += steps


def test_gcbc_baseline_writes_the_plan_keys(umaze_root, tmp_path, capsys) -> None:
    out = tmp_path / "gcbc.json"
    proc = run_main(capsys, "baseline", "gcbc", "antmaze-umaze", "--steps", "20",
                    "--episodes", "2", "--num-envs", "2", "--out", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "antmaze-umaze: goal-conditioned BC:" in proc.stdout
    result = json.loads(out.read_text())
    assert result["seeds"] == [0, 1] and result["fit"]["steps"] == 20
    assert result["d4rl_normalized"]["mean"] == pytest.approx(100 * result["success_rate"])
    assert {"p50", "p95"} <= set(result["latency_ms"]) and np.isfinite(result["train_loss"])
    assert_one_line_error(run_main(capsys, "baseline", "gcbc", "antmaze-medium", "--steps",
                                   "1"), "antmaze-medium")
    assert_one_line_error(run_main(capsys, "baseline", "gcbc", "antmaze-umaze", "--lr", "nan"),
                          "--lr")


@pytest.mark.parametrize(("name", "radius", "back_off"), [("umaze", 3.0, None),
                                                        ("umaze-diverse", 3.0, None),
                                                        ("medium-play", 3.0, None),
                                                        ("medium-diverse", 3.0, None),
                                                        ("large-play", 4.0, 30)])
def test_the_shipped_goal_distance_planners_reach_the_goal(name, radius, back_off, tmp_path,
                                                           capsys) -> None:
    """ctp/assets/antmaze-{umaze,umaze-diverse,medium-play,medium-diverse,large-play}.pt as
    shipped: one candidate, one jump, x, y plans, acting toward the plan state the goal
    distance rates nearest the goal within 3 m (large: 4 m, backing off 30 steps when stuck),
    through the k = 30 action model. Of two test-seed episodes at least one reaches the goal
    (94, 99, 92, 82 and 48 of 100 do, seeds 0..99; the large maze's goal is 56 m from the
    start by the route)."""
    from ctp.planning.bundle import bundled_planner_path, load_planner_file

    env = f"antmaze-{name}"
    payload = load_planner_file(bundled_planner_path(env))
    assert payload["dataset_id"] == f"ctp/antmaze/{name}-v1"
    assert payload["defaults"]["target_radius"] == radius
    assert payload["defaults"]["candidates"] == 1
    assert payload["defaults"].get("back_off") == back_off
    assert payload["invdyn"]["invdyn"]["stride"] == 30 and payload["distance"] is not None
    out = tmp_path / "r.json"
    proc = run_main(capsys, "plan", "--env", env, "--episodes", "2", "--seed", "2",
                    "--num-envs", "2", "--out", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["target_radius"] == radius and result["back_off"] == back_off
    assert result["success_rate"] >= 0.5
