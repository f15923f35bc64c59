"""Planner, plan following, scoring, evaluation and the plan CLI on a tiny trained planner."""

import json

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, run_ctp, run_main

from ctp.kernels import score_candidates_reference
from ctp.planning import PlannerConfig, load_planner
from ctp.tasks.base import hold_after_arrival, interpolate_plan
from ctp.tasks.maze_grid import MazeGeometry
from ctp.tasks.pointmaze.controller import PlanFollower, implied_velocities, tracking_action
from ctp.tasks.pointmaze.maze import make_env
from ctp.tasks.pointmaze.spec import get_maze_spec
from ctp.training.config import TrainConfig
from ctp.training.loop import train
from ctp.utils.errors import CTPError

torch.set_num_threads(1)


def test_interpolate_plan_hits_plan_states() -> None:
    plan = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    wp = interpolate_plan(plan, 4)
    assert wp.shape == (2, 9, 4)
    np.testing.assert_allclose(wp[:, ::4], plan)
    np.testing.assert_allclose(wp[:, 2], (plan[:, 0] + plan[:, 1]) / 2)


def test_hold_after_arrival() -> None:
    plans = np.zeros((2, 4, 4))
    plans[0, :, 0] = [0.0, 0.5, 1.0, 0.5]  # reaches x = 1 at index 2, then leaves
    plans[:, :, 2] = 1.0
    held = hold_after_arrival(plans, np.array([[1.0, 0.0], [5.0, 5.0]]), 0.1)
    np.testing.assert_allclose(held[0, 2:], [[1.0, 0.0, 0.0, 0.0]] * 2)
    np.testing.assert_allclose(held[0, :2], plans[0, :2])
    np.testing.assert_allclose(held[1], plans[1])  # never arrives: unchanged


def test_implied_velocities_are_position_differences() -> None:
    rng = np.random.default_rng(0)
    plans = rng.normal(size=(2, 5, 4))
    out = implied_velocities(plans, step_dt=0.5)
    np.testing.assert_allclose(out[..., :2], plans[..., :2])  # positions untouched
    np.testing.assert_allclose(out[:, 0], plans[:, 0])  # the observed start as it is
    np.testing.assert_allclose(out[:, 2, 2:], (plans[:, 3, :2] - plans[:, 1, :2]) / 1.0)
    np.testing.assert_allclose(out[:, -1, 2:], (plans[:, -1, :2] - plans[:, -2, :2]) / 0.5)
    # A plan moving at constant speed gets that speed back, whatever velocities it held.
    line = np.zeros((1, 6, 4))
    line[0, :, 0] = 0.3 * np.arange(6)
    line[0, 1:, 2:] = rng.normal(size=(5, 2))
    np.testing.assert_allclose(implied_velocities(line, 0.1)[0, 1:, 2:], [[3.0, 0.0]] * 5)
    assert not np.shares_memory(out, plans)


def test_follower_aims_for_the_velocities_it_is_told_to() -> None:
    plan = np.zeros((1, 3, 4))
    plan[0, :, 0] = [0.0, 0.08, 0.16]  # 0.08 per plan step of 8 env steps: speed 1
    plan[0, :, 2] = 5.0  # the plan's own (inconsistent) velocity
    state = plan[:, 0].copy()
    own, implied = PlanFollower(8), PlanFollower(8, "positions")
    own.set_plans(plan)
    implied.set_plans(plan)
    # a = (wp_xy - xy) + (wp_v - v) at the waypoint one env step ahead: x 0.01; vx 5 as
    # planned, or 4.5 between the start's 5 and the implied 1 at the next plan state.
    np.testing.assert_allclose(own.act(state), [[0.01 + 0.0, 0.0]])  # 5 - 5
    np.testing.assert_allclose(implied.act(state), [[0.01 + 4.5 - 5.0, 0.0]])
    with pytest.raises(CTPError, match="velocities: expected one of plan, positions"):
        PlanFollower(8, "speeds")


def test_bundle_records_velocities_and_plan_overrides_them(planner_file, tmp_path, capsys
                                                          ) -> None:
    from ctp.planning.bundle import load_planner_file

    path = tmp_path / "p.pt"
    assert "velocities" not in load_planner_file(planner_file["planner"])["defaults"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(planner_file["root"]))
        proc = run_main(capsys, "bundle", "--student", planner_file["student"], "--velocities",
                        "positions", "--out", path)
        assert proc.returncode == 0, proc.stderr
        assert load_planner_file(path)["defaults"]["velocities"] == "positions"
        for flags, expected in (((), "positions"), (("--velocities", "plan"), "plan")):
            out = tmp_path / f"{expected}.json"
            proc = run_main(capsys, "plan", "--checkpoint", path, *flags, "--episodes", "1",
                            "--no-progress", "--out", out)
            assert proc.returncode == 0, proc.stderr
            assert json.loads(out.read_text())["velocities"] == expected
            assert f"velocities       {expected}" in proc.stdout


