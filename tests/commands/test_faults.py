"""Issue 31's faults beyond bad input: a full disk mid-write, SIGINT and SIGTERM, a recipe
rerun with a changed setting of a stage that never ran, and the progress shown during long
waits.

A full disk is an ``OSError(ENOSPC)`` raised, in this process, by ``os.fsync`` of the one file
a case names, after its bytes went to the temp file (as a real full disk fails a write or its
flush): every case must give one line ``ctp: error: no space left on device writing <file>;
<what is kept>``, exit status 2, no traceback, no temp file, and leave the files before it
unchanged. Signals go to a ``ctp`` process after its first output.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from helpers import assert_one_line_error, run_main, spawn_ctp

from ctp.data.minari_io import writing
from ctp.utils.atomic import WriteFailed, atomic_write

torch.set_num_threads(1)

TINY = ("--horizon", "8", "--stride", "4", "--dim", "16", "--dim-mults", "1,2",
        "--batch-size", "8", "--no-progress")
NO_SPACE = "no space left on device writing"


@pytest.fixture
def work(planner_file, tmp_path, monkeypatch) -> Path:
    """A copy of the tiny planner file, its teacher/ctm/critic runs and the tiny dataset."""
    w = tmp_path / "w"
    shutil.copytree(Path(planner_file["planner"]).parent, w)
    shutil.copytree(planner_file["root"], w / "minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(w / "minari"))
    return w


def fill_disk(monkeypatch, name: str) -> None:
    """From now on, writing a file called ``name`` fails with ENOSPC at its fsync."""
    real = os.fsync

    def fsync(fd: int) -> None:
        if Path(os.readlink(f"/proc/self/fd/{fd}")).name.startswith(f".{name}."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def no_temp_files(folder: Path) -> bool:
    return not list(folder.rglob(".*.tmp"))


# ------------------------------------------------------------------------- full disk


def test_a_failed_torch_save_keeps_the_file_and_names_it(tmp_path) -> None:
    """torch.save reports a failed write as a RuntimeError raised while handling the
    OSError: it is still a full disk, and the file there before stays."""
    path = tmp_path / "x.pt"
    path.write_bytes(b"before")

    class FullDisk:
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def flush(self) -> None:
            pass

    with pytest.raises(WriteFailed, match=f"{NO_SPACE} .*x.pt; the file there before is "
                                          "unchanged"):
        atomic_write(path, lambda fh: torch.save({"w": torch.zeros(1000)}, FullDisk()))
    assert path.read_bytes() == b"before" and no_temp_files(tmp_path)


def test_train_on_a_full_disk_keeps_its_last_checkpoint(work, capsys, monkeypatch) -> None:
    run = ("train", "teacher", *TINY, "--out", work / "o", "--checkpoint-every", "2")
    assert run_main(capsys, *run, "--steps", "2").returncode == 0
    before = snapshot(work / "o")
    fill_disk(monkeypatch, "latest.pt")
    proc = run_main(capsys, *run, "--steps", "6", "--resume")
    assert_one_line_error(proc, "train teacher: at step 4, ", f"{NO_SPACE} {work / 'o'}/latest.pt",
                          "the last checkpoint", "(step 2), is kept",
                          "free some space and continue with --resume")
    after = snapshot(work / "o")
    assert {k: v for k, v in after.items() if k.endswith(".pt")} == {
        k: v for k, v in before.items() if k.endswith(".pt")}
    assert no_temp_files(work)


def test_plan_on_a_full_disk_prints_its_results(work, capsys, monkeypatch) -> None:
    fill_disk(monkeypatch, "r.json")
    proc = run_main(capsys, "plan", "--checkpoint", work / "planner.pt", "--episodes", "2",
                    "--no-progress", "--out", work / "r.json")
    assert_one_line_error(proc, f"{NO_SPACE} {work / 'r.json'}",
                          "the results are printed above, table and JSON",
                          "nothing was written there")
    table, _, document = proc.stdout.partition("\n{")
    assert "d4rl_normalized" in table
    result = json.loads("{" + document)
    assert result["episodes"] == 2 and len(result["per_episode"]) == 2
    assert not (work / "r.json").exists() and no_temp_files(work)


def test_pairs_on_a_full_disk_say_nothing_was_written(work, capsys, monkeypatch) -> None:
    (work / "pairs.pt").write_bytes(b"an older pairs file")
    fill_disk(monkeypatch, "pairs.pt")
    proc = run_main(capsys, "pairs", "--teacher", work / "t" / "latest.pt", "--out",
                    work / "pairs.pt", "--count", "4", "--heun-steps", "2", "--no-progress")
    assert_one_line_error(proc, f"{NO_SPACE} {work / 'pairs.pt'}",
                          "the file there before is unchanged")
    assert (work / "pairs.pt").read_bytes() == b"an older pairs file" and no_temp_files(work)


RECIPE = """name = "toy"
out = "runs/toy"
[data]
dataset_id = "ctp/pointmaze/umaze-v1"
[teacher]
horizon = 8
dim = 16
dim_mults = [1, 2]
batch_size = 4
steps = 2
[student]
steps = 2
batch_size = 4
[bundle]
candidates = 4
"""


def test_recipe_on_a_full_disk_keeps_its_finished_stages(work, capsys, monkeypatch) -> None:
    (work / "r.toml").write_text(RECIPE)
    fill_disk(monkeypatch, "latest.pt")
    proc = run_main(capsys, "recipe", work / "r.toml", "--out", work / "run", "--no-progress")
    assert_one_line_error(proc, f"train teacher: at step 2, {NO_SPACE} "
                          f"{work / 'run' / 'teacher' / 'latest.pt'}",
                          "no checkpoint was written",
                          f"the finished stages (data) are kept in {work / 'run'}",
                          "free some space, then rerun the same command to resume at [teacher]")
    assert list(json.loads((work / "run" / "stages.json").read_text())) == ["data"]
    assert no_temp_files(work)


def test_any_other_refusal_of_the_system_is_one_line(capsys, monkeypatch) -> None:
    """An OSError outside the atomic writes (e.g. an append-only log on a full disk)."""
    import ctp.data.catalog

    def full(*args) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/evals.jsonl")

    monkeypatch.setattr(ctp.data.catalog, "list_datasets", full)
    assert_one_line_error(run_main(capsys, "data", "list"),
                          "ctp: error: no space left on device: /data/evals.jsonl")


# ------------------------------------------------------------- learning rates


@pytest.mark.parametrize("lr", ["1e38", "nan", "inf", "-1", "0"])
def test_a_learning_rate_beyond_float32_is_refused_up_front(lr, work, capsys) -> None:
    """AdamW's first step is 10 lr, a float32 scalar: 1e38 stopped with a traceback."""
    proc = run_main(capsys, "train", "teacher", *TINY, "--lr", lr, "--out", work / "o")
    assert_one_line_error(proc, "--lr: expected a finite positive number <= 1e+37")
    assert not (work / "o").exists()


