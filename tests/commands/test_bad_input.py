"""Issue 15's bad-input and fault matrix: nothing silent, nothing lost.

Every CLI case runs ``ctp`` in this process on copies of a tiny planner file, its training
runs and the tiny umaze dataset, and asserts one line ``ctp: error: ...`` naming the option,
file or field, exit status 2, no traceback (an uncaught exception fails the test) and not a
byte changed on disk. The ``Planner.plan`` cases assert a ``CTPError`` naming the argument;
the process cases check exit statuses a shell sees (SIGINT 130, SIGTERM 143, closed pipe).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from helpers import CONFIGS, assert_one_line_error, run_main, spawn_ctp

from ctp.cli import main
from ctp.planning import load_planner
from ctp.planning.bundle import bundled_planner_path
from ctp.planning.config import MAX_CANDIDATES
from ctp.tasks.locomotion.generate import shipped_actor_path
from ctp.training.config import TrainConfig
from ctp.training.loop import train
from ctp.utils.checkpoint import load_checkpoint, save_checkpoint
from ctp.utils.errors import CTPError

torch.set_num_threads(1)

PLAN = ("plan", "--checkpoint", "{w}/planner.pt", "--episodes", "1", "--no-progress")
TINY = ("--horizon", "8", "--stride", "4", "--dim", "16", "--dim-mults", "1,2",
        "--batch-size", "8", "--steps", "5", "--no-progress")
TEACHER = ("train", "teacher", *TINY)
RESUME = (*TEACHER, "--resume", "--out", "{w}/t")
CTM = ("train", "ctm", "--teacher", "{w}/t/latest.pt", "--steps", "5", "--batch-size", "8",
       "--no-progress")
JUMP_ERROR = ("jump-error", "--student", "{w}/c/latest.pt", "--pairs")
DATA = "minari/ctp/pointmaze/umaze-v1/data/main_data.hdf5"
HUGE = str(10**23)  # beyond 64 bits


# ------------------------------------------------------------------ broken input files


def _edit_planner(w: Path, edit: Callable[[dict], None]) -> None:
    """``w/bad.pt``: the planner file with ``edit`` applied to its payload."""
    payload = load_checkpoint(w / "planner.pt", "planner")
    edit(payload)
    save_checkpoint(w / "bad.pt", payload)


def _first_student_tensor(payload: dict) -> torch.Tensor:
    return next(iter(payload["student"]["state"].values()))


def nan_weight(w: Path) -> None:
    _edit_planner(w, lambda p: _first_student_tensor(p).view(-1).__setitem__(0, float("nan")))


def nan_normalizer(w: Path) -> None:
    _edit_planner(w, lambda p: p["normalizer"]["high"].__setitem__(1, float("nan")))


def no_student(w: Path) -> None:
    _edit_planner(w, lambda p: p.pop("student"))


def wrong_shape(w: Path) -> None:
    def edit(payload: dict) -> None:
        state = payload["student"]["state"]
        name = next(iter(state))
        state[name] = torch.zeros(3, 5)

    _edit_planner(w, edit)


def grid_size_one(w: Path) -> None:
    _edit_planner(w, lambda p: p["ctm"].__setitem__("grid_size", 1))


def nan_sigma_max(w: Path) -> None:
    _edit_planner(w, lambda p: p["edm"].__setitem__("sigma_max", float("nan")))


def unknown_edm_field(w: Path) -> None:
    _edit_planner(w, lambda p: p["edm"].__setitem__("sigma_maximum", 80.0))


def nan_teacher(w: Path) -> None:
    payload = load_checkpoint(w / "t" / "latest.pt", "teacher")
    next(iter(payload["ema"].values())).view(-1)[0] = float("inf")
    save_checkpoint(w / "inf_teacher.pt", {k: v for k, v in payload.items()
                                           if k != "schema_version"})


def nan_student(w: Path) -> None:
    """``w/nan_ctm.pt``: the student's checkpoint with one EMA weight NaN."""
    payload = load_checkpoint(w / "c" / "latest.pt", "ctm")
    payload["ema"]["net.final_conv.weight"].view(-1)[0] = float("nan")
    save_checkpoint(w / "nan_ctm.pt", {k: v for k, v in payload.items()
                                       if k != "schema_version"})


def nan_critic_planner(w: Path) -> None:
    _edit_planner(w, lambda p: next(iter(p["critic"]["state"].values())).view(-1)
                  .__setitem__(0, float("nan")))


def a_run_in_u(w: Path) -> None:
    """``w/u/ctm``: a training run where ``ctp unbundle --out w/u`` would write the student."""
    (w / "u" / "ctm").mkdir(parents=True)
    shutil.copy(w / "c" / "latest.pt", w / "u" / "ctm" / "latest.pt")


def hdf5_copy(w: Path) -> None:
    shutil.copy(w / DATA, w / "d.hdf5")


def empty_metrics(w: Path) -> None:
    (w / "e").mkdir()
    (w / "e" / "metrics.jsonl").write_text("")


def binary_metrics(w: Path) -> None:
    (w / "e").mkdir()
    (w / "e" / "metrics.jsonl").write_bytes(np.random.default_rng(0).bytes(4096))


def binary_recipe(w: Path) -> None:
    (w / "r.toml").write_bytes(np.random.default_rng(0).bytes(4096))


def a_file(w: Path) -> None:
    (w / "file.txt").write_text("not a folder\n")


def other_teacher(w: Path) -> None:
    shutil.copy(w / "t" / "latest.pt", w / "other_teacher.pt")


def other_student(w: Path) -> None:
    shutil.copy(w / "c" / "latest.pt", w / "other_student.pt")


def empty_run(w: Path) -> None:
    (w / "empty").mkdir()


def zero_byte_data(w: Path) -> None:
    (w / DATA).write_bytes(b"")


def junk_data(w: Path) -> None:
    (w / DATA).write_bytes(np.random.default_rng(0).bytes(4096))


def nan_data(w: Path) -> None:
    with h5py.File(w / DATA, "r+") as f:
        obs = f["episode_1/observations/observation"]
        values = obs[...]
        values[3:11, 1] = np.nan
        obs[...] = values


