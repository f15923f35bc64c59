"""Decision latency on locomotion, one env: CTP (K one-jump candidates -> value -> best ->
inverse-dynamics action) against a Diffuser-style planner on the same networks (20 teacher
Euler steps, each followed by a value-gradient step on the plan, then the action).

Run: ``pytest bench/bench_locomotion.py --benchmark-only``; the rows of one run give the
ratios. Hopper-medium recipe sizes (configs/locomotion/hopper-medium.toml): H = 32 states one
every env step, 11-dim states, 3-dim actions, U-Nets of dim 32 with mults 1,2,4, K = 16 (shipped)
and 32, inverse dynamics aimed at the plan's last state (k = 31).
Weights are random: latency does not depend on them.
"""

import pytest
import torch

from ctp.data.conditioning import apply_condition, start_goal_condition
from ctp.models.ctm import CTMStudent, ctm_sample
from ctp.models.edm import EDMConfig, EDMDenoiser, heun_step, karras_grid
from ctp.models.inverse_dynamics import InverseDynamics
from ctp.models.value import ValueNet
from ctp.nn import TemporalUNet, UNetConfig

H, D, A = 32, 11, 3
GUIDED_STEPS = 20
GUIDE_SCALE = 0.1  # value-gradient step per level (Diffuser's scale is tuned per task)


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    cfg = UNetConfig(obs_dim=D, horizon=H)
    teacher = EDMDenoiser(TemporalUNet(cfg)).eval().requires_grad_(False)
    student = CTMStudent.from_teacher(teacher).eval().requires_grad_(False)
    value = ValueNet(UNetConfig(obs_dim=D, horizon=H)).eval().requires_grad_(False)
    invdyn = InverseDynamics(D, A).eval().requires_grad_(False)
    return teacher, student, value, invdyn


def _condition(state: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    start = state.expand(k, D)
    return start_goal_condition(start, start, H, 0)  # the start state only


def ctp_decision(nets, state: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` one-jump candidates, the best by V, its action: ``state [1, D]`` -> ``[1, A]``."""
    _, student, value, invdyn = nets
    mask, pinned = _condition(state, k)
    plans = ctm_sample(student, torch.randn(k, H, D) * EDMConfig().sigma_max, mask, pinned, 1)
    best = value(plans, mask, pinned).argmax()
    return invdyn(state, plans[best, -1][None])


def diffuser_decision(nets, state: torch.Tensor) -> torch.Tensor:
    """One plan, 20 teacher Euler levels, each followed by ``x += scale * t^2 * grad V(x)``
    (guidance on the noisy plan, as Diffuser does on its mean); then the action."""
    teacher, _, value, invdyn = nets
    mask, pinned = _condition(state, 1)
    grid = karras_grid(GUIDED_STEPS, EDMConfig())
    x = apply_condition(torch.randn(1, H, D) * EDMConfig().sigma_max, mask, pinned)
    ones = x.new_ones(1)
    for i in range(GUIDED_STEPS):
        x = heun_step(teacher, x, grid[i] * ones, grid[i + 1] * ones, mask, pinned, correct=False)
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(value.standardized(leaf, mask, pinned).sum(), leaf)
        x = apply_condition(x + GUIDE_SCALE * grid[i + 1] ** 2 * grad, mask, pinned)
    return invdyn(state, x[:, -1])


DECISIONS = {
    "ctp-1jump-K16": lambda nets, state: ctp_decision(nets, state, 16),
    "ctp-1jump-K32": lambda nets, state: ctp_decision(nets, state, 32),
    "diffuser-20-guided": diffuser_decision,
}


@pytest.mark.parametrize("name", list(DECISIONS))
def test_decision_latency(benchmark, nets, name: str) -> None:
    state = torch.randn(1, D)
    benchmark.group = "locomotion decision, one env"
    rounds = 5 if name.startswith("diffuser") else 50
    with torch.no_grad():
        action = benchmark.pedantic(DECISIONS[name], args=(nets, state), rounds=rounds,
                                    warmup_rounds=2)
    assert action.shape == (1, A) and torch.isfinite(action).all()