def test_the_largest_learning_rate_diverges_with_one_line(work, capsys) -> None:
    proc = run_main(capsys, "train", "teacher", *TINY, "--lr", "1e37", "--steps", "20",
                    "--out", work / "o")
    assert_one_line_error(proc, "train teacher: the loss is", "training diverged")


# --------------------------------------------------------------------------- signals


def _stop_after(args: tuple, sig: signal.Signals, root: Path, marker: str = "") -> tuple[int, str]:
    """Run ``ctp args``, send ``sig`` once it has printed something (``marker`` if given, e.g.
    its progress bar), and return its exit status and stderr."""
    proc = spawn_ctp(*args, root=root)
    try:
        seen = proc.stderr.read(1)
        while marker not in seen and seen and proc.poll() is None:
            seen += proc.stderr.read(1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, seen + err


def _last_line(err: str) -> str:
    return err.replace("\r", "\n").strip().splitlines()[-1]


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_plan_with_one_line_and_its_status(sig, status, work) -> None:
    code, err = _stop_after(("plan", "--checkpoint", work / "planner.pt", "--episodes",
                             "100000", "--out", work / "r.json"), sig, work / "minari")
    last = _last_line(err)
    assert code == status and "Traceback" not in err, err
    assert last == f"ctp: stopped by {sig.name}; no output was written", err
    assert not (work / "r.json").exists()


def test_sigterm_stops_data_generate_and_leaves_no_dataset(tmp_path) -> None:
    code, err = _stop_after(("data", "generate", "pointmaze-umaze", "--steps", "1000000"),
                            signal.SIGTERM, tmp_path)
    last = _last_line(err)
    assert code == 143 and "Traceback" not in err, err
    assert last == "ctp: stopped by SIGTERM; no dataset was written", err
    assert not (tmp_path / "ctp" / "pointmaze" / "umaze-v1").exists()
    assert not list(tmp_path.glob(".ctp-staging-*"))


def test_sigterm_stops_training_with_its_checkpoint(work) -> None:
    code, err = _stop_after(("train", "teacher", *TINY[:-1], "--steps", "1000000", "--out",
                             work / "o"), signal.SIGTERM, work / "minari", "train teacher")
    last = _last_line(err)
    assert code == 143 and "Traceback" not in err, err
    assert last.startswith("ctp: stopped by SIGTERM; ") and "continue with --resume" in last


# ---------------------------------------------------------------------- recipe reruns


def _run_folder(work: Path, finished: tuple[str, ...]) -> Path:
    """``w/r.toml`` and its run folder as if the stages ``finished`` had run."""
    from ctp.recipe.config import load_recipe
    from ctp.recipe.run import _Run

    (work / "r.toml").write_text(RECIPE)
    run = _Run(load_recipe(work / "r.toml"), work / "run")
    run.check_recipe()
    done: dict = {}
    for stage in finished:
        done = run.mark(done, stage, 1.0)
    return work / "run"


def test_recipe_rerun_takes_new_settings_of_stages_that_never_ran(work, capsys) -> None:
    out = _run_folder(work, ("data", "teacher"))
    proc = run_main(capsys, "recipe", work / "r.toml", "--out", out, "--until", "teacher",
                    "--set", "student.steps=7", "--set", "bundle.candidates=8")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "recipe.json").read_text())
    assert record["student"]["steps"] == 7 and record["bundle"]["candidates"] == 8
    changed = run_main(capsys, "recipe", work / "r.toml", "--out", out, "--until", "teacher",
                       "--set", "teacher.steps=3")
    assert_one_line_error(changed, "[teacher] steps = 2", "says 3")


