"""Per-plan latency on one network and batch: CTM n=1, n=2, EDM Heun 18, a Diffuser-style
64-step sampler, and a single network forward of the same batch.

Run: ``pytest bench/bench_plan.py --benchmark-only``. Umaze configuration (H=32 planned
states, dim 32, mults 1,2,4); weights are random (latency does not depend on them).
"""

import pytest
import torch

from ctp.data.conditioning import start_goal_condition
from ctp.models.ctm import CTMStudent, ctm_sample
from ctp.models.edm import EDMConfig, EDMDenoiser, heun_sample, heun_step, karras_grid
from ctp.nn import TemporalUNet, UNetConfig

H = 32


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    teacher = EDMDenoiser(TemporalUNet(UNetConfig(horizon=H))).eval()
    student = CTMStudent.from_teacher(teacher).eval()
    return teacher.requires_grad_(False), student.requires_grad_(False)


def _batch(k: int):
    start, goal = torch.randn(k, 4), torch.randn(k, 4)
    mask, value = start_goal_condition(start, goal, H, 4)
    return torch.randn(k, H, 4) * 80, mask, value


def _euler(teacher, x, mask, value, steps):
    grid = karras_grid(steps, EDMConfig())
    ones = x.new_ones(x.shape[0])
    for i in range(steps):
        x = heun_step(teacher, x, grid[i] * ones, grid[i + 1] * ones, mask, value, correct=False)
    return x


SAMPLERS = {
    "forward": lambda t, s, n, m, v: s.net(n, torch.ones(len(n)), m, v, torch.zeros(len(n))),
    "ctm-1": lambda t, s, n, m, v: ctm_sample(s, n, m, v, jumps=1),
    "ctm-2": lambda t, s, n, m, v: ctm_sample(s, n, m, v, jumps=2),
    "edm-heun-18": lambda t, s, n, m, v: heun_sample(t, n, m, v, steps=18),
    "diffuser-64": lambda t, s, n, m, v: _euler(t, n, m, v, 64),
}


@pytest.mark.parametrize("k", [1, 64])
@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_plan_latency(benchmark, nets, sampler: str, k: int) -> None:
    teacher, student = nets
    noise, mask, value = _batch(k)
    benchmark.group = f"plan K={k}"
    fn = SAMPLERS[sampler]
    rounds = 3 if sampler in ("edm-heun-18", "diffuser-64") else 20
    with torch.no_grad():
        out = benchmark.pedantic(fn, args=(teacher, student, noise, mask, value),
                                 rounds=rounds, warmup_rounds=1)
    assert out.shape == (k, H, 4)


def _time_shipped_planner(benchmark, env: str, **settings) -> None:
    """Time ``Planner.plan`` for one env with the shipped planner's defaults + ``settings``."""
    import dataclasses

    import numpy as np

    from ctp.planning import load_planner
    from ctp.planning.bundle import bundled_planner_path, load_planner_file
    from ctp.planning.config import defaults_of

    config = dataclasses.replace(defaults_of(load_planner_file(bundled_planner_path(env))),
                                 **settings)
    planner = load_planner(env=env, config=config)
    state = np.array([1.0, 1.0, 0.0, 0.0], np.float32)
    goal = np.array([3.0, 2.0], np.float32)
    benchmark.extra_info["candidates"] = planner.config.candidates
    benchmark.extra_info["horizon"] = planner.horizon
    result = benchmark.pedantic(planner.plan, args=(state, goal), rounds=30, warmup_rounds=3)
    assert result.trajectory.shape == (planner.horizon, 4)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("env", ["pointmaze-umaze", "pointmaze-medium", "pointmaze-large"])
def test_shipped_planner_latency(benchmark, env: str, compiled: bool) -> None:
    """One full ``Planner.plan`` call of a shipped planner with its shipped settings (K
    candidates, 1 jump): sampling, scoring, ranking, plan post-processing, first action;
    eager and with ``--compile`` (frozen weights; compiled in the warm-up rounds)."""
    benchmark.group = "shipped planner, one env"
    _time_shipped_planner(benchmark, env, compile=compiled)


@pytest.mark.parametrize("k", [16, 32, 64, 128])
@pytest.mark.parametrize("env", ["pointmaze-medium", "pointmaze-large"])
def test_candidate_count_latency(benchmark, env: str, k: int) -> None:
    """One eager ``Planner.plan`` call of a shipped planner at K candidates (1 jump)."""
    benchmark.group = f"{env}, one env, by candidates"
    _time_shipped_planner(benchmark, env, candidates=k)
