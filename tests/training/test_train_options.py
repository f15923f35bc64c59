"""Training options: per-objective defaults shared by the CLI and the library, and the
learning-rate schedule (warm-up + cosine) across an interrupted and resumed run."""

import json
import math
import signal

import pytest
import torch

import ctp.training.loop
from ctp.cli import build_parser, main
from ctp.commands.train import config_from_args
from ctp.training.config import TrainConfig
from ctp.training.loop import train
from ctp.training.objectives import OBJECTIVES
from ctp.training.schedules import lr_scheduler
from ctp.utils.checkpoint import load_checkpoint, save_checkpoint

torch.set_num_threads(1)

PARENTS = {"teacher": {}, "ctm": {"teacher": "t.pt"}, "critic": {"student": "s.pt"}}


@pytest.mark.parametrize("kind", sorted(PARENTS))
def test_cli_defaults_are_the_librarys(kind) -> None:
    argv = ["train", kind, *(a for name, path in PARENTS[kind].items()
                             for a in (f"--{name}", path))]
    cli = config_from_args(build_parser().parse_args(argv))
    library = TrainConfig(kind=kind, **PARENTS[kind])
    assert cli.to_dict() == library.to_dict()
    assert (library.lr, library.ema_decay, library.out_dir) == (
        OBJECTIVES[kind].defaults["lr"], OBJECTIVES[kind].defaults["ema_decay"], f"runs/{kind}")


def test_ctm_defaults_differ_from_the_teachers_and_help_shows_them(capsys) -> None:
    ctm, teacher = TrainConfig(kind="ctm", teacher="t.pt"), TrainConfig()
    assert (ctm.lr, ctm.ema_decay) == (1e-4, 0.95) and (teacher.lr, teacher.ema_decay) == (
        2e-4, 0.999)
    with pytest.raises(SystemExit):
        main(["train", "ctm", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "peak learning rate (default: 0.0001)" in shown
    assert "target network's) (default: 0.95)" in shown
    assert "Karras grid levels N (default: 18)" in shown


def test_cli_options_given_override_the_defaults() -> None:
    args = build_parser().parse_args(["train", "ctm", "--teacher", "t.pt", "--lr", "3e-4",
                                      "--grid-size", "10", "--dim", "16", "--lr-schedule",
                                      "cosine", "--warmup-steps", "5", "--lr-min", "1e-5"])
    cfg = config_from_args(args)
    assert (cfg.lr, cfg.ctm.grid_size, cfg.student_dim, cfg.dim) == (3e-4, 10, 16, 32)
    assert (cfg.lr_schedule, cfg.warmup_steps, cfg.lr_min, cfg.ema_decay) == (
        "cosine", 5, 1e-5, 0.95)


def lr_sequence(cfg: TrainConfig) -> list[float]:
    """The learning rate of each of ``cfg.steps`` updates, as the scheduler sets it."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    scheduler = lr_scheduler(cfg, opt, None)
    lrs = []
    for _ in range(cfg.steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return lrs


def test_lr_warms_up_linearly_then_follows_a_cosine_to_the_floor() -> None:
    cfg = TrainConfig(lr=1e-3, lr_schedule="cosine", warmup_steps=4, lr_min=1e-4, steps=21)
    lrs = lr_sequence(cfg)
    assert lrs[:5] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3], rel=1e-12)
    for step in range(4, 21):  # cosine over updates 5..21: peak -> floor
        expected = 1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi * (step - 4) / 16))
        assert lrs[step] == pytest.approx(expected, rel=1e-12)
    assert lrs[12] == pytest.approx(5.5e-4, rel=1e-12) and lrs[-1] == pytest.approx(1e-4)
    assert all(a > b for a, b in zip(lrs[4:], lrs[5:], strict=False))


def test_default_schedule_keeps_the_learning_rate_constant() -> None:
    cfg = TrainConfig(lr=3e-4, steps=7)
    assert lr_sequence(cfg) == [3e-4] * 7  # exactly today's constant rate


def _logged_lrs(run) -> list[float]:
    return [json.loads(line)["lr"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_resume_continues_the_schedule_exactly(minari_root, tmp_path, monkeypatch) -> None:
    common = dict(horizon=8, stride=2, dim=16, dim_mults=(1, 2), batch_size=8, steps=8,
                  log_every=1, progress=False, lr=1e-3, lr_schedule="cosine", warmup_steps=3,
                  lr_min=1e-5)
    whole = train(TrainConfig(out_dir=str(tmp_path / "whole"), **common))
    assert whole.step == 8

    real_update, calls = ctp.training.loop.ema_update, []

    def interrupt_after_three(*args) -> None:  # SIGINT during the third step
        real_update(*args)
        calls.append(1)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(ctp.training.loop, "ema_update", interrupt_after_three)
    run = tmp_path / "split"
    first = train(TrainConfig(out_dir=str(run), **common))
    assert (first.step, first.stopped_by) == (3, signal.SIGINT)
    monkeypatch.setattr(ctp.training.loop, "ema_update", real_update)
    saved = load_checkpoint(run / "latest.pt")
    assert saved["scheduler"]["last_epoch"] == 3
    train(TrainConfig(out_dir=str(run), resume=True, **common))

    expected = _logged_lrs(tmp_path / "whole")
    assert len(expected) == 8 and expected[0] == pytest.approx(1e-3 / 3)
    assert _logged_lrs(run) == expected  # the same floats, step for step
    final = load_checkpoint(run / "latest.pt")
    assert final["optimizer"]["param_groups"][0]["lr"] == load_checkpoint(
        whole.latest)["optimizer"]["param_groups"][0]["lr"]

    # A checkpoint from before schedules (no scheduler state) resumes at its step.
    old = {k: v for k, v in saved.items() if k not in ("schema_version", "scheduler")}
    save_checkpoint(run / "latest.pt", old)
    (run / "metrics.jsonl").unlink()
    train(TrainConfig(out_dir=str(run), resume=True, **common))
    assert _logged_lrs(run) == expected[3:]