def test_recipe_rerun_binds_the_settings_of_an_interrupted_stage(work, capsys) -> None:
    out = _run_folder(work, ("data", "teacher"))
    (out / "student").mkdir()  # a student run that was stopped before it finished
    (out / "student" / "metrics.jsonl").write_text('{"step": 1}\n')
    changed = run_main(capsys, "recipe", work / "r.toml", "--out", out, "--until", "teacher",
                       "--set", "student.steps=7")
    assert_one_line_error(changed, "[student] steps = 2", "says 7")
    # a table before a stage that made outputs is bound too: the student is built on it
    assert_one_line_error(run_main(capsys, "recipe", work / "r.toml", "--out", out, "--until",
                                   "teacher", "--set", "data.steps=3000"), "[data] steps")


# ------------------------------------------------------------------ long silent waits


def test_plan_bar_counts_env_steps(work, capsys) -> None:
    proc = run_main(capsys, "plan", "--checkpoint", work / "planner.pt", "--episodes", "2",
                    "--num-envs", "2")
    assert proc.returncode == 0, proc.stderr
    final = _last_line(proc.stderr)
    assert "600/600" in final and "episodes=2/2" in final, final  # 2 x 300 umaze steps


def test_dataset_write_shows_a_bar_of_steps(capsys) -> None:
    buffers = [SimpleNamespace(rewards=[0.0] * n) for n in (3, 5, 7)]
    assert list(writing(buffers, "me/pointmaze/umaze-v0")) == buffers
    final = _last_line(capsys.readouterr().err)
    assert final.startswith("write me/pointmaze/umaze-v0: 100%") and "15/15" in final


def test_recipe_says_what_each_stage_does(work, capsys) -> None:
    (work / "r.toml").write_text(RECIPE)
    proc = run_main(capsys, "recipe", work / "r.toml", "--out", work / "run", "--until",
                    "teacher")
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.replace("\r", "\n").splitlines()
             if line.startswith("recipe toy: ")]
    assert notes == ["recipe toy: [data] checking ctp/pointmaze/umaze-v1",
                     f"recipe toy: [teacher] training the teacher network to step 2 in "
                     f"{work / 'run' / 'teacher'} (first loading ctp/pointmaze/umaze-v1 and "
                     "cutting its windows)"]


def test_compile_caches_live_outside_tmp(tmp_path, monkeypatch) -> None:
    import torch._inductor.config as inductor
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from ctp.planning.planner import compile_note, enable_compile_caches

    ours = tmp_path / "ctp" / "torchinductor"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())  # torch's, on import
    monkeypatch.setattr(inductor, "fx_graph_cache", False)
    assert enable_compile_caches() == ours
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(ours) and inductor.fx_graph_cache
    assert str(ours) in compile_note()
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))  # the user's
    assert enable_compile_caches() == tmp_path / "mine"


def test_a_nearly_full_disk_refuses_to_start(tmp_path, own_root, monkeypatch, capsys) -> None:
    """Work whose output could not be written does not start: a disk with less free room than
    the output needs is one line before anything runs (and nothing is written)."""
    import ctp.utils.validation as validation

    monkeypatch.setattr(validation.shutil, "disk_usage",
                        lambda path: SimpleNamespace(total=2**40, used=2**40, free=10 * 2**20))
    assert_one_line_error(run_main(capsys, "data", "generate", "pointmaze-umaze", "--steps",
                                   "1000000", "--no-progress"),
                          "the Minari data folder", "has 10 MB free", "expected at least 977 MB")
    out = tmp_path / "run"
    assert_one_line_error(run_main(capsys, "train", "teacher", "--out", out, *TINY),
                          "--out", "has 10 MB free", "expected at least 64 MB")
    assert not out.exists() and not any(own_root.iterdir())


def test_a_student_stage_names_the_recipes_dataset(tmp_path) -> None:
    """The student's TrainConfig learns its dataset from the teacher only when it runs; the
    line before the stage names the recipe's dataset, not the config's default."""
    from ctp.recipe.config import _stage_config, parse_recipe
    from ctp.recipe.run import _doing

    recipe = parse_recipe(RECIPE.replace("umaze-v1", "medium-v1"), "r.toml")
    line = _doing(recipe, "student", _stage_config(recipe, "student", tmp_path), tmp_path)
    assert "first loading ctp/pointmaze/medium-v1 and cutting its windows" in line, line