RECIPE = """name = "r"
out = "runs/r"
[data]
dataset_id = "ctp/pointmaze/umaze-v1"
[teacher]
horizon = 8
[student]
steps = 2
[bundle]
candidates = 4
"""


def recipe_with_unknown_option(w: Path) -> None:
    (w / "r.toml").write_text(RECIPE.replace("horizon = 8", "horizon = 8\nlrr = 1"))


def recipe_with_overlapping_seeds(w: Path) -> None:
    (w / "r.toml").write_text(RECIPE + "[select]\nseed = 10\n[evaluate]\nseed = 0\n")


def nan_pairs(w: Path) -> None:
    """``w/pairs.pt``: two pairs fitting the tiny student, one target entry NaN."""
    student = load_checkpoint(w / "c" / "latest.pt", "ctm")
    shape = (2, student["horizon"], student["unet"]["obs_dim"])
    target = torch.zeros(shape)
    target[1, 3, 0] = float("nan")
    save_checkpoint(w / "pairs.pt", {
        "kind": "pairs", "dataset_id": student["dataset_id"], "horizon": student["horizon"],
        "stride": student["stride"], "teacher_fingerprint": "0" * 16, "noise": torch.zeros(shape),
        "start": torch.zeros(shape[0], shape[2]), "goal": torch.zeros(shape[0], shape[2]),
        "target": target})


def distance_of_three_dims(w: Path) -> None:
    """``w/d3.pt``: a goal distance trained 1 step on the dataset, its config claiming
    3-dim positions (the task's goals are 2-dim)."""
    latest = train(TrainConfig(kind="distance", steps=1, batch_size=8, hidden=(8,),
                               out_dir=str(w / "d"), progress=False)).latest
    payload = load_checkpoint(latest, "distance")
    payload["distance"]["goal_dims"] = 3
    save_checkpoint(w / "d3.pt", payload)


def junk_json(w: Path) -> None:
    (w / "a.json").write_text("{not json")


def not_a_result(w: Path) -> None:
    (w / "a.json").write_text(json.dumps({"env": "pointmaze-umaze"}))