def test_tracking_action_formula_and_clip() -> None:
    wp = np.array([[1.0, 0.2, 0.5, 0.0], [10.0, -10.0, 0.0, 0.0]])
    state = np.array([[0.8, 0.0, 0.3, 0.1], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(tracking_action(wp, state), [[0.4, 0.1], [1.0, -1.0]])


def test_follower_drives_real_pointmaze_to_waypoint() -> None:
    spec = get_maze_spec("umaze")
    env = make_env(spec, eval_goal=True)
    obs, _ = env.reset(seed=3)
    geometry = MazeGeometry(spec.layout)
    start = obs["observation"]
    here = tuple(geometry.xy_to_cell(start[:2]))
    free = [tuple(c) for c in geometry.free_cells()]
    target_cell = next(c for c in free if abs(c[0] - here[0]) + abs(c[1] - here[1]) == 1)
    target = geometry.cell_to_xy(np.array(target_cell))
    # Six plan states 20 env steps apart, velocities consistent with the positions.
    plan = np.zeros((1, 6, 4))
    plan[0, :, :2] = np.linspace(start[:2], target, 6)
    plan[0, 1:-1, 2:] = (target - start[:2]) / 5 / (20 * 0.01)
    follower = PlanFollower(stride=20)
    follower.set_plans(plan)
    distance = np.linalg.norm(obs["achieved_goal"] - target)
    for _ in range(160):
        obs, *_ = env.step(follower.act(obs["observation"][None])[0])
    assert distance > 0.9 and np.linalg.norm(obs["achieved_goal"] - target) < 0.12


def test_scorer_prefers_early_arrival_and_consistent_dynamics() -> None:
    h = 10
    goal = torch.tensor([[1.0, 0.0]])
    t = torch.linspace(0, 1, h)
    early = torch.zeros(1, h, 4)
    early[0, :, 0] = torch.clamp(t * 2, max=1.0)
    late = torch.zeros(1, h, 4)
    late[0, :, 0] = t
    kw = dict(goal_radius=0.45, step_dt=0.1, dyn_weight=0.0)
    assert score_candidates_reference(early, goal, **kw) > score_candidates_reference(late, goal,
                                                                                      **kw)
    # Positions moving by step_dt * velocity are consistent; the same path with zero
    # velocities is penalised.
    consistent = late.clone()
    consistent[0, :, 2] = 1.0 / ((h - 1) * 0.1)
    kw["dyn_weight"] = 1.0
    assert score_candidates_reference(consistent, goal, **kw) > score_candidates_reference(
        late, goal, **kw)


def test_plan_shapes_inpainting_and_best_choice(planner_file) -> None:
    planner = load_planner(planner_file["planner"], config=PlannerConfig(candidates=5))
    obs = np.array([[0.5, 1.0, 0.1, -0.2], [-1.0, -1.0, 0.0, 0.0]], dtype=np.float32)
    goal = np.array([[-1.0, 1.0], [1.0, -1.0]], dtype=np.float32)
    torch.manual_seed(0)
    candidates, scores = planner.plan_step(torch.from_numpy(obs), torch.from_numpy(goal))
    assert candidates.shape == (2, 5, 8, 4) and scores.shape == (2, 5)
    torch.manual_seed(0)
    result = planner.plan(obs, goal)
    assert result.trajectory.shape == (2, 8, 4) and result.action.shape == (2, 2)
    np.testing.assert_allclose(result.score, scores.max(dim=1).values.numpy(), rtol=1e-6)
    np.testing.assert_allclose(result.trajectory[:, 0], obs, atol=1e-5)
    np.testing.assert_allclose(result.trajectory[:, -1, :2], goal, atol=1e-5)
    np.testing.assert_allclose(result.trajectory[:, -1, 2:], 0.0, atol=1e-5)
    assert np.all(np.abs(result.action) <= 1.0)
    single = planner.plan(obs[0], goal[0])
    assert single.trajectory.shape == (8, 4) and single.action.shape == (2,)


@pytest.mark.slow
def test_plan_step_has_no_graph_breaks(planner_file) -> None:
    """Dynamo traces sampling + scoring as one graph: no .item(), no host-dependent branches,
    which is what CUDA-graph capture needs too."""
    for config in (PlannerConfig(candidates=3, jumps=2, critic_weight=1.0),
                   PlannerConfig(candidates=2, sampler="edm", edm_steps=2)):
        planner = load_planner(planner_file["planner"], config=config)
        compiled = torch.compile(planner.plan_step, fullgraph=True, backend="eager")
        with torch.no_grad():
            cands, scores = compiled(torch.zeros(2, 4), torch.ones(2, 2))
        assert cands.shape[:2] == scores.shape == (2, config.candidates)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["ctm", "edm"])
def test_compiled_planner_plans_like_the_eager_one(planner_file, sampler) -> None:
    obs = np.array([[1.0, 1.0, 0.0, 0.0], [3.0, 1.0, 0.5, 0.0]], np.float32)
    goal = np.array([[1.0, 3.0], [3.0, 3.0]], np.float32)
    plans = []
    graphs = torch._dynamo.utils.counters["stats"]
    for compile_ in (False, True):
        config = PlannerConfig(candidates=3, sampler=sampler, edm_steps=2, compile=compile_)
        planner = load_planner(planner_file["planner"], config=config)
        before = graphs["unique_graphs"]
        torch.manual_seed(0)
        plans.append(planner.plan(obs, goal))
        assert (graphs["unique_graphs"] > before) == compile_
    tol = 1e-4 if sampler == "ctm" else 1e-3  # Heun's three network calls add rounding
    np.testing.assert_allclose(plans[1].trajectory, plans[0].trajectory, rtol=tol, atol=tol)
    np.testing.assert_allclose(plans[1].score, plans[0].score, rtol=tol, atol=tol)


def test_plan_cli_end_to_end(planner_file, tmp_path) -> None:
    out, plot = tmp_path / "res.json", tmp_path / "plot.png"
    proc = run_ctp("plan", "--checkpoint", str(planner_file["planner"]), "--episodes", "3",
                   "--num-envs", "2", "--candidates", "4", "--replan", "100", "--out", str(out),
                   "--plot", str(plot), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "d4rl_normalized" in proc.stdout and "plan latency" in proc.stdout
    result = json.loads(out.read_text())
    for key in ("env", "checkpoint", "episodes", "seeds", "sampler", "nfe", "candidates",
                "cuda_graphs", "device", "ref_min_score", "ref_max_score", "return",
                "normalized", "d4rl_normalized", "success_rate", "latency_ms", "per_episode"):
        assert key in result, key
    assert result["seeds"] == [0, 1, 2] and result["episodes"] == 3 and result["nfe"] == 1
    assert result["cuda_graphs"] is False and result["candidates"] == 4
    spec = get_maze_spec("umaze")
    for ep in result["per_episode"]:
        assert 0 <= ep["return"] <= spec.episode_steps and len(ep["plan_latencies_ms"]) == 3
        assert 0 <= ep["closest_distance"] <= ep["final_distance"]
    finals = sorted(ep["final_distance"] for ep in result["per_episode"])
    assert result["goal_distance"]["final_median"] == pytest.approx(finals[1], abs=1e-4)
    assert "goal distance" in proc.stdout
    expected = 100 * (result["return"]["mean"] - 23.85) / (161.86 - 23.85)
    assert result["d4rl_normalized"]["mean"] == pytest.approx(expected)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plan_cli_edm_sampler(planner_file, tmp_path) -> None:
    out = tmp_path / "edm.json"
    proc = run_ctp("plan", "--checkpoint", str(planner_file["planner"]), "--episodes", "1",
                   "--num-envs", "1", "--sampler", "edm", "--edm-steps", "3", "--candidates",
                   "2", "--multi-goal", "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["sampler"] == "edm" and result["nfe"] == 5 and result["task"] == "multi2d"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--checkpoint", "missing.pt"), "missing.pt: checkpoint not found"),
        (("--env", "pointmaze-foo"), "unknown maze 'pointmaze-foo'"),
        (("--candidates", "0"), "--candidates: expected >= 1 and <= 4096, got 0"),
        (("--jumps", "0"), "--jumps: expected an int >= 1 and <= 1000000000, got 0"),
        (("--env", "pointmaze-medium"), "not pointmaze-medium"),
        (("--out", "/nonexistent-dir/x.json"), "--out: folder /nonexistent-dir does not exist"),
    ],
)
def test_plan_cli_bad_input(planner_file, capsys, args, message) -> None:
    base = ["--checkpoint", planner_file["planner"]] if "--checkpoint" not in args else []
    proc = run_main(capsys, "plan", *base, *args, "--episodes", "1", "--no-progress")
    assert_one_line_error(proc, message)


