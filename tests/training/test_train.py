"""Training loop, checkpoints, resume, time budget, data parallelism and the train CLI."""

import json
import os
import shutil
import time

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from helpers import assert_one_line_error, run_main

from ctp.data.conditioning import start_goal_condition
from ctp.models.builder import load_model
from ctp.models.ctm import one_jump_loss
from ctp.models.edm import heun_sample
from ctp.planning import load_planner
from ctp.planning.bundle import ExportConfig, export_planner
from ctp.training.config import TrainConfig
from ctp.training.loop import train
from ctp.training.teacher_pairs import PairsConfig, make_pairs
from ctp.utils.atomic import WriteFailed
from ctp.utils.checkpoint import SCHEMA_VERSION, load_checkpoint, save_checkpoint
from ctp.utils.errors import CTPError

torch.set_num_threads(1)


def tiny_config(out, kind="teacher", **kw) -> TrainConfig:
    base = dict(kind=kind, horizon=8, stride=2, dim=16, dim_mults=(1, 2), batch_size=8,
                steps=6, out_dir=str(out), checkpoint_every=3, log_every=2, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def test_teacher_ctm_critic_chain(minari_root, tmp_path, capsys) -> None:
    teacher = train(tiny_config(tmp_path / "t"))
    assert teacher.step == 6
    payload = load_checkpoint(teacher.latest, "teacher")
    assert payload["schema_version"] == SCHEMA_VERSION and payload["step"] == 6
    assert payload["dataset_id"] == "ctp/pointmaze/umaze-v1"
    assert payload["config"]["horizon"] == 8 and payload["stride"] == 2
    assert set(payload["normalizer"]) == {"low", "high"}
    lines = (tmp_path / "t" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and '"windows_per_s"' in lines[0]
    ctm = train(tiny_config(tmp_path / "c", kind="ctm", teacher=str(teacher.latest), steps=3))
    ctm_payload = load_checkpoint(ctm.latest, "ctm")
    assert ctm_payload["normalizer"] == payload["normalizer"]
    assert ctm_payload["horizon"] == 8 and ctm_payload["unet"]["s_embedding"] is True
    critic = train(tiny_config(tmp_path / "k", kind="critic", student=str(ctm.latest), steps=3))
    model, _ = load_model(str(critic.latest), "critic")
    x = torch.zeros(2, 8, 4)
    assert model(x, x, x).shape == (2,)
    png = tmp_path / "curves.png"
    proc = run_main(capsys, "curves", tmp_path / "t", tmp_path / "c", "--out", png)
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    proc = run_main(capsys, "curves", tmp_path / "nowhere", "--out", png)
    assert_one_line_error(proc, "metrics.jsonl: not found")


def test_narrow_student_trains_resumes_and_gets_a_critic(minari_root, tmp_path) -> None:
    teacher = train(tiny_config(tmp_path / "t", steps=2)).latest
    ctm = train(tiny_config(tmp_path / "c", kind="ctm", teacher=str(teacher), steps=2,
                            student_dim=8))
    payload = load_checkpoint(ctm.latest, "ctm")
    assert payload["unet"]["dim"] == 8 and payload["unet"]["embed_dim"] == 16
    assert payload["model"]["net.final_conv.weight"].shape == (4, 8, 1)
    resumed = train(tiny_config(tmp_path / "c", kind="ctm", teacher=str(teacher), steps=3,
                                resume=True))  # the width comes from the checkpoint
    assert resumed.step == 3 and resumed.module.net.cfg.dim == 8
    with pytest.raises(CTPError, match="holds a width-8 student, got 16"):
        train(tiny_config(tmp_path / "c", kind="ctm", teacher=str(teacher), steps=4,
                          resume=True, student_dim=16))
    with pytest.raises(CTPError, match="--dim: expected at most the teacher's width 16, got 32"):
        train(tiny_config(tmp_path / "w", kind="ctm", teacher=str(teacher), student_dim=32))
    critic = train(tiny_config(tmp_path / "k", kind="critic", student=str(ctm.latest), steps=1))
    model, _ = load_model(str(critic.latest), "critic")
    assert model.cfg.dim == 8
    planner = load_planner(export_planner(ExportConfig(
        str(resumed.latest), str(tmp_path / "planner.pt"), str(teacher), str(critic.latest))))
    assert planner.student.net.cfg.dim == 8 and planner.teacher.net.cfg.dim == 16
    assert planner.plan(np.zeros(4, np.float32), np.ones(2, np.float32)).trajectory.shape == (
        8, 4)


def test_average_of_checkpoints_is_their_mean_and_bundles(minari_root, tmp_path, capsys) -> None:
    teacher = train(tiny_config(tmp_path / "t", steps=2)).latest
    run = tmp_path / "c"
    train(tiny_config(run, kind="ctm", teacher=str(teacher), steps=4, checkpoint_every=2,
                      keep_best=5))
    steps = sorted(run.glob("step-*.pt"))
    assert len(steps) == 2
    a, b = (load_checkpoint(p, "ctm") for p in steps)
    out = tmp_path / "avg.pt"
    proc = run_main(capsys, "average", *steps, "--out", out)
    assert proc.returncode == 0, proc.stderr
    avg = load_checkpoint(out, "ctm")
    assert avg["step"] == 4 and [s["step"] for s in avg["averaged_from"]] == [2, 4]
    for part in ("model", "ema"):
        key = "net.final_conv.weight"
        assert not torch.equal(a[part][key], b[part][key])
        torch.testing.assert_close(avg[part][key], (a[part][key] + b[part][key]) / 2)
    assert avg["optimizer"]["state"]  # the latest one's: --resume goes on from the average
    planner = load_planner(export_planner(ExportConfig(str(out), str(tmp_path / "p.pt"))))
    assert planner.plan(np.zeros(4, np.float32), np.ones(2, np.float32)).trajectory.shape == (
        8, 4)
    narrow = train(tiny_config(tmp_path / "n", kind="ctm", teacher=str(teacher), steps=1,
                               student_dim=8)).latest
    for args, message in (
        ((steps[0], teacher), "kind differs from"),
        ((steps[0], narrow), "unet differs from"),
        ((steps[0],), "expected at least 2 checkpoints, got 1"),
    ):
        assert_one_line_error(run_main(capsys, "average", *args, "--out", tmp_path / "x.pt"),
                              message)
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.slow
def test_teacher_pairs_are_heun_samples_and_one_jump_learns_them(minari_root, tmp_path,
                                                                   capsys) -> None:
    teacher_path = train(tiny_config(tmp_path / "t", steps=2)).latest
    pairs_path = make_pairs(PairsConfig(str(teacher_path), str(tmp_path / "pairs.pt"), count=10,
                                        heun_steps=3, batch_size=4, progress=False))
    pairs = load_checkpoint(pairs_path, "pairs")
    assert pairs["noise"].shape == pairs["target"].shape == (10, 8, 4)
    teacher, _ = load_model(str(teacher_path), "teacher")
    mask, value = start_goal_condition(pairs["start"], pairs["goal"], 8, 4)
    with torch.no_grad():  # the last batch (items 8, 9) re-sampled on its own
        again = heun_sample(teacher, pairs["noise"][8:] * 80.0, mask[8:], value[8:], 3)
    torch.testing.assert_close(pairs["target"][8:], again)
    torch.testing.assert_close(pairs["target"][:, 0], pairs["start"])
    torch.testing.assert_close(pairs["target"][:, -1, :2], pairs["goal"][:, :2])

    run = tmp_path / "c"
    train(tiny_config(run, kind="ctm", teacher=str(teacher_path), steps=1))
    before, _ = load_model(str(run / "latest.pt"), "ctm")
    shutil.copy(run / "latest.pt", tmp_path / "before.pt")
    cfg = tiny_config(run, kind="ctm", teacher=str(teacher_path), steps=41, resume=True,
                      lr=3e-3, ema_decay=0.8, pairs=str(pairs_path), log_every=10)
    cfg.ctm.pair_weight = 100.0  # the pair term dominates: the one-jump map must fit them
    train(cfg)
    after, _ = load_model(str(run / "latest.pt"), "ctm")
    target = pairs["target"]
    with torch.no_grad():
        errors = [one_jump_loss(m, pairs["noise"], mask, value, target) for m in (before, after)]
    assert errors[1] < 0.7 * errors[0], errors
    # ctp jump-error reports the same regression error, for either student
    for student, error in zip((tmp_path / "before.pt", run / "latest.pt"), errors):
        result = run_main(capsys, "jump-error", "--student", str(student), "--pairs",
                          str(pairs_path), "--batch-size", "3", "--out", str(tmp_path / "je.json"))
        assert result.returncode == 0 and "on 10 pairs" in result.stdout
        reported = json.loads((tmp_path / "je.json").read_text())
        assert reported["count"] == 10
        assert reported["jump_error"] == pytest.approx(float(error), rel=1e-5)
    rows = (run / "metrics.jsonl").read_text().splitlines()
    assert '"pair"' in rows[-1] and '"pair"' not in rows[0]

    other = train(tiny_config(tmp_path / "t2", steps=1, seed=1)).latest
    with pytest.raises(CTPError, match="teacher_fingerprint .* does not match"):
        train(tiny_config(tmp_path / "c2", kind="ctm", teacher=str(other), steps=1,
                          pairs=str(pairs_path)))


def test_resume_continues_step_count(minari_root, tmp_path) -> None:
    train(tiny_config(tmp_path, steps=4))
    first = load_checkpoint(tmp_path / "latest.pt")
    resumed = train(tiny_config(tmp_path, steps=7, resume=True))
    assert resumed.step == 7
    second = load_checkpoint(tmp_path / "latest.pt")
    assert second["step"] == 7
    assert not torch.equal(first["model"]["net.final_conv.weight"],
                           second["model"]["net.final_conv.weight"])
    assert second["optimizer"]["state"]  # Adam moments carried over


def test_resume_takes_this_runs_learning_rate(minari_root, tmp_path) -> None:
    train(tiny_config(tmp_path, steps=2, lr=1e-3))
    train(tiny_config(tmp_path, steps=3, lr=2e-5, weight_decay=0.1, resume=True))
    saved = load_checkpoint(tmp_path / "latest.pt")
    assert saved["step"] == 3 and saved["config"]["lr"] == 2e-5
    assert [g["lr"] for g in saved["optimizer"]["param_groups"]] == [2e-5]
    assert [g["weight_decay"] for g in saved["optimizer"]["param_groups"]] == [0.1]


def test_time_budget_stops_early(minari_root, tmp_path) -> None:
    start = time.monotonic()
    result = train(tiny_config(tmp_path, steps=10**6, max_minutes=0.02))
    assert time.monotonic() - start < 60
    assert 0 < result.step < 10**6
    assert load_checkpoint(result.latest)["step"] == result.step


def test_top_k_checkpoints_are_pruned(minari_root, tmp_path) -> None:
    train(tiny_config(tmp_path, steps=12, checkpoint_every=2, keep_best=2))
    assert len(list(tmp_path.glob("step-*.pt"))) == 2
    assert (tmp_path / "latest.pt").exists()


def test_atomic_save_keeps_previous_file(tmp_path, monkeypatch) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"kind": "teacher", "step": 1})

    def broken_save(obj, fh):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(WriteFailed, match=r"^disk full writing .*ckpt.pt; the file there before "
                                          r"is unchanged$"):
        save_checkpoint(path, {"kind": "teacher", "step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_checkpoint_errors(tmp_path) -> None:
    save_checkpoint(tmp_path / "t.pt", {"kind": "teacher"})
    with pytest.raises(CTPError, match="kind 'teacher', expected 'ctm'"):
        load_checkpoint(tmp_path / "t.pt", "ctm")
    torch.save({"schema_version": 99, "kind": "teacher"}, tmp_path / "old.pt")
    with pytest.raises(CTPError, match="schema_version 99, expected 1"):
        load_checkpoint(tmp_path / "old.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CTPError, match="not a readable ctp checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CTPError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_checkpoint_loading_never_runs_code(tmp_path) -> None:
    torch.save({"schema_version": 1, "kind": "teacher", "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CTPError, match="not a readable ctp checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")


def _ddp_worker(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), MINARI_DATASETS_PATH=root)
    torch.set_num_threads(1)
    result = train(tiny_config(out, steps=4, seed=0))
    torch.save(result.module.state_dict(), os.path.join(out, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_process_data_parallel_gives_identical_parameters(minari_root, tmp_path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(minari_root), str(tmp_path)), nprocs=2)
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    # ... and training moved them away from a fresh initialisation.
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("train", "teacher", "--horizon", "30"), "--horizon: 30 is not divisible"),
        (("train", "teacher", "--batch-size", "0"), "--batch-size: expected >= 1, got 0"),
        (("train", "teacher", "--dim", "12"), "--dim: expected a positive multiple of 8"),
        (("train", "teacher", "--dataset", "ctp/pointmaze/large-v1"),
         "ctp data generate pointmaze-large"),
        (("train", "ctm", "--teacher", "nope.pt"), "nope.pt: checkpoint not found"),
        (("train", "ctm", "--teacher", "t.pt", "--top-jump-prob", "1.5"),
         "--top-jump-prob: expected in [0, 1], got 1.5"),
        (("train", "ctm", "--teacher", "t.pt", "--dim", "20"),
         "--dim: expected a positive multiple of 8, got 20"),
        (("train", "ctm", "--teacher", "t.pt", "--pair-weight", "-1"),
         "--pair-weight: expected >= 0, got -1.0"),
        (("pairs", "--teacher", "t.pt", "--count", "0"),
         "--count: expected an int >= 1 and <= 1000000000, got 0"),
        (("pairs", "--teacher", "nope.pt"), "nope.pt: checkpoint not found"),
    ],
)
def test_train_cli_bad_input(minari_root, tmp_path, capsys, args, message) -> None:
    proc = run_main(capsys, *args, "--out", tmp_path / "o", "--no-progress")
    assert_one_line_error(proc, message)


def test_train_cli_dry_run_prints_config(tmp_path, capsys) -> None:
    proc = run_main(capsys, "train", "teacher", "--horizon", "64", "--dry-run", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert '"horizon": 64' in proc.stdout and '"kind": "teacher"' in proc.stdout
    assert '"ema_decay": 0.999' in proc.stdout and '"lr": 0.0002' in proc.stdout
    # A CTM run's EMA is its target network: a faster one by default.
    proc = run_main(capsys, "train", "ctm", "--teacher", "t.pt", "--dry-run", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert '"ema_decay": 0.95' in proc.stdout and '"lr": 0.0001' in proc.stdout