# (argv with {w} for the work folder, fragments the error line must hold, setup)
CLI_CASES = {
    # ctp compare (the rest of its refusals are in tests/test_comparison.py)
    "compare-missing-file": (("compare", "{w}/none.json", "{w}/none.json"),
                             ["none.json", "no such file"], None),
    "compare-junk-json": (("compare", "{w}/a.json", "{w}/a.json"),
                          ["a.json", "not a JSON file"], junk_json),
    "compare-not-a-result": (("compare", "{w}/a.json", "{w}/a.json"),
                             ["a.json", "not a 'ctp plan --out' result"], not_a_result),
    "compare-out-is-input": (("compare", "{w}/a.json", "{w}/a.json", "--out", "{w}/a.json"),
                             ["--out", "is the BASE.json input"], junk_json),
    # recipes: every option is checked before any stage runs
    "recipe-missing-file": (("recipe", "{w}/none.toml"), ["none.toml", "cannot read"], None),
    "recipe-binary-file": (("recipe", "{w}/r.toml"), ["r.toml", "not a text file"],
                           binary_recipe),
    "recipe-unknown-option": (("recipe", "{w}/r.toml"), ["r.toml", "[teacher]", "lrr"],
                              recipe_with_unknown_option),
    "recipe-select-overlaps-test-seeds": (("recipe", "{w}/r.toml"),
                                          ["[select]", "overlap the test seeds"],
                                          recipe_with_overlapping_seeds),
    "recipe-set-unknown-table": (("recipe", str(CONFIGS / "pointmaze/umaze.toml"), "--set",
                                  "studnt.steps=1"), ["--set studnt.steps"], None),
    "recipe-distance-stride": (("recipe", str(CONFIGS / "pointmaze/umaze.toml"), "--set",
                                "distance.stride=4"),
                               ["[distance]", "'stride' is set by the recipe runner"], None),
    "recipe-teacher-hindsight-differs": (("recipe", str(CONFIGS / "pointmaze/umaze.toml"),
                                          "--set", "teacher.from_planner="
                                          f"{bundled_planner_path('pointmaze-umaze')}",
                                          "--set", "teacher.hindsight_goals=0.8"),
                                         ["[teacher] hindsight_goals",
                                          "trained with hindsight_goals = 0", "asks for 0.8"],
                                         None),
    "recipe-invdyn-beyond-plan": (("recipe", str(CONFIGS / "locomotion/hopper-medium.toml"),
                                   "--set", "invdyn.stride=32"),
                                  ["[invdyn]", "span 31 env steps", "got 32"], None),
    "recipe-bundle-velocities-unknown": (("recipe", str(CONFIGS / "pointmaze/medium.toml"),
                                          "--set", "bundle.velocities=speeds"),
                                         ["--velocities", "one of plan, positions", "speeds"],
                                         None),
    "recipe-bundle-velocities-locomotion": (
        ("recipe", str(CONFIGS / "locomotion/hopper-medium.toml"), "--set",
         "bundle.velocities=positions"),
        ["[bundle]", "positions", "locomotion controller", "follows plan only"], None),
    "recipe-teacher-from-missing-planner": (
        ("recipe", str(CONFIGS / "pointmaze/umaze.toml"), "--set",
         "teacher.from_planner={w}/none.pt"),
        ["[teacher] from_planner", "none.pt", "not found"], None),
    "recipe-teacher-from-other-dataset": (
        ("recipe", str(CONFIGS / "pointmaze/umaze.toml"), "--set",
         f"teacher.from_planner={bundled_planner_path('hopper-medium')}"),
        ["[teacher] from_planner", "trained on ctp/mujoco/hopper/medium-v1"], None),
    # NaN / inf / out-of-range float options
    "plan-dyn-weight-nan": ((*PLAN, "--dyn-weight", "nan"), ["--dyn-weight", "finite"], None),
    "plan-critic-weight-inf": ((*PLAN, "--critic-weight", "inf"), ["--critic-weight", "finite"],
                               None),
    "train-grad-clip-nan": ((*TEACHER, "--grad-clip", "nan", "--out", "{w}/o"),
                            ["--grad-clip", "> 0", "nan"], None),
    "train-grad-clip-negative": ((*TEACHER, "--grad-clip", "-1", "--out", "{w}/o"),
                                 ["--grad-clip", "> 0", "-1"], None),
    "train-grad-clip-zero": ((*TEACHER, "--grad-clip", "0", "--out", "{w}/o"),
                             ["--grad-clip", "> 0"], None),
    "train-lr-nan": ((*TEACHER, "--lr", "nan", "--out", "{w}/o"), ["--lr", "nan"], None),
    "train-lr-inf": ((*TEACHER, "--lr", "inf", "--out", "{w}/o"), ["--lr", "inf"], None),
    "train-lr-min-nan": ((*TEACHER, "--lr-min", "nan", "--out", "{w}/o"),
                         ["--lr-min", "finite", "nan"], None),
    "train-lr-min-above-lr": ((*TEACHER, "--lr", "1e-4", "--lr-min", "1e-3", "--out", "{w}/o"),
                              ["--lr-min", "[0, --lr]", "0.001"], None),
    "train-lr-min-negative": ((*TEACHER, "--lr-min=-1e-5", "--out", "{w}/o"),
                              ["--lr-min", "[0, --lr]", "-1e-05"], None),
    "train-warmup-steps-negative": ((*TEACHER, "--warmup-steps", "-1", "--out", "{w}/o"),
                                    ["--warmup-steps", ">= 0", "-1"], None),
    "train-lr-schedule-unknown": ((*TEACHER, "--lr-schedule", "linear", "--out", "{w}/o"),
                                  ["--lr-schedule", "constant or cosine", "linear"], None),
    "train-schedule-with-cuda-graphs": ((*TEACHER, "--cuda-graphs", "--warmup-steps", "10",
                                         "--out", "{w}/o"),
                                        ["--cuda-graphs", "fixed learning rate"], None),
    "train-max-minutes-inf": ((*TEACHER, "--max-minutes", "inf", "--out", "{w}/o"),
                              ["--max-minutes", "inf"], None),
    "train-ema-nan": ((*TEACHER, "--ema", "nan", "--out", "{w}/o"), ["--ema", "nan"], None),
    "train-keep-best-negative": ((*TEACHER, "--keep-best", "-1", "--out", "{w}/o"),
                                 ["--keep-best", ">= 0"], None),
    "ctm-lambda-dsm-nan": ((*CTM, "--lambda-dsm", "nan", "--out", "{w}/o"),
                           ["--lambda-dsm", "nan"], None),
    "ctm-pair-weight-inf": ((*CTM, "--pair-weight", "inf", "--out", "{w}/o"),
                            ["--pair-weight", "inf"], None),
    "bundle-dyn-weight-nan": (("bundle", "--student", "{w}/c/latest.pt", "--out",
                               "{w}/p.pt", "--dyn-weight", "nan"), ["--dyn-weight", "finite"],
                              None),
    "bundle-replan-zero": (("bundle", "--student", "{w}/c/latest.pt", "--out",
                            "{w}/p.pt", "--replan", "0"), ["--replan", ">= 1"], None),
    # NaN / broken tensors in files
    "planner-nan-weight": (("plan", "--checkpoint", "{w}/bad.pt", "--episodes", "1"),
                           ["bad.pt", "student", "NaN or inf"], nan_weight),
    "planner-nan-normalizer": (("plan", "--checkpoint", "{w}/bad.pt", "--episodes", "1"),
                               ["bad.pt", "normalizer", "finite"], nan_normalizer),
    "planner-no-student": (("plan", "--checkpoint", "{w}/bad.pt", "--episodes", "1"),
                           ["bad.pt", "no 'student' entry"], no_student),
    "planner-wrong-shape": (("plan", "--checkpoint", "{w}/bad.pt", "--episodes", "1"),
                            ["bad.pt", "student", "has shape (3, 5), expected"], wrong_shape),
    "planner-grid-size-one": (("plan", "--checkpoint", "{w}/bad.pt", "--episodes", "1"),
                              ["bad.pt: ctm.grid_size", "an int >= 2", "got 1"], grid_size_one),
    "planner-nan-sigma-max": (("plan", "--checkpoint", "{w}/bad.pt", "--episodes", "1"),
                              ["bad.pt: edm.sigma_max", "finite", "nan"], nan_sigma_max),
    "planner-unknown-edm-field": (("plan", "--checkpoint", "{w}/bad.pt", "--episodes", "1"),
                                  ["bad.pt: edm: expected a dict of sigma_min"],
                                  unknown_edm_field),
    "average-nan-input": (("average", "{w}/c/latest.pt", "{w}/nan_ctm.pt", "--out",
                           "{w}/avg.pt"),
                          ["nan_ctm.pt: ema", "'net.final_conv.weight'", "NaN or inf"],
                          nan_student),
    "bundle-nan-student": (("bundle", "--student", "{w}/nan_ctm.pt", "--out", "{w}/p.pt"),
                           ["nan_ctm.pt: ema", "'net.final_conv.weight'", "NaN or inf"],
                           nan_student),
    "bundle-inf-teacher": (("bundle", "--student", "{w}/c/latest.pt", "--teacher",
                            "{w}/inf_teacher.pt", "--out", "{w}/p.pt"),
                           ["inf_teacher.pt: ema", "NaN or inf"], nan_teacher),
    "unbundle-nan-critic": (("unbundle", "{w}/bad.pt", "--out", "{w}/u"),
                            ["bad.pt: critic", "NaN or inf"], nan_critic_planner),
    "ctm-inf-teacher": (("train", "ctm", "--teacher", "{w}/inf_teacher.pt", "--steps", "1",
                         "--out", "{w}/o", "--no-progress"),
                        ["inf_teacher.pt", "NaN or inf"], nan_teacher),
    "dataset-nan": ((*TEACHER, "--out", "{w}/o"),
                    ["episode 1 observations", "8 NaN or inf", "step 3"], nan_data),
    "dataset-zero-byte": ((*TEACHER, "--out", "{w}/o"),
                          ["umaze-v1", "main_data.hdf5"], zero_byte_data),
    "dataset-junk": ((*TEACHER, "--out", "{w}/o"), ["umaze-v1", "main_data.hdf5"], junk_data),
    # resume
    "resume-other-horizon": ((*RESUME, "--horizon", "16"), ["--resume", "horizon 8", "16"],
                             None),
    "resume-other-stride": ((*RESUME, "--stride", "2"), ["--resume", "stride 4", "2"], None),
    "resume-other-dim": ((*RESUME, "--dim", "24"), ["--resume", "dim 16", "24"], None),
    "resume-other-dim-mults": ((*RESUME, "--dim-mults", "1,2,4"), ["--resume", "dim_mults"],
                               None),
    "resume-other-dataset": ((*RESUME, "--dataset", "ctp/pointmaze/medium-v1"),
                             ["--resume", "dataset_id", "medium-v1"], None),
    "resume-ctm-other-teacher": (("train", "ctm", "--teacher", "{w}/other_teacher.pt",
                                  "--resume", "--out", "{w}/c", "--steps", "5"),
                                 ["--resume", "teacher", "other_teacher.pt"], other_teacher),
    "resume-critic-other-student": (("train", "critic", "--student", "{w}/other_student.pt",
                                     "--resume", "--out", "{w}/k", "--steps", "5"),
                                    ["--resume", "student", "other_student.pt"], other_student),
    "resume-nothing-there": ((*TEACHER, "--resume", "--out", "{w}/empty"),
                             ["--resume", "empty/latest.pt not found"], empty_run),
    "resume-mistyped-folder": ((*TEACHER, "--resume", "--out", "{w}/tt"),
                               ["--resume", "tt/latest.pt not found"], None),
    "fresh-run-over-a-run": ((*TEACHER, "--out", "{w}/t"), ["--out", "already holds a run",
                                                           "--resume"], None),
    # tracebacks that became one line
    "plan-device-nonsense": ((*PLAN, "--device", "nonsense"), ["--device", "'nonsense'"], None),
    "train-device-nonsense": ((*TEACHER, "--device", "nonsense", "--out", "{w}/o"),
                              ["--device", "'nonsense'"], None),
    "plan-seed-negative": ((*PLAN, "--seed", "-5"), ["--seed", ">= 0", "-5"], None),
    "train-seed-negative": ((*TEACHER, "--seed", "-5", "--out", "{w}/o"),
                            ["--seed", ">= 0", "-5"], None),
    "pairs-seed-negative": (("pairs", "--teacher", "{w}/t/latest.pt", "--out",
                             "{w}/pairs.pt", "--seed", "-5"), ["--seed", ">= 0"], None),
    "train-out-is-a-file": ((*TEACHER, "--out", "{w}/file.txt"), ["--out", "is a file"],
                            a_file),
    "train-out-under-a-file": ((*TEACHER, "--out", "{w}/file.txt/run"),
                               ["--out", "cannot create folder"], a_file),
    "jump-error-teacher-as-student": (("jump-error", "--student", "{w}/t/latest.pt",
                                       "--pairs", "{w}/t/latest.pt"),
                                      ["t/latest.pt", "kind 'teacher'", "'ctm'"], None),
    "jump-error-teacher-as-pairs": ((*JUMP_ERROR, "{w}/t/latest.pt"),
                                    ["t/latest.pt", "kind 'teacher'", "'pairs'"], None),
    "jump-error-nan-pairs": ((*JUMP_ERROR, "{w}/pairs.pt"),
                             ["pairs.pt", "tensor 'target'", "NaN or inf"], nan_pairs),
    "train-ctm-nan-pairs": ((*CTM, "--pairs", "{w}/pairs.pt", "--out", "{w}/o"),
                            ["pairs.pt", "tensor 'target'", "NaN or inf"], nan_pairs),
    "jump-error-batch-size-zero": ((*JUMP_ERROR, "{w}/t/latest.pt", "--batch-size", "0"),
                                   ["--batch-size", ">= 1", "got 0"], None),
    "plan-training-checkpoint": (("plan", "--checkpoint", "{w}/c/latest.pt"),
                                 ["kind 'ctm', expected 'planner'", "ctp bundle"], None),
    "plan-threads-negative": ((*PLAN, "--threads", "-1"), ["--threads", ">= 0"], None),
    "train-threads-negative": ((*TEACHER, "--threads", "-1", "--out", "{w}/o"),
                               ["--threads", ">= 0"], None),
    "train-value-gamma-above-one": (("train", "value", *TINY, "--gamma", "1.5", "--out",
                                     "{w}/o"), ["--gamma", "(0, 1]", "1.5"], None),
    "train-value-gamma-nan": (("train", "value", *TINY, "--gamma", "nan", "--out", "{w}/o"),
                              ["--gamma", "nan"], None),
    "train-value-horizon-odd": (("train", "value", *TINY, "--horizon", "9", "--out", "{w}/o"),
                                ["--horizon", "not divisible"], None),
    "train-invdyn-stride-zero": (("train", "invdyn", "--stride", "0", "--out", "{w}/o"),
                                 ["--stride", ">= 1", "got 0"], None),
    "train-invdyn-hidden-zero": (("train", "invdyn", "--hidden", "0,64", "--out", "{w}/o"),
                                 ["--hidden", "positive ints", "0,64"], None),
    "train-invdyn-stride-too-long": (("train", "invdyn", "--stride", "100000", "--steps", "1",
                                      "--out", "{w}/o", "--no-progress"),
                                     ["--stride 100000", "fits in any episode"], None),
    "train-invdyn-target-dims-negative": (("train", "invdyn", "--target-dims", "-1", "--out",
                                           "{w}/o"), ["--target-dims", "got -1"], None),
    "train-invdyn-target-dims-wide": (("train", "invdyn", "--target-dims", "9", "--steps", "1",
                                       "--out", "{w}/o", "--no-progress"),
                                      ["--target-dims", "state width 4", "got 9"], None),
    "train-plan-dims-negative": ((*TEACHER, "--plan-dims", "-1", "--out", "{w}/o"),
                                 ["--plan-dims", "got -1"], None),
    "train-plan-dims-wide": ((*TEACHER, "--plan-dims", "9", "--out", "{w}/o"),
                             ["--plan-dims", "4-dim states", "got 9"], None),
    "train-hindsight-goals-above-one": ((*TEACHER, "--hindsight-goals", "1.5", "--out", "{w}/o"),
                                        ["--hindsight-goals", "[0, 1]", "1.5"], None),
    "train-hindsight-goals-nan": ((*TEACHER, "--hindsight-goals", "nan", "--out", "{w}/o"),
                                  ["--hindsight-goals", "nan"], None),
    "train-distance-expectile-zero": (("train", "distance", "--expectile", "0", "--out",
                                       "{w}/o"), ["--expectile", "in (0, 1)", "got 0"], None),
    "train-distance-expectile-nan": (("train", "distance", "--expectile", "nan", "--out",
                                      "{w}/o"), ["--expectile", "nan"], None),
    "bundle-distance-not-a-distance": (("bundle", "--student", "{w}/c/latest.pt", "--distance",
                                        "{w}/t/latest.pt", "--out", "{w}/p.pt"),
                                       ["t/latest.pt", "kind 'teacher'", "'distance'"], None),
    "bundle-distance-positions-wide": (("bundle", "--student", "{w}/c/latest.pt",
                                        "--distance", "{w}/d3.pt", "--out", "{w}/p.pt"),
                                       ["--distance", "3-dim positions", "2-dim"],
                                       distance_of_three_dims),
    "bundle-distance-weight-without-network": (("bundle", "--student", "{w}/c/latest.pt",
                                                "--scorer", "distance=1", "--out", "{w}/p.pt"),
                                               ["scorer 'distance'", "no distance is bundled"],
                                               None),
    "plan-target-radius-negative": ((*PLAN, "--target-radius", "-1"),
                                    ["--target-radius", "a finite number > 0", "-1"], None),
    "plan-back-off-without-target-radius": ((*PLAN, "--back-off", "30"),
                                            ["--back-off", "--target-radius set too", "30"],
                                            None),
    "plan-target-radius-on-pointmaze": ((*PLAN, "--target-radius", "3"),
                                        ["--target-radius: the planner file has no goal "
                                         "distance"], None),
    "bundle-target-radius-without-distance": (("bundle", "--student", "{w}/c/latest.pt",
                                               "--target-radius", "3", "--out", "{w}/p.pt"),
                                              ["--target-radius", "--distance"], None),
    "recipe-target-radius-without-distance": (("recipe", str(CONFIGS / "pointmaze/umaze.toml"),
                                               "--set", "bundle.target_radius=3"),
                                              ["[bundle]", "target_radius", "[distance]"],
                                              None),
    "recipe-back-off-without-target-radius": (("recipe", str(CONFIGS / "pointmaze/umaze.toml"),
                                               "--set", "bundle.back_off=30"),
                                              ["[bundle]", "--back-off",
                                               "--target-radius set too"], None),
    "train-distance-random-goals-without-waypoints": (("train", "distance", "--random-goals",
                                                       "0.5", "--out", "{w}/o"),
                                                      ["--random-goals", "--waypoints"], None),
    "train-distance-waypoints-negative": (("train", "distance", "--waypoints", "-1", "--out",
                                           "{w}/o"), ["--waypoints", "an int >= 0", "-1"], None),
    "train-distance-random-goals-one": (("train", "distance", "--waypoints", "4",
                                         "--random-goals", "1", "--out", "{w}/o"),
                                        ["--random-goals", "a share in [0, 1)"], None),
    "plan-aim-zero": ((*PLAN, "--aim", "0"), ["--aim", "env steps >= 1"], None),
    "plan-aim-without-invdyn": ((*PLAN, "--aim", "5"), ["--aim", "--invdyn"], None),
    "bundle-aim-without-invdyn": (("bundle", "--student", "{w}/c/latest.pt", "--out",
                                   "{w}/p.pt", "--aim", "5"), ["--aim", "--invdyn"], None),
    "baseline-gcbc-unknown-maze": (("baseline", "gcbc", "antmaze-medium"), ["antmaze-medium"],
                                   None),
    "baseline-gcbc-seed-huge": (("baseline", "gcbc", "antmaze-umaze", "--seed", HUGE),
                                ["--seed", "<="], None),
    "baseline-gcbc-lr-nan": (("baseline", "gcbc", "antmaze-umaze", "--lr", "nan"),
                             ["--lr", "finite"], None),
    # outputs that are inputs
    "plan-out-is-checkpoint": ((*PLAN, "--out", "{w}/planner.pt"),
                               ["--out", "planner.pt is the --checkpoint input"], None),
    "plan-plot-is-checkpoint": ((*PLAN, "--plot", "{w}/./planner.pt"),
                                ["--plot", "is the --checkpoint input"], None),
    "bundle-out-is-student": (("bundle", "--student", "{w}/c/latest.pt", "--out",
                               "{w}/c/latest.pt"), ["--out", "is the --student input"], None),
    "bundle-out-is-teacher": (("bundle", "--student", "{w}/c/latest.pt", "--teacher",
                               "{w}/t/latest.pt", "--out", "{w}/t/../t/latest.pt"),
                              ["--out", "is the --teacher input"], None),
    "average-out-is-input": (("average", "{w}/c/latest.pt", "{w}/t/latest.pt",
                              "--out", "{w}/t/latest.pt"), ["--out", "is the CKPT"], None),
    "pairs-out-is-teacher": (("pairs", "--teacher", "{w}/t/latest.pt", "--out",
                              "{w}/t/latest.pt"), ["--out", "is the --teacher input"], None),
    "jump-error-out-is-student": ((*JUMP_ERROR, "{w}/t/latest.pt", "--out", "{w}/c/latest.pt"),
                                  ["--out", "is the --student input"], None),
    # outputs onto datasets and runs
    "baseline-bc-out-is-dataset": (("baseline", "bc", "hopper-medium", "--out", f"{{w}}/{DATA}"),
                                   ["--out", "main_data.hdf5", "Minari dataset folder"], None),
    "baseline-bc-out-is-hdf5": (("baseline", "bc", "hopper-medium", "--out", "{w}/d.hdf5"),
                                ["--out", "d.hdf5", "an HDF5 file"], hdf5_copy),
    "plan-out-in-dataset-folder": ((*PLAN, "--out", "{w}/minari/ctp/pointmaze/umaze-v1/r.json"),
                                   ["--out", "r.json", "Minari dataset folder"], None),
    "unbundle-over-a-run": (("unbundle", "{w}/planner.pt", "--out", "{w}/u"),
                            ["--out", "u/ctm already holds a run", "choose another --out"],
                            a_run_in_u),
    # dataset names where an id is expected
    "data-info-name-not-id": (("data", "info", "pointmaze-umaze"),
                              ["pointmaze-umaze", "its id is ctp/pointmaze/umaze-v1"], None),
    "train-dataset-name-not-id": ((*TEACHER, "--dataset", "hopper-medium", "--out", "{w}/o"),
                                  ["hopper-medium", "its id is ctp/mujoco/hopper/medium-v1"],
                                  None),
    # ctp curves
    "curves-empty-metrics": (("curves", "{w}/e", "--out", "{w}/c.png"),
                             ["e/metrics.jsonl", "no metrics rows"], empty_metrics),
    "curves-binary-metrics": (("curves", "{w}/e", "--out", "{w}/c.png"),
                              ["e/metrics.jsonl", "no metrics rows"], binary_metrics),
    "curves-out-unsupported-suffix": (("curves", "{w}/t", "--out", "{w}/c.txt"),
                                      ["--out", ".png", "c.txt"], None),
    # bounds
    "plan-candidates-huge": ((*PLAN, "--candidates", "100000"),
                             ["--candidates", f"<= {MAX_CANDIDATES}", "100000"], None),
    "plan-replan-zero": ((*PLAN, "--replan", "0"), ["--replan", ">= 1", "got 0"], None),
    # integer options beyond their range (seeds 0..2^32-1, counts 1..10^9)
    "plan-seed-huge": ((*PLAN, "--seed", HUGE), ["--seed", "<= 4294967295", HUGE], None),
    "plan-episodes-huge": ((*PLAN, "--episodes", HUGE), ["--episodes", "<= 1000000000"], None),
    "plan-jumps-huge": ((*PLAN, "--jumps", HUGE), ["--jumps", "<= 1000000000"], None),
    "plan-edm-steps-huge": ((*PLAN, "--sampler", "edm", "--edm-steps", HUGE),
                            ["--edm-steps", "<= 1000000000"], None),
    "plan-threads-huge": ((*PLAN, "--threads", "100000"), ["--threads", "<= ", "100000"],
                          None),
    "train-seed-huge": ((*TEACHER, "--seed", HUGE, "--out", "{w}/o"),
                        ["--seed", "<= 4294967295"], None),
    "train-steps-huge": ((*TEACHER, "--steps", HUGE, "--out", "{w}/o"),
                         ["--steps", "<= 1000000000"], None),
    "train-threads-huge": ((*TEACHER, "--threads", "100000", "--out", "{w}/o"),
                           ["--threads", "<= "], None),
    "pairs-seed-huge": (("pairs", "--teacher", "{w}/t/latest.pt", "--out", "{w}/pairs.pt",
                         "--seed", HUGE), ["--seed", "<= 4294967295"], None),
    "pairs-heun-steps-huge": (("pairs", "--teacher", "{w}/t/latest.pt", "--out",
                               "{w}/pairs.pt", "--heun-steps", HUGE),
                              ["--heun-steps", "<= 1000000000"], None),
    "baseline-bc-seed-huge": (("baseline", "bc", "hopper-medium", "--seed", HUGE),
                              ["--seed", "<= 4294967295"], None),
    "baseline-bc-episodes-huge": (("baseline", "bc", "hopper-medium", "--episodes", HUGE),
                                  ["--episodes", "<= 1000000000"], None),
    "baseline-expert-seed-huge": (("baseline", "expert", "antmaze-umaze", "--seed", HUGE),
                                  ["--seed", "<= 4294967295"], None),
    "data-generate-seed-huge": (("data", "generate", "pointmaze-umaze", "--seed", HUGE),
                                ["--seed", "<= 4294967295"], None),
    "data-generate-steps-huge": (("data", "generate", "pointmaze-umaze", "--steps", HUGE),
                                 ["--steps", "<= 1000000000"], None),
    "data-generate-policy-seed-huge": (("data", "generate", "hopper-medium", "--policy-seed",
                                        HUGE), ["--policy-seed", "<= 4294967295"], None),
    "recipe-evaluate-seed-huge": (("recipe", str(CONFIGS / "pointmaze/umaze.toml"), "--set",
                                   f"evaluate.seed={HUGE}"),
                                  ["[evaluate]", "seed", "<= 4294967295"], None),
    "recipe-data-steps-huge": (("recipe", str(CONFIGS / "pointmaze/umaze.toml"), "--set",
                                f"data.steps={HUGE}"), ["[data]", "steps", "<= 1000000000"],
                               None),
    "antmaze-generate-no-plain-kind": (("data", "generate", "antmaze-medium"),
                                       ["no 'plain' dataset", "antmaze-medium-play"], None),
    "antmaze-generate-wrong-kind": (("data", "generate", "antmaze-umaze-play"),
                                    ["no 'play' dataset", "antmaze-umaze-diverse"], None),
    "antmaze-generate-run-dir-alone": (("data", "generate", "antmaze-umaze", "--run-dir",
                                        "{w}/r"), ["only with --train-policy"], None),
    "baseline-expert-locomotion-name": (("baseline", "expert", "hopper-medium"),
                                        ["'hopper-medium': not an AntMaze dataset"], None),
    "baseline-expert-actor-missing": (("baseline", "expert", "antmaze-umaze", "--actor",
                                       "{w}/none.pt"), ["ant controller not found"], None),
    "baseline-expert-actor-planner": (("baseline", "expert", "antmaze-umaze", "--actor",
                                       "{w}/planner.pt"), ["kind 'planner'", "'behaviour'"],
                                      None),
    "baseline-expert-actor-hopper": (("baseline", "expert", "antmaze-umaze", "--actor",
                                      str(shipped_actor_path("hopper"))),
                                     ["not an ant controller"], None),
}
if not torch.cuda.is_available():
    CLI_CASES["plan-device-cuda"] = ((*PLAN, "--device", "cuda"), ["--device", "no CUDA"], None)
    CLI_CASES["train-device-cuda"] = ((*TEACHER, "--device", "cuda", "--out", "{w}/o"),
                                      ["--device", "no CUDA"], None)