def test_plan_cli_rejects_foreign_checkpoint(planner_file, capsys) -> None:
    proc = run_main(capsys, "plan", "--checkpoint", planner_file["teacher"], "--episodes", "1")
    assert_one_line_error(proc, "kind 'teacher', expected 'planner'")


def test_plan_steps_is_a_deprecated_alias_of_jumps(planner_file, capsys) -> None:
    proc = run_main(capsys, "plan", "--checkpoint", planner_file["planner"], "--steps", "0",
                    "--episodes", "1", "--no-progress")
    warning, error = proc.stderr.strip().splitlines()
    assert warning == ("ctp: warning: '--steps' is deprecated and will be removed in the next "
                       "release; use '--jumps'")
    assert proc.returncode == 2 and error == ("ctp: error: --jumps: expected an int >= 1 and "
                                              "<= 1000000000, got 0")


def test_load_planner_errors(planner_file) -> None:
    with pytest.raises(CTPError, match="--sampler: expected ctm or edm"):
        load_planner(planner_file["planner"], config=PlannerConfig(sampler="ddim"))


def test_unbundle_then_resume_distillation(planner_file, tmp_path) -> None:
    """A planner file turns back into checkpoints that ctm training resumes and re-bundles."""
    from ctp.cli import main
    from ctp.planning.bundle import load_planner_file, unbundle_planner

    written = unbundle_planner(planner_file["planner"], tmp_path / "runs")
    assert set(written) == {"teacher", "ctm", "critic"}
    bundled = load_planner_file(planner_file["planner"])
    student = torch.load(written["ctm"], weights_only=True)
    assert student["step"] == bundled["student"]["step"]
    for name, tensor in bundled["student"]["state"].items():
        torch.testing.assert_close(student["model"][name], tensor.float())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(planner_file["root"]))
        resumed = train(TrainConfig(kind="ctm", teacher=str(written["teacher"]), resume=True,
                                    out_dir=str(written["ctm"].parent), steps=student["step"] + 2,
                                    batch_size=8, progress=False))
        again = tmp_path / "again.pt"
        assert main(["bundle", "--student", str(resumed.latest), "--teacher",
                     str(written["teacher"]), "--out", str(again)]) == 0
    assert resumed.step == student["step"] + 2
    payload = load_planner_file(again)
    assert payload["horizon"] == bundled["horizon"] and payload["student"]["step"] == resumed.step
    torch.testing.assert_close(payload["teacher"]["state"], bundled["teacher"]["state"])


