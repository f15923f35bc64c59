"""Recipes (``ctp recipe``): parsing and checks, stage order, resume, refusal of a changed
recipe, and the shipped recipes' first stages on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import CONFIGS, assert_one_line_error, run_main

from ctp.planning.bundle import bundled_planner_path, load_planner_file
from ctp.recipe.config import STAGES, load_recipe, parse_override, parse_recipe
from ctp.recipe.run import spent_seconds
from ctp.utils.errors import CTPError

SHIPPED = sorted(CONFIGS.glob("*/*.toml"))
# A few steps of each stage on tiny data (the dataset is generated into the test's folder).
TINY = ("--set", "data.steps=2000", "--set", "teacher.steps=2", "--set", "teacher.batch_size=4",
        "--set", "teacher.warmup_steps=0", "--set", "student.steps=2",
        "--set", "student.warmup_steps=0", "--set", "student.batch_size=4",
        "--set", "pairs.count=8", "--set", "pairs.heun_steps=2", "--set", "critic.steps=2",
        "--set", "evaluate.episodes=1", "--no-progress")
# The same for a locomotion recipe (no pairs or critic; value and invdyn).
TINY_LOCOMOTION = (
    "--set", "data.steps=2000", "--set", "teacher.steps=2", "--set", "teacher.batch_size=4",
    "--set", "teacher.warmup_steps=0", "--set", "student.steps=2",
    "--set", "student.warmup_steps=0", "--set", "student.batch_size=4",
    "--set", "value.steps=2", "--set", "value.batch_size=4", "--set", "invdyn.steps=2",
    "--set", "invdyn.batch_size=4", "--set", "evaluate.episodes=1",
    "--set", "evaluate.num_envs=1", "--no-progress")

SHIPPED_MEDIUM = bundled_planner_path("pointmaze-medium")
SHIPPED_UMAZE = bundled_planner_path("pointmaze-umaze")
MINIMAL = """
name = "toy"
out = "runs/toy"
[data]
dataset_id = "ctp/pointmaze/umaze-v1"
[teacher]
horizon = 8
dim = 16
dim_mults = [1, 2]
[student]
steps = 5
[bundle]
candidates = 4
"""


def test_shipped_recipes_parse_and_cover_every_maze() -> None:
    names = {load_recipe(path).name for path in SHIPPED}
    assert {"pointmaze-umaze", "pointmaze-medium", "pointmaze-large"} <= names


def test_locomotion_recipes_link_value_and_invdyn_to_the_plans(tmp_path) -> None:
    from ctp.recipe.config import _stage_config
    from ctp.tasks.locomotion.spec import DATASET_NAMES

    recipes = {r.name: r for r in map(load_recipe, sorted(CONFIGS.glob("locomotion/*.toml")))}
    assert set(recipes) == set(DATASET_NAMES)
    for name, recipe in recipes.items():
        task, _, kind = name.partition("-")
        assert recipe.data["dataset_id"] == f"ctp/mujoco/{task}/{kind}-v1"
        assert recipe.bundle["scorers"] == {"value": 1.0} and recipe.bundle["replan"] == 1
        value = _stage_config(recipe, "value", tmp_path)
        invdyn = _stage_config(recipe, "invdyn", tmp_path)
        assert (value.dataset_id, value.horizon, value.stride) == (
            recipe.data["dataset_id"], 32, 1)
        # k: the plan's last state, except where validation seeds chose otherwise
        k = {"halfcheetah-medium-replay": 4}.get(name, 31)
        assert (invdyn.kind, invdyn.dataset_id, invdyn.stride) == (
            "invdyn", recipe.data["dataset_id"], k)
    with pytest.raises(CTPError, match=r"\[invdyn\].*span 31 env steps, got 32"):
        load_recipe(CONFIGS / "locomotion/hopper-medium.toml", {"invdyn.stride": 32})


@pytest.mark.parametrize("text, fragments", [
    ("name = 'x'\nout = 'y'\n[teacher]\n", ("[data]", "expected a table")),
    (MINIMAL + "[teachr]\n", ("unknown option 'teachr'",)),
    (MINIMAL.replace("dim = 16", "dim = 16\nlrr = 1"), ("[teacher]", "lrr")),
    (MINIMAL.replace("dim = 16", "dim = 12"), ("[teacher]", "--dim", "multiple of 8")),
    (MINIMAL.replace("horizon = 8", "horizon = 8\nout_dir = 'x'"),
     ("[teacher]", "'out_dir' is set by the recipe runner")),
    (MINIMAL + "[pairs]\ncount = 0\n", ("[pairs]", "--count", ">= 1")),
    (MINIMAL.replace("candidates = 4", "candidate = 4"), ("[bundle]", "'candidate'")),
    (MINIMAL + "[select]\nseed = 50\n[evaluate]\nseed = 0\n",
     ("[select]", "seeds 50..149 overlap the test seeds 0..99")),
    (MINIMAL + "[value]\nhorizon = 16\n",
     ("[value]", "'horizon' is set by the recipe runner")),
    (MINIMAL + "[invdyn]\nhidden = [0]\n", ("[invdyn]", "--hidden")),
    (MINIMAL.replace("candidates = 4", "candidates = 4\nscorers = { valu = 1.0 }"),
     ("[bundle]", "unknown scorer 'valu'")),
    ("name = 'x'\nout = 'y'\n[data\n", ("not valid TOML",)),
    (MINIMAL.replace("horizon = 8", "from_planner = 'none.pt'"),
     ("[teacher] from_planner", "none.pt", "not found")),
    (MINIMAL.replace("horizon = 8", "from_planner = 3"),
     ("[teacher] from_planner", "expected a planner file path")),
    (MINIMAL.replace("horizon = 8", f"from_planner = '{SHIPPED_MEDIUM}'"),
     ("[teacher] from_planner", "trained on ctp/pointmaze/medium-v1",
      "[data] names ctp/pointmaze/umaze-v1")),
    (MINIMAL.replace("horizon = 8", f"from_planner = '{SHIPPED_UMAZE}'\nhindsight_goals = 0.8"),
     ("[teacher] hindsight_goals", "trained with hindsight_goals = 0",
      "the table asks for 0.8")),
    (MINIMAL + "[distance]\nstride = 4\n", ("[distance]", "'stride' is set by the recipe")),
    (MINIMAL + "[distance]\nexpectile = 1.5\n", ("[distance]", "--expectile", "in (0, 1)")),
])
def test_bad_recipes_name_the_table_and_option(text: str, fragments: tuple[str, ...]) -> None:
    with pytest.raises(CTPError) as info:
        parse_recipe(text, "r.toml")
    message = str(info.value)
    assert message.startswith("r.toml") and "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_overrides_replace_the_files_values() -> None:
    assert parse_override("teacher.steps=2000") == ("teacher.steps", 2000)
    assert parse_override("teacher.lr_schedule=cosine") == ("teacher.lr_schedule", "cosine")
    assert parse_override("teacher.dim_mults=[1, 2]") == ("teacher.dim_mults", [1, 2])
    recipe = parse_recipe(MINIMAL, "r.toml", {"student.steps": 7, "evaluate.episodes": 3})
    assert recipe.student["steps"] == 7 and recipe.evaluate == {"episodes": 3}
    with pytest.raises(CTPError, match="--set studnt.steps: expected TABLE.KEY"):
        parse_recipe(MINIMAL, "r.toml", {"studnt.steps": 7})
    with pytest.raises(CTPError, match="expected TABLE.KEY=VALUE"):
        parse_override("teacher.steps")


def test_spent_seconds_adds_up_attempts(tmp_path) -> None:
    rows = [10, 20, 30, 5, 15, "torn"]  # two attempts: 30 s, then 15 s
    (tmp_path / "metrics.jsonl").write_text("\n".join(
        json.dumps({"elapsed_s": r}) if r != "torn" else '{"elapsed' for r in rows))
    assert spent_seconds(tmp_path / "metrics.jsonl") == pytest.approx(45.0)
    assert spent_seconds(tmp_path / "missing.jsonl") == 0.0


def test_cli_errors_are_one_line(capsys, tmp_path) -> None:
    assert_one_line_error(run_main(capsys, "recipe", tmp_path / "none.toml"),
                          "none.toml", "cannot read the recipe")
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL.replace("candidates = 4", "candidates = 0"))
    assert_one_line_error(run_main(capsys, "recipe", bad), "bad.toml", "[bundle]",
                          "--candidates")
    assert_one_line_error(run_main(capsys, "recipe", CONFIGS / "pointmaze/umaze.toml",
                                   "--until", "everything"), "--until", "expected one of")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["medium", "large"])
def test_maze_recipes_run_their_first_stages(capsys, own_root, tmp_path, name) -> None:
    out = tmp_path / "run"
    proc = run_main(capsys, "recipe", CONFIGS / f"pointmaze/{name}.toml", "--out", out,
                    "--until", "teacher", *TINY)
    assert proc.returncode == 0, proc.stderr
    stages = json.loads((out / "stages.json").read_text())
    assert list(stages) == ["data", "teacher"] and stages["teacher"]["step"] == 2
    assert (out / "teacher" / "latest.pt").exists()
    assert json.loads((out / "recipe.json").read_text())["teacher"]["horizon"] in (40, 48)


@pytest.mark.slow
def test_umaze_recipe_runs_end_to_end_resumes_and_refuses_a_changed_recipe(
        capsys, own_root, tmp_path) -> None:
    out = tmp_path / "run"
    recipe = CONFIGS / "pointmaze/umaze.toml"
    first = run_main(capsys, "recipe", recipe, "--out", out, "--until", "pairs", *TINY)
    assert first.returncode == 0, first.stderr
    assert list(json.loads((out / "stages.json").read_text())) == ["data", "teacher", "pairs"]
    changed = run_main(capsys, "recipe", recipe, "--out", out, *TINY, "--set",
                       "teacher.steps=3")
    assert_one_line_error(changed, "recipe.json", "[teacher] steps = 2", "says 3")
    budget = run_main(capsys, "recipe", recipe, "--out", out, "--until", "pairs", *TINY,
                      "--set", "student.max_minutes=90")  # a budget may change
    assert budget.returncode == 0, budget.stderr
    assert json.loads((out / "recipe.json").read_text())["student"]["max_minutes"] == 90
    rest = run_main(capsys, "recipe", recipe, "--out", out, *TINY)
    assert rest.returncode == 0, rest.stderr
    stages = json.loads((out / "stages.json").read_text())
    assert list(stages) == [s for s in STAGES if s not in ("value", "invdyn", "distance",
                                                           "select")]
    assert stages["teacher"]["step"] == 2  # not trained again
    result = json.loads((out / "eval.json").read_text())
    assert result["episodes"] == 1 and result["candidates"] == 32
    assert "total" in rest.stdout and "evaluate" in rest.stdout


@pytest.mark.slow
def test_teacher_from_a_planner_file_is_copied_not_trained(capsys, own_root, tmp_path) -> None:
    import torch

    from ctp.utils.checkpoint import load_checkpoint

    out, shipped = tmp_path / "run", bundled_planner_path("pointmaze-umaze")
    proc = run_main(capsys, "recipe", CONFIGS / "pointmaze/umaze.toml", "--out", out,
                    "--until", "pairs", *TINY, "--set", f"teacher.from_planner={shipped}")
    assert proc.returncode == 0, proc.stderr
    assert "hindsight_goals 0, which its students inherit" in proc.stdout
    stages = json.loads((out / "stages.json").read_text())
    planner = load_planner_file(shipped)
    assert stages["teacher"]["from_planner"] == str(shipped)
    assert stages["teacher"]["step"] == planner["teacher"]["step"]  # not teacher.steps=2
    assert not (out / "teacher" / "metrics.jsonl").exists()
    teacher = load_checkpoint(out / "teacher" / "latest.pt", "teacher")
    for name, weight in planner["teacher"]["state"].items():
        assert torch.equal(teacher["ema"][name], weight.float()), name
    assert teacher["horizon"] == planner["horizon"] and stages["pairs"]["count"] == 8


@pytest.mark.slow
def test_a_distance_table_trains_the_goal_distance_and_bundles_it(capsys, own_root, tmp_path
                                                                   ) -> None:
    """``[distance]`` (given by --set): the stage trains on the recipe's dataset, the bundle
    holds the network and scores with it."""
    out = tmp_path / "run"
    proc = run_main(capsys, "recipe", CONFIGS / "pointmaze/umaze.toml", "--out", out,
                    "--until", "bundle", *TINY, "--set", "distance.steps=2",
                    "--set", "distance.batch_size=4", "--set", "distance.hidden=[8]",
                    "--set", "bundle.scorers={ reward = 1.0, distance = 0.5 }")
    assert proc.returncode == 0, proc.stderr
    stages = json.loads((out / "stages.json").read_text())
    assert stages["distance"]["step"] == 2 and "select" not in stages
    payload = load_planner_file(out / "planner.pt")
    assert payload["distance"]["distance"]["hidden"] == [8]
    assert payload["scorers"]["distance"] == 0.5


@pytest.mark.slow
def test_hopper_recipe_trains_value_and_invdyn_and_bundles_them(capsys, own_root, tmp_path
                                                                 ) -> None:
    out = tmp_path / "run"
    proc = run_main(capsys, "recipe", CONFIGS / "locomotion/hopper-medium.toml", "--out", out,
                    *TINY_LOCOMOTION)
    assert proc.returncode == 0, proc.stderr
    stages = json.loads((out / "stages.json").read_text())
    assert list(stages) == [s for s in STAGES if s not in ("pairs", "critic", "distance",
                                                           "select")]
    payload = load_planner_file(out / "planner.pt")
    assert payload["value"] is not None and payload["invdyn"]["invdyn"]["stride"] == 31
    assert payload["scorers"] == {"value": 1.0} and payload["defaults"]["replan"] == 1
    result = json.loads((out / "eval.json").read_text())
    assert result["env"] == "hopper-medium" and result["replan"] == 1
    recipe_k = load_recipe(CONFIGS / "locomotion/hopper-medium.toml").bundle["candidates"]
    assert result["scorer"] == "value" and result["candidates"] == recipe_k


@pytest.mark.slow
def test_select_chooses_the_best_checkpoint_on_validation_seeds(capsys, own_root,
                                                                 tmp_path) -> None:
    out = tmp_path / "run"
    proc = run_main(capsys, "recipe", CONFIGS / "pointmaze/umaze.toml", "--out", out, *TINY,
                    "--set", "student.checkpoint_every=1", "--set", "select.episodes=2",
                    "--set", "select.num_envs=2")
    assert proc.returncode == 0, proc.stderr
    stages = json.loads((out / "stages.json").read_text())
    scores = stages["select"]["validation"]
    assert len(scores) == 3  # step-1, step-2 (keep_best 2) and latest
    assert stages["select"]["chosen"] == max(scores, key=scores.get)
    for candidate in scores:
        result = json.loads((out / "select" / f"{Path(candidate).stem}.json").read_text())
        assert result["seeds"] == [1000, 1001]  # validation, never the test seeds
        assert result["d4rl_normalized"]["mean"] == scores[candidate]
    assert not list((out / "select").glob("*.planner.pt"))
    assert json.loads((out / "eval.json").read_text())["seeds"] == [0]
