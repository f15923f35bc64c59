"""Composable plan scorers: weighted sums, skipped zero weights, names, planner files."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, run_main

from ctp.kernels import score_candidates_reference
from ctp.planning import scorers as scoring
from ctp.planning.bundle import (
    ExportConfig,
    bundled_planner_path,
    export_planner,
    load_planner_file,
)
from ctp.planning.config import PlannerConfig, defaults_of
from ctp.planning.planner import Planner, load_planner
from ctp.tasks import get_task, planning_task
from ctp.tasks.base import Candidates, Scorer
from ctp.utils.errors import CTPError

torch.set_num_threads(1)
MAZE = planning_task(get_task("pointmaze"))


def maze_plans(n: int = 6, h: int = 9, seed: int = 0) -> Candidates:
    g = torch.Generator().manual_seed(seed)
    raw = torch.randn(n, h, 4, generator=g)
    goal = raw[:, -1, :2] + 0.2 * torch.randn(n, 2, generator=g)
    return Candidates(raw, raw, goal, torch.zeros_like(raw), torch.zeros_like(raw), 4, 0.45)


def test_weighted_sum_equals_the_manual_combination() -> None:
    plans = maze_plans()
    reward = MAZE.scorers["reward"].fn(plans)
    dyn = -MAZE.scorers["dynamics"].fn(plans)
    assert (dyn > 0).all() and reward.max() > 0
    default = scoring.terms(MAZE, scoring.resolve_weights(MAZE), {}, "test")
    # The default rule is the fused maze score, bit for bit.
    assert torch.equal(scoring.weighted_sum(default, plans), score_candidates_reference(
        plans.raw, plans.goal, goal_radius=0.45, step_dt=0.04, dyn_weight=10.0))
    critic = SimpleNamespace(network="critic")
    logits = torch.linspace(-1, 1, 6)

    def fake_critic(x, mask, value):
        return logits

    weights = scoring.resolve_weights(MAZE, {"reward": 2.0, "critic": 0.5}, {"dyn_weight": 3.0})
    assert weights == {"reward": 2.0, "dynamics": 3.0, "critic": 0.5}
    got = scoring.weighted_sum(scoring.terms(MAZE, weights, {critic.network: fake_critic},
                                             "test"), plans)
    torch.testing.assert_close(got, 2.0 * reward - 3.0 * dyn + 0.5 * logits, rtol=0, atol=1e-6)


def test_zero_weight_skips_the_scorer() -> None:
    calls = []

    def counted(plans):
        calls.append(1)
        return plans.raw.sum(dim=(1, 2))

    def broken(plans):
        raise AssertionError("a zero-weight scorer was evaluated")

    task = SimpleNamespace(name="fake", scorers={"a": Scorer(counted), "b": Scorer(broken)},
                           scorer_weights={"a": 1.0, "b": 0.0})
    plans = maze_plans()
    weights = scoring.resolve_weights(task)
    assert weights == {"a": 1.0, "b": 0.0}
    terms = scoring.terms(task, weights, {}, "test")  # a zero critic weight needs no critic
    assert torch.equal(scoring.weighted_sum(terms, plans), plans.raw.sum(dim=(1, 2)))
    assert calls == [1]
    none = scoring.terms(task, {"a": 0.0, "b": 0.0, "critic": 0.0}, {}, "test")
    assert torch.equal(scoring.weighted_sum(none, plans), torch.zeros(6))
    assert scoring.describe(task, {"a": 0.0, "b": 0.0}) == "0"
    with pytest.raises(CTPError, match="a critic weight needs a planner file with the critic"):
        scoring.terms(task, {"critic": 1.0}, {}, "test")


def test_scorer_names() -> None:
    assert scoring.describe(MAZE, {"reward": 1.0, "dynamics": 10.0}) == "reward - 10*dynamics"
    assert scoring.describe(MAZE, {"reward": 1.0, "dynamics": 10.0, "critic": 0.5}) == (
        "reward - 10*dynamics + 0.5*critic")
    assert scoring.describe(MAZE, {"reward": 2.0, "dynamics": 0.0, "critic": -1.0}) == (
        "2*reward - 1*critic")
    task = SimpleNamespace(name="toy", scorers={"distance": Scorer(None, penalty=True)},
                           scorer_weights={"distance": 1.0})
    assert scoring.describe(task, scoring.resolve_weights(task)) == "-distance"


@pytest.mark.parametrize(("weights", "aliases", "message"), [
    ({"foo": 1.0}, None, "scorers: unknown scorer 'foo' for task 'pointmaze': expected one of "
                         "reward, dynamics, critic"),
    ({"critic": float("nan")}, None, "scorer 'critic': expected a finite weight, got nan"),
    ({"reward": "1"}, None, "scorer 'reward': expected a finite weight"),
])
def test_bad_weights_are_refused(weights, aliases, message) -> None:
    with pytest.raises(CTPError) as err:
        scoring.resolve_weights(MAZE, weights, aliases)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_alias_for_a_scorer_the_task_lacks_is_refused() -> None:
    task = SimpleNamespace(name="toy", scorers={"distance": Scorer(None)},
                           scorer_weights={"distance": 1.0})
    with pytest.raises(CTPError, match="--dyn-weight: unknown scorer 'dynamics' for task 'toy'"):
        scoring.resolve_weights(task, None, {"dyn_weight": 5.0})


def test_unknown_scorer_in_a_file_is_one_line_error(tmp_path, capsys) -> None:
    from ctp.utils.checkpoint import save_checkpoint

    payload = load_planner_file(bundled_planner_path("pointmaze-umaze"))
    with pytest.raises(CTPError, match="unknown scorer 'valu' for task 'pointmaze'"):
        Planner(payload, defaults_of({**payload, "scorers": {"reward": 1.0, "valu": 1.0}}))
    path = save_checkpoint(tmp_path / "p.pt", {**payload, "scorers": {"valu": 1.0}})
    proc = run_main(capsys, "plan", "--checkpoint", path, "--episodes", "1", "--no-progress")
    assert_one_line_error(proc, f"{path}: scorers: unknown scorer 'valu'")


@pytest.mark.parametrize(("args", "message"), [
    (("--scorer", "foo=1"), "--scorer: unknown scorer 'foo' for task 'pointmaze'"),
    (("--scorer", "critic"), "expected NAME=WEIGHT, e.g. critic=0.5, got 'critic'"),
    (("--scorer", "critic=x"), "expected NAME=WEIGHT"),
    (("--scorer", "critic=inf"), "--scorer: scorer 'critic': expected a finite weight"),
])
def test_plan_cli_refuses_bad_scorers(capsys, args, message) -> None:
    proc = run_main(capsys, "plan", *args, "--episodes", "1", "--no-progress")
    assert_one_line_error(proc, message)


def test_plan_cli_scorer_sets_the_weight(capsys, tmp_path) -> None:
    import json

    out = tmp_path / "r.json"
    proc = run_main(capsys, "plan", "--scorer", "critic=0.25", "--scorer", "dynamics=2",
                    "--episodes", "1", "--candidates", "2", "--no-progress", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["scorer"] == "reward - 2*dynamics + 0.25*critic"


def test_shipped_files_without_scorers_plan_as_before() -> None:
    """Files from before the scorers entry: their defaults' dyn_weight / critic_weight, and the
    plan scores are the fused maze score of version 1, bit for bit."""
    payload = load_planner_file(bundled_planner_path("pointmaze-umaze"))
    assert "scorers" not in payload and payload["defaults"]["dyn_weight"] == 10.0
    config = defaults_of(payload)
    assert config.scorers == {"dynamics": 10.0, "critic": 0.0} and config.candidates == 32
    planner = load_planner(env="pointmaze-umaze")
    assert planner.scorer_weights() == {"reward": 1.0, "dynamics": 10.0, "critic": 0.0}
    assert planner.scorer_name() == "reward - 10*dynamics"
    state = torch.tensor([[1.0, 1.0, 0.0, 0.0], [2.0, 1.0, 0.3, 0.0]])
    goal = torch.tensor([[1.0, 3.0], [3.0, 3.0]])
    torch.manual_seed(0)
    with torch.no_grad():
        cands, scores = planner.plan_step(state, goal)
    expected = score_candidates_reference(
        cands.flatten(0, 1), goal.repeat_interleave(32, dim=0), goal_radius=0.45,
        step_dt=0.01 * planner.stride, dyn_weight=10.0)
    assert torch.equal(scores, expected.view(2, 32))


def test_bundle_records_scorers_and_a_reloaded_planner_uses_them(planner_file, tmp_path,
                                                                 monkeypatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(planner_file["root"]))
    paths = {k: str(planner_file[k]) for k in ("student", "teacher")}
    critic = Path(planner_file["student"]).parent.parent / "k" / "latest.pt"  # the fixture's
    default = load_planner_file(planner_file["planner"])
    assert default["scorers"] == {"reward": 1.0, "dynamics": 10.0}
    assert "dyn_weight" not in default["defaults"]
    out = export_planner(ExportConfig(
        paths["student"], str(tmp_path / "p.pt"), paths["teacher"],
        str(critic),
        defaults={"candidates": 3, "dyn_weight": 2.0}, scorers={"critic": 0.5}))
    payload = load_planner_file(out)
    assert payload["scorers"] == {"reward": 1.0, "dynamics": 2.0, "critic": 0.5}
    assert payload["defaults"] == {"candidates": 3}
    planner = load_planner(out)
    assert planner.scorer_name() == "reward - 2*dynamics + 0.5*critic"
    same = Planner(payload, PlannerConfig(candidates=3, dyn_weight=2.0, critic_weight=0.5))
    # The same file read the old way (weights in defaults) plans the same.
    legacy = {k: v for k, v in payload.items() if k != "scorers"}
    legacy["defaults"] = {"candidates": 3, "dyn_weight": 2.0, "critic_weight": 0.5}
    old = Planner(legacy, defaults_of(legacy))
    obs = np.array([[0.5, 1.0, 0.1, -0.2]], np.float32)
    goal = np.array([[-1.0, 1.0]], np.float32)
    results = []
    for p in (planner, same, old):
        torch.manual_seed(3)
        results.append(p.plan(obs, goal).score)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])
    with pytest.raises(CTPError, match="scorer 'critic' has weight 0.5 but no critic is bundled"):
        export_planner(ExportConfig(paths["student"], str(tmp_path / "q.pt"),
                                    scorers={"critic": 0.5}))
    with pytest.raises(CTPError, match="--scorer: unknown scorer 'q'"):
        export_planner(ExportConfig(paths["student"], str(tmp_path / "q.pt"),
                                    scorers={"q": 0.5}))