@pytest.mark.parametrize("env", ["pointmaze-umaze",
                                 pytest.param("pointmaze-medium", marks=pytest.mark.slow),
                                 pytest.param("pointmaze-large", marks=pytest.mark.slow)])
def test_bundled_planners(tmp_path, env: str) -> None:
    """Every maze's planner ships inside the package; `ctp plan --env` runs it as shipped."""
    from ctp.planning.bundle import bundled_planner_path, load_planner_file

    path = bundled_planner_path(env)
    assert path.exists(), f"the {env} planner must ship inside the package"
    assert path.stat().st_size < 20 * 2**20
    payload = load_planner_file(path)
    assert payload["teacher"] is not None and payload["critic"] is not None
    maze = get_maze_spec(env)
    # The plan spans the env steps the README states.
    span = (payload["horizon"] - 1) * payload["stride"] + 1
    assert span == {"umaze": 125, "medium": 313, "large": 377}[maze.name]
    out = tmp_path / "default.json"
    args = () if env == "pointmaze-umaze" else ("--env", env)
    proc = run_ctp("plan", *args, "--episodes", "2", "--num-envs", "2", "--out", str(out),
                   "--no-progress")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["checkpoint"] == str(path) and result["env"] == env
    assert result["dataset_id"] == maze.dataset_id
    assert result["ref_min_score"] < result["ref_max_score"]  # shipped with the planner
    assert result["candidates"] == payload["defaults"]["candidates"]
    assert result["replan"] == payload["defaults"]["replan"]
    assert result["velocities"] == payload["defaults"].get("velocities", "plan")
    # Medium and large track the velocities their plans' positions imply (results 22).
    assert result["velocities"] == ("plan" if maze.name == "umaze" else "positions")