@pytest.fixture
def work(planner_file, tmp_path) -> Path:
    """A copy of the planner file, its teacher/ctm/critic runs and the tiny dataset."""
    w = tmp_path / "w"
    shutil.copytree(Path(planner_file["planner"]).parent, w)
    shutil.copytree(planner_file["root"], w / "minari")
    return w


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by relative path, with the SHA-256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_bad_input_is_one_line_and_changes_nothing(case, work, capsys, monkeypatch) -> None:
    argv, fragments, setup = CLI_CASES[case]
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(work / "minari"))
    if setup is not None:
        setup(work)
    before = snapshot(work)
    assert_one_line_error(run_main(capsys, *[a.format(w=work) for a in argv]), *fragments)
    assert snapshot(work) == before


def test_threads_option_sets_torch_threads(tmp_path, capsys) -> None:
    try:
        assert main(["train", "teacher", "--threads", "2", "--dry-run", "--out",
                     str(tmp_path)]) == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


READ_ONLY_CASES = {
    "pairs": ("pairs", "--teacher", "{w}/t/latest.pt", "--out", "{ro}/pairs.pt"),
    "bundle": ("bundle", "--student", "{w}/c/latest.pt", "--out", "{ro}/p.pt"),
    "recipe": ("recipe", str(CONFIGS / "pointmaze/umaze.toml"), "--out", "{ro}/r"),
    "average": ("average", "{w}/c/latest.pt", "{w}/c/latest.pt", "--out", "{ro}/a.pt"),
    "unbundle": ("unbundle", "{w}/planner.pt", "--out", "{ro}/u"),
    "curves": ("curves", "{w}/t", "--out", "{ro}/c.png"),
    "plan": (*PLAN, "--out", "{ro}/r.json"),
    "train": (*TEACHER, "--out", "{ro}/o"),
}


