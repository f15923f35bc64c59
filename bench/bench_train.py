"""Training throughput (windows/s) of teacher and CTM steps.

Run: ``pytest bench/bench_train.py --benchmark-only``. Configurations: the recommended umaze
one (H=32 planned states, stride 4, dim 32, mults 1,2,4, batch 64) and a Diffuser-sized one
(H=128, dim 32, mults 1,4,8, batch 32). Random windows (speed does not depend on data);
windows/s = batch / median step time (see the `extra_info` column).
"""

import copy

import pytest
import torch

from ctp.data.conditioning import start_goal_condition
from ctp.models.ctm import CTMConfig, CTMStudent, ctm_loss
from ctp.models.edm import EDMDenoiser, edm_loss
from ctp.nn import TemporalUNet, UNetConfig

CONFIGS = {
    "umaze-H32-d32-124-b64": (UNetConfig(horizon=32, dim=32, dim_mults=(1, 2, 4)), 64),
    "diffuser-H128-d32-148-b32": (UNetConfig(horizon=128, dim=32, dim_mults=(1, 4, 8)), 32),
}


def _batch(cfg: UNetConfig, b: int):
    x = torch.randn(b, cfg.horizon, 4).clamp(-1, 1)
    mask, value = start_goal_condition(x[:, 0], x[:, -1], cfg.horizon, 4)
    return x, mask, value


def _bench_step(benchmark, loss_fn, params, batch: int) -> None:
    """Time one optimizer step of ``loss_fn()``; records windows/s (batch / median)."""
    opt = torch.optim.AdamW(params, lr=1e-4)

    def step():
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()

    benchmark.group = "train step"
    benchmark.pedantic(step, rounds=5, warmup_rounds=1)
    if benchmark.stats:  # None under --benchmark-disable
        benchmark.extra_info["windows_per_s"] = round(batch / benchmark.stats.stats.median)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_teacher_step(benchmark, name: str) -> None:
    cfg, b = CONFIGS[name]
    torch.manual_seed(0)
    teacher = EDMDenoiser(TemporalUNet(cfg))
    x, mask, value = _batch(cfg, b)
    _bench_step(benchmark, lambda: edm_loss(teacher, x, mask, value), teacher.parameters(), b)


@pytest.mark.parametrize("name", list(CONFIGS)[:1])
def test_ctm_step(benchmark, name: str) -> None:
    cfg, b = CONFIGS[name]
    torch.manual_seed(0)
    teacher = EDMDenoiser(TemporalUNet(cfg)).requires_grad_(False)
    student = CTMStudent.from_teacher(teacher)
    ema = copy.deepcopy(student).requires_grad_(False)
    x, mask, value = _batch(cfg, b)
    ctm_cfg = CTMConfig()
    _bench_step(
        benchmark, lambda: ctm_loss(student, ema, teacher, x, mask, value, ctm_cfg, k=2)[0],
        student.parameters(), b,
    )