def test_missing_bundled_planner_is_a_one_line_error(tmp_path, monkeypatch, capsys) -> None:
    import ctp.planning.bundle as bundle

    monkeypatch.setattr(bundle, "BUNDLED_DIR", tmp_path)
    assert_one_line_error(run_main(capsys, "plan", "--env", "pointmaze-large"),
                          "no planner is bundled for pointmaze-large")
    with pytest.raises(CTPError, match="no planner is bundled for pointmaze-medium in this"):
        load_planner(env="pointmaze-medium")
    proc = run_main(capsys, "plan", "--results-table", tmp_path / "t.md", "--mazes", "large")
    assert_one_line_error(proc, "--mazes: no planner is bundled for pointmaze-large")


@pytest.mark.slow
def test_results_table_from_shipped_planners(tmp_path) -> None:
    out = tmp_path / "table.md"
    proc = run_ctp("plan", "--results-table", str(out), "--episodes", "2", "--mazes", "umaze",
                   "--workers", "2", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("| maze | task | CTP 1 jump | CTP 2 jumps | EDM teacher")
    rows = [line for line in lines if line.startswith("| pointmaze-")]
    assert [r.split(" | ")[:2] for r in rows] == [["| pointmaze-umaze", "single-task"],
                                                  ["| pointmaze-umaze", "multi2d"]]
    table = json.loads(out.with_suffix(".json").read_text())
    cell = table["rows"][0]["cells"]["EDM teacher, 18 Heun"]
    assert cell["nfe"] == 35 and table["rows"][0]["published"]["Diffuser"] == 113.9
    assert table["episodes"] == 2 and table["latency_episodes"] == 3
    for row in table["rows"]:
        for c in row["cells"].values():
            assert 0.0 <= c["success_rate"] <= 1.0
            assert 0 < c["latency_ms"]["p50"] <= c["latency_ms"]["p95"]
        compiled = row["cells"]["CTP 1 jump"]["latency_compiled_ms"]
        assert 0 < compiled["p50"] <= compiled["p95"]
    assert "ms compiled)" in rows[0]
    # Worker processes score the same episodes as this process would: the expert is
    # deterministic per seed.
    from ctp.tasks.pointmaze.results_table import expert_score
    from ctp.tasks.pointmaze.spec import get_maze_spec as spec_of

    assert table["rows"][0]["expert"] == expert_score(spec_of("umaze"), 2, 0, False)


def test_planner_takes_the_ctm_grid_and_sigmas_from_the_file(planner_file, tmp_path,
                                                             monkeypatch) -> None:
    from ctp.models import ctm
    from ctp.planning import planner as planner_module
    from ctp.planning.bundle import ExportConfig, export_planner, load_planner_file

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(planner_file["root"]))
    student = train(TrainConfig(kind="ctm", teacher=str(planner_file["teacher"]), steps=1,
                                batch_size=8, out_dir=str(tmp_path / "c"), progress=False,
                                ctm=ctm.CTMConfig(grid_size=7))).latest
    path = export_planner(ExportConfig(str(student), str(tmp_path / "p.pt")))
    grids = []

    def spy(*args, grid_size, **kwargs):
        grids.append(grid_size)
        return ctm.ctm_sample(*args, grid_size=grid_size, **kwargs)

    monkeypatch.setattr(planner_module, "ctm_sample", spy)
    config = PlannerConfig(candidates=3, jumps=2)
    obs, goal = np.zeros((2, 4), np.float32), np.ones((2, 2), np.float32)
    planner = load_planner(path, config=config)
    assert planner.grid_size == 7
    torch.manual_seed(0)
    on_seven = planner.plan(obs, goal).trajectory
    assert grids == [7]
    # A file that records no grid or EDM constants plans as every file did before: N = 18.
    payload = load_planner_file(path)
    del payload["ctm"], payload["edm"]
    old = planner_module.Planner(payload, config)
    assert old.grid_size == 18 and old.edm == planner.edm
    torch.manual_seed(0)
    assert not np.allclose(old.plan(obs, goal).trajectory, on_seven) and grids == [7, 18]
    payload = load_planner_file(path)
    payload["edm"]["sigma_max"] = 40.0
    assert planner_module.Planner(payload, config).edm.sigma_max == 40.0