def _can_write_in(folder: Path) -> bool:
    try:
        (folder / "probe").touch()
    except OSError:
        return False
    (folder / "probe").unlink()
    return True


@pytest.fixture
def read_only(tmp_path):
    """A folder no file can be made in: mode 555, or for root (whom modes do not stop) /sys."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if _can_write_in(folder):
            folder = Path("/sys")
            if not folder.is_dir() or _can_write_in(folder):
                pytest.skip("no folder here refuses new files")
        yield folder
    finally:
        (tmp_path / "ro").chmod(0o755)


@pytest.mark.parametrize("case", sorted(READ_ONLY_CASES))
def test_read_only_output_is_one_line_before_any_work(case, work, read_only, capsys,
                                                      monkeypatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(work / "minari"))
    before = snapshot(work)
    argv = [a.format(w=work, ro=read_only) for a in READ_ONLY_CASES[case]]
    assert_one_line_error(run_main(capsys, *argv), "--out", "not writable")
    assert snapshot(work) == before


def test_load_planner_refuses_a_path_of_another_type() -> None:
    import ctp

    with pytest.raises(CTPError, match=r"^load_planner: path: expected a planner file path "
                                       r"\(str or os.PathLike\) or None, got int 42$"):
        ctp.load_planner(42)


def test_curves_of_one_logged_point_draw_it(work, capsys) -> None:
    import matplotlib.pyplot as plt

    from ctp.training.plotting import draw_run

    (work / "one").mkdir()
    (work / "one" / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
    proc = run_main(capsys, "curves", work / "one", "--out", work / "one.png")
    assert proc.returncode == 0 and (work / "one.png").stat().st_size > 0, proc.stderr
    fig, ax = plt.subplots()
    draw_run(ax, "one", [{"step": 1, "loss": 0.5}])
    assert ax.lines[0].get_marker() == "o"
    plt.close(fig)


# ----------------------------------------------------------------------- Planner.plan

GOOD_OBS, GOOD_GOAL = np.zeros((2, 4), np.float32), np.zeros((2, 2), np.float32)
PLAN_CASES = {
    "observation-none": (None, GOOD_GOAL, "observation: expected an array"),
    "observation-scalar": (1.0, GOOD_GOAL, "observation: expected an array"),
    "observation-batch-0": (np.zeros((0, 4)), np.zeros((0, 2)), "got shape (0, 4)"),
    "observation-ragged": ([[0, 0, 0, 0], [0, 0]], GOOD_GOAL, "ragged or non-numeric list"),
    "observation-text": (["a", "b", "c", "d"], GOOD_GOAL, "ragged or non-numeric list"),
    "observation-3d": (np.zeros((2, 1, 4)), GOOD_GOAL, "got shape (2, 1, 4)"),
    "observation-width-3": (np.zeros((2, 3)), GOOD_GOAL, "got shape (2, 3)"),
    "observation-nan": (np.array([[0, 0, np.nan, 0]] * 2), GOOD_GOAL,
                        "observation[0, 2] is nan"),
    "observation-inf": (np.array([[0, np.inf, 0, 0]] * 2), GOOD_GOAL,
                        "observation[0, 1] is inf"),
    "observation-1e30": (np.array([[0, 0, 0, 0], [1e30, 0, 0, 0]]), GOOD_GOAL,
                         "observation[1, 0] is 1e+30"),
    "observation-tensor-nan": (torch.full((2, 4), float("nan")), GOOD_GOAL,
                               "observation[0, 0] is nan"),
    "goal-none": (GOOD_OBS, None, "goal: expected an array"),
    "goal-nan": (GOOD_OBS, np.array([[0, 0], [0, np.nan]]), "goal[1, 1] is nan"),
    "goal-1e30": (GOOD_OBS, np.full((2, 2), -1e30), "goal[0, 0] is -1e+30"),
    "goal-width-4": (GOOD_OBS, np.zeros((2, 4)), "goal: expected an array of shape [E, 2]"),
    "goal-count-differs": (GOOD_OBS, np.zeros((3, 2)), "holds 2 envs but goal 3"),
}


@pytest.fixture(scope="module")
def planner(planner_file):
    return load_planner(planner_file["planner"])


@pytest.mark.parametrize("case", sorted(PLAN_CASES))
def test_plan_refuses_bad_observations_and_goals(planner, case) -> None:
    observation, goal, message = PLAN_CASES[case]
    with pytest.raises(CTPError, match="^plan: ") as info:
        planner.plan(observation, goal)
    assert message in str(info.value)


def test_plan_accepts_the_shapes_it_documents(planner) -> None:
    assert planner.plan(np.zeros(4), np.zeros(2)).action.shape == (2,)
    assert planner.plan(torch.zeros(3, 4), [[0.0, 0.0]] * 3).action.shape == (3, 2)


def test_plan_output_is_checked_before_an_action_leaves(planner_file) -> None:
    planner = load_planner(planner_file["planner"])
    planner.student.net.final_conv.weight.fill_(float("nan"))
    with pytest.raises(CTPError, match="non-finite plan"):
        planner.plan(GOOD_OBS, GOOD_GOAL)


# --------------------------------------------------------------- resume and run folder


def test_resume_drops_metrics_rows_past_its_checkpoint_and_stale_temp_files(
        minari_root, tmp_path) -> None:
    cfg = dict(kind="teacher", horizon=8, stride=4, dim=16, dim_mults=(1, 2), batch_size=8,
               out_dir=str(tmp_path), log_every=1, checkpoint_every=2, keep_best=5,
               progress=False)
    train(TrainConfig(steps=4, **cfg))
    # As if killed (SIGKILL) at step 4 after its step-2 save, mid-way through another save.
    shutil.copy(next(tmp_path.glob("step-0000002-*.pt")), tmp_path / "latest.pt")
    (tmp_path / ".latest.pt.x1y2.tmp").write_bytes(b"torn")
    train(TrainConfig(steps=5, resume=True, **cfg))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5]
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


# ------------------------------------------------------------------ diverging training

DIVERGE = ("--steps", "20", "--checkpoint-every", "1", "--lr", "1e30", "--no-progress")
KIND_ARGS = {"teacher": TEACHER[:-3], "ctm": CTM[:-5], "value": ("train", "value", *TINY[:-3]),
             "invdyn": ("train", "invdyn", "--batch-size", "8")}


def _all_finite(run: Path) -> bool:
    """Whether every checkpoint in ``run`` holds only finite model and EMA weights."""
    return all(bool(torch.isfinite(t).all())
               for path in run.glob("*.pt")
               for part in ("model", "ema")
               for t in load_checkpoint(path)[part].values() if t.is_floating_point())


@pytest.mark.parametrize("kind", sorted(KIND_ARGS))
def test_diverging_training_stops_with_its_step_and_kind(kind, work, capsys,
                                                         monkeypatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(work / "minari"))
    args = [a.format(w=work) for a in KIND_ARGS[kind]]
    assert_one_line_error(run_main(capsys, *args, *DIVERGE, "--out", work / "o"),
                          f"train {kind}: ", "at step", "training diverged")
    assert _all_finite(work / "o")


def test_diverging_resume_keeps_the_last_finite_checkpoint(work, capsys, monkeypatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(work / "minari"))
    run = ("--out", work / "o", "--checkpoint-every", "5", "--no-progress")
    assert run_main(capsys, *TEACHER[:-3], "--steps", "5", *run).returncode == 0
    before = snapshot(work / "o")
    proc = run_main(capsys, *TEACHER[:-3], "--steps", "20", "--lr", "1e30", "--resume", *run)
    assert_one_line_error(proc, "train teacher: the loss is", "at step 7",
                          "latest.pt (step 5), is kept")
    after = snapshot(work / "o")
    assert {k: v for k, v in after.items() if k.endswith(".pt")} == {
        k: v for k, v in before.items() if k.endswith(".pt")}


def test_non_finite_weights_are_never_checkpointed(minari_root, tmp_path, monkeypatch) -> None:
    """Weights that turn non-finite in a step whose loss was finite are caught when saving."""
    import ctp.training.loop as loop

    cfg = dict(kind="teacher", horizon=8, stride=4, dim=16, dim_mults=(1, 2), batch_size=8,
               out_dir=str(tmp_path), checkpoint_every=1, progress=False)
    train(TrainConfig(steps=2, **cfg))
    before = snapshot(tmp_path)

    def overflowing_update(ema, module, decay) -> None:
        next(module.parameters()).data.fill_(float("inf"))

    monkeypatch.setattr(loop, "ema_update", overflowing_update)
    with pytest.raises(CTPError, match=r"train teacher: model tensor .* holds NaN or inf at "
                                       r"step 3: .*latest.pt \(step 2\), is kept"):
        train(TrainConfig(steps=4, resume=True, **cfg))
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k.endswith(".pt")} == {
        k: v for k, v in before.items() if k.endswith(".pt")}


# ------------------------------------------------------------------ process statuses


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_stopping_training_saves_and_exits_non_zero(tiny_umaze, tmp_path, sig, status) -> None:
    proc = spawn_ctp(*TEACHER[:-3], "--steps", "1000000", "--no-progress", "--out",
                     str(tmp_path), root=tiny_umaze)
    deadline = time.monotonic() + 60
    while not (tmp_path / "config.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # into the loop, past the signal handlers' installation
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert "Traceback" not in err and f"stopped by {sig.name}" in err
    assert load_checkpoint(tmp_path / "latest.pt", "teacher")["step"] > 0


def test_closed_pipe_is_quiet(tmp_path) -> None:
    proc = spawn_ctp("train", "teacher", "--dry-run", "--out", str(tmp_path), root=tmp_path)
    proc.stdout.close()  # the reader (`| head`) is gone before ctp writes
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert err == "" and proc.returncode == 128 + signal.SIGPIPE
