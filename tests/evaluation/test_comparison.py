"""``ctp compare`` / ``ctp.evaluation.comparison``: paired comparison of two real
``ctp plan --out`` runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, run_main

from ctp.cli import main
from ctp.evaluation.comparison import compare_results, load_result

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory) -> dict[str, Path]:
    """The shipped umaze planner on seeds 0..2 with K = 1 and K = 4, as ``ctp plan --out``."""
    root = tmp_path_factory.mktemp("compare")
    files = {}
    for k in (1, 4):
        files[f"k{k}"] = root / f"k{k}.json"
        status = main(
            ["plan", "--episodes", "3", "--seed", "0", "--num-envs", "3", "--candidates",
             str(k), "--out", str(files[f"k{k}"]), "--no-progress"])
        assert status == 0
    return files


def _d4rl(result: dict) -> dict[int, float]:
    lo, hi = result["d4rl_ref_min_score"], result["d4rl_ref_max_score"]
    return {e["seed"]: 100 * (e["return"] - lo) / (hi - lo) for e in result["per_episode"]}


def test_compare_gives_the_per_seed_mean_difference(evaluations, tmp_path, capsys) -> None:
    out = tmp_path / "cmp.json"
    proc = run_main(capsys, "compare", evaluations["k1"], evaluations["k4"], "--out", out)
    assert proc.returncode == 0, proc.stderr
    base, new = (json.loads(evaluations[k].read_text()) for k in ("k1", "k4"))
    a, b = _d4rl(base), _d4rl(new)
    diff = np.array([b[s] - a[s] for s in (0, 1, 2)])
    saved = json.loads(out.read_text())
    assert saved["seeds"] == [0, 1, 2] and saved["episodes"] == 3
    assert saved["difference"]["d4rl_normalized"]["mean"] == pytest.approx(diff.mean())
    assert saved["difference"]["d4rl_normalized"]["se"] == pytest.approx(
        diff.std(ddof=1) / np.sqrt(3))
    # each side's mean is the file's own d4rl_normalized mean when every seed is paired
    assert saved["base"]["d4rl_normalized"]["mean"] == pytest.approx(
        base["d4rl_normalized"]["mean"])
    assert saved["new"]["d4rl_normalized"]["mean"] == pytest.approx(
        new["d4rl_normalized"]["mean"])
    assert saved["wins"] + saved["losses"] + saved["ties"] == 3
    assert "new - base" in proc.stdout and "seeds 0..2" in proc.stdout


def test_an_evaluation_against_itself_differs_by_nothing(evaluations) -> None:
    result = load_result(evaluations["k4"])
    comparison = compare_results(result, result)
    assert comparison["difference"]["d4rl_normalized"] == {"mean": 0.0, "se": 0.0}
    assert comparison["ties"] == 3 and comparison["wins"] == comparison["losses"] == 0


def test_only_seeds_both_evaluated_are_paired(evaluations) -> None:
    base = load_result(evaluations["k1"])
    new = load_result(evaluations["k4"])
    new["per_episode"] = [e for e in new["per_episode"] if e["seed"] != 1]
    new["per_episode"].append({**new["per_episode"][0], "seed": 99})
    comparison = compare_results(base, new)
    assert comparison["seeds"] == [0, 2]
    assert comparison["base"]["unpaired_seeds"] == 1 and comparison["new"]["unpaired_seeds"] == 1
    a, b = _d4rl(base), _d4rl(new)
    assert comparison["difference"]["d4rl_normalized"]["mean"] == pytest.approx(
        np.mean([b[0] - a[0], b[2] - a[2]]))


def _variant(src: Path, dst: Path, edit) -> Path:
    result = json.loads(src.read_text())
    edit(result)
    dst.write_text(json.dumps(result))
    return dst


def _multi2d(r: dict) -> None:
    r["task"] = "multi2d"


def _nan_return(r: dict) -> None:
    r["per_episode"][1]["return"] = float("nan")


def _twice(r: dict) -> None:
    r["per_episode"][1]["seed"] = 0


def _other_seeds(r: dict) -> None:
    for e in r["per_episode"]:
        e["seed"] += 100


def _no_episodes(r: dict) -> None:
    del r["per_episode"]


# (edit of the second file, fragments of the error line)
BAD = {
    "other-task": (_multi2d, ["bad.json", "task is 'multi2d'", "'single-task'"]),
    "nan-return": (_nan_return, ["bad.json", "per_episode[1]", "finite 'return'", "nan"]),
    "seed-twice": (_twice, ["bad.json", "seed 0 appears twice"]),
    "no-common-seed": (_other_seeds, ["share no episode seed"]),
    "not-a-result": (_no_episodes, ["bad.json", "not a 'ctp plan --out' result",
                                    "per_episode"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_second_file_is_one_line(case, evaluations, tmp_path, capsys) -> None:
    edit, fragments = BAD[case]
    bad = _variant(evaluations["k4"], tmp_path / "bad.json", edit)
    before = bad.read_bytes()
    proc = run_main(capsys, "compare", evaluations["k1"], bad, "--out", tmp_path / "c.json")
    assert_one_line_error(proc, *fragments)
    assert bad.read_bytes() == before and not (tmp_path / "c.json").exists()


def test_unreadable_files_and_out_over_an_input_are_refused(evaluations, tmp_path,
                                                            capsys) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    assert_one_line_error(run_main(capsys, "compare", junk, evaluations["k4"]),
                          "junk.json", "not a JSON file")
    assert_one_line_error(run_main(capsys, "compare", tmp_path / "none.json",
                                   evaluations["k4"]), "none.json", "no such file")
    before = evaluations["k4"].read_bytes()
    assert_one_line_error(run_main(capsys, "compare", evaluations["k1"], evaluations["k4"],
                                   "--out", evaluations["k4"]),
                          "--out", "is the NEW.json input")
    assert evaluations["k4"].read_bytes() == before
