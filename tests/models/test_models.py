"""U-Net, EDM teacher and CTM student: shapes, constants, samplers, gradients, a toy fit."""

import copy
import math

import pytest
import torch

from ctp.data.conditioning import start_goal_condition
from ctp.models.ctm import CTMConfig, CTMStudent, ctm_loss, ctm_sample, jump_times
from ctp.models.edm import (
    EDMConfig,
    EDMDenoiser,
    edm_loss,
    heun_sample,
    karras_grid,
    loss_weight,
    precondition,
)
from ctp.nn import Critic, TemporalUNet, UNetConfig

torch.set_num_threads(1)


def tiny_unet(horizon: int = 16, obs_dim: int = 4, **kw) -> TemporalUNet:
    return TemporalUNet(UNetConfig(obs_dim=obs_dim, horizon=horizon, dim=16, dim_mults=(1, 2),
                                   **kw))


def condition(batch: int, horizon: int, dim: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    start, goal = torch.randn(batch, dim, generator=g), torch.randn(batch, dim, generator=g)
    return start_goal_condition(start, goal, horizon, dim)


@pytest.mark.parametrize(("horizon", "mults"), [(8, (1, 2)), (32, (1, 2, 4)), (64, (1, 4, 8))])
def test_unet_keeps_shape(horizon: int, mults: tuple[int, ...]) -> None:
    net = TemporalUNet(UNetConfig(horizon=horizon, dim=16, dim_mults=mults))
    x = torch.randn(3, horizon, 4)
    mask, value = condition(3, horizon)
    assert net(x, torch.randn(3), mask, value).shape == (3, horizon, 4)


def test_unet_rejects_bad_horizon() -> None:
    with pytest.raises(ValueError, match="not divisible by the U-Net's down-sampling factor 4"):
        UNetConfig(horizon=30, dim_mults=(1, 2, 4))


def test_student_unet_needs_s_input_and_starts_at_teacher() -> None:
    teacher = EDMDenoiser(tiny_unet())
    student = CTMStudent.from_teacher(teacher)
    x = torch.randn(2, 16, 4)
    mask, value = condition(2, 16)
    with pytest.raises(ValueError, match="s_noise"):
        student.net(x, torch.zeros(2), mask, value)
    sigma = torch.tensor([1.0, 3.0])
    # The zero-initialised s embedding makes the warm-started student's diagonal the teacher.
    torch.testing.assert_close(student.diagonal(x, sigma, mask, value),
                               teacher(x, sigma, mask, value))


def test_critic_outputs_one_logit_per_item() -> None:
    critic = Critic(UNetConfig(horizon=16, dim=16, dim_mults=(1, 2)))
    mask, value = condition(5, 16)
    assert critic(torch.randn(5, 16, 4), mask, value).shape == (5,)


def test_preconditioning_constants() -> None:
    sd = 0.5
    sigma = torch.tensor([0.5, 1.0, 80.0])
    c_skip, c_out, c_in, c_noise = precondition(sigma, sd)
    torch.testing.assert_close(c_skip, torch.tensor([0.5, 0.25 / 1.25, 0.25 / (6400.25)]))
    torch.testing.assert_close(c_out, torch.tensor([0.25 / math.sqrt(0.5), 0.5 / math.sqrt(1.25),
                                                    40.0 / math.sqrt(6400.25)]))
    torch.testing.assert_close(c_in, 1 / torch.sqrt(sigma**2 + 0.25))
    torch.testing.assert_close(c_noise, torch.log(sigma) / 4)
    torch.testing.assert_close(loss_weight(sigma, sd), (sigma**2 + 0.25) / (sigma * 0.5) ** 2)
    torch.testing.assert_close(loss_weight(torch.tensor([0.5]), sd), torch.tensor([8.0]))


def test_karras_grid_endpoints_and_order() -> None:
    grid = karras_grid(18, EDMConfig())
    assert grid.shape == (19,)
    torch.testing.assert_close(grid[0], torch.tensor(80.0))
    torch.testing.assert_close(grid[17], torch.tensor(0.002))
    assert grid[18] == 0 and bool((grid[:-1] > grid[1:]).all())


class GaussianDenoiser(torch.nn.Module):
    """The exact denoiser E[x0 | x_sigma] of data x0 ~ N(mu, s^2) per entry."""

    def __init__(self, mu: float, s: float) -> None:
        super().__init__()
        self.mu, self.s = mu, s

    def forward(self, x, sigma, mask, value):
        var = sigma.reshape(-1, 1, 1) ** 2
        out = self.mu + self.s**2 / (self.s**2 + var) * (x - self.mu)
        return out * (1 - mask) + value * mask


def test_heun_with_exact_denoiser_reproduces_gaussian() -> None:
    torch.manual_seed(0)
    mu, s = 0.3, 0.7
    noise = torch.randn(4000, 4, 4) * 80
    zeros = torch.zeros_like(noise)
    out = heun_sample(GaussianDenoiser(mu, s), noise, zeros, zeros, steps=32)
    assert abs(out.mean().item() - mu) < 0.02
    assert abs(out.std().item() - s) < 0.02


def test_samplers_keep_inpainted_entries() -> None:
    teacher = EDMDenoiser(tiny_unet())
    student = CTMStudent.from_teacher(teacher)
    mask, value = condition(3, 16)
    noise = torch.randn(3, 16, 4) * 80
    with torch.no_grad():
        for out in (heun_sample(teacher, noise, mask, value, 3),
                    ctm_sample(student, noise, mask, value, jumps=2, gamma=0.5)):
            torch.testing.assert_close(out * mask, value * mask, rtol=0, atol=0)


def test_ctm_identity_on_the_diagonal() -> None:
    student = CTMStudent.from_teacher(EDMDenoiser(tiny_unet()))
    mask, value = condition(4, 16)
    x = torch.randn(4, 16, 4) * (1 - mask) + value * mask
    for t in (0.01, 1.0, 80.0):
        tt = torch.full((4,), t)
        torch.testing.assert_close(student(x, tt, tt, mask, value), x)
    zero = torch.zeros(4)
    torch.testing.assert_close(student(x, zero, zero, mask, value), x)


def test_gamma_zero_is_deterministic_and_gamma_adds_noise() -> None:
    student = CTMStudent.from_teacher(EDMDenoiser(tiny_unet()))
    mask, value = condition(2, 16)
    noise = torch.randn(2, 16, 4) * 80
    with torch.no_grad():
        a = ctm_sample(student, noise, mask, value, jumps=3, gamma=0.0)
        b = ctm_sample(student, noise, mask, value, jumps=3, gamma=0.0)
        c = ctm_sample(student, noise, mask, value, jumps=3, gamma=0.5,
                       generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)


def test_jump_times_run_from_sigma_max_to_zero() -> None:
    times = jump_times(2, EDMConfig())
    assert times[0] == 80 and times[-1] == 0 and times.shape == (3,)
    assert 0 < times[1] < 80


def distillation_setup() -> tuple[EDMDenoiser, CTMStudent, CTMStudent]:
    """A tiny teacher (H 16), its warm-started student and the student's EMA copy."""
    torch.manual_seed(0)
    teacher = EDMDenoiser(tiny_unet())
    student = CTMStudent.from_teacher(teacher)
    return teacher, student, copy.deepcopy(student)


def test_ctm_loss_trains_student_only() -> None:
    teacher, student, ema = distillation_setup()
    mask, value = condition(8, 16)
    x0 = torch.randn(8, 16, 4)
    loss, parts = ctm_loss(student, ema, teacher, x0, mask, value, CTMConfig(), k=2)
    loss.backward()
    assert parts["ctm"] > 0 and parts["dsm"] > 0
    grads = [p.grad for p in student.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in ema.parameters())
    assert all(p.grad is None for p in teacher.parameters())
    # The CTM term on its own reaches the student's weights too (not only the DSM term).
    student.zero_grad()
    loss_ctm, _ = ctm_loss(student, ema, teacher, x0, mask, value,
                           CTMConfig(lambda_dsm=0.0, s_zero_prob=1.0), k=1)
    loss_ctm.backward()
    assert sum(float(p.grad.abs().sum()) for p in student.parameters() if p.grad is not None) > 0


def test_top_jump_prob_trains_the_one_jump_map() -> None:
    """top_jump_prob = 1 puts every item on (t, s) = (sigma_max, 0); 0 spreads t over levels."""
    teacher, student, ema = distillation_setup()
    mask, value = condition(32, 16)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    student.register_forward_hook(lambda _m, args, _out: seen.append((args[1], args[2])))
    for prob in (1.0, 0.0):
        seen.clear()
        ctm_loss(student, ema, teacher, torch.randn(32, 16, 4), mask, value,
                 CTMConfig(top_jump_prob=prob), generator=torch.Generator().manual_seed(1), k=1)
        (t, s), = seen
        at_top = (t == student.edm.sigma_max) & (s == 0)
        if prob == 1.0:
            assert bool(at_top.all())
        else:  # t spread over the grid's levels, the one-jump pair only by chance
            assert len(t.unique()) > 5 and int(at_top.sum()) < 8


def toy_batch(n: int, g: torch.Generator) -> torch.Tensor:
    """Straight 2-D lines: x_t = a + b * t / (H - 1), a ~ U(-0.5, 0.5), b ~ N(0, 0.3^2)."""
    h = 8
    a = torch.rand(n, 1, 2, generator=g) - 0.5
    b = torch.randn(n, 1, 2, generator=g) * 0.3
    t = torch.linspace(0, 1, h)[None, :, None]
    return a + b * t


@pytest.mark.slow
def test_one_step_student_matches_toy_moments() -> None:
    """Teacher then student trained on a toy line distribution; the one-jump student's
    samples match the data's per-time mean within 0.1 and std within 30%."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    cfg = UNetConfig(obs_dim=2, horizon=8, dim=16, dim_mults=(1, 2), cond_channels=False)
    teacher = EDMDenoiser(TemporalUNet(cfg))
    opt = torch.optim.Adam(teacher.parameters(), lr=2e-3)
    zeros = torch.zeros(128, 8, 2)
    for _ in range(300):
        loss = edm_loss(teacher, toy_batch(128, g), zeros, zeros)
        opt.zero_grad()
        loss.backward()
        opt.step()
    teacher.requires_grad_(False)
    student = CTMStudent.from_teacher(teacher)
    ema = copy.deepcopy(student).requires_grad_(False)
    opt = torch.optim.Adam(student.parameters(), lr=5e-4)
    for _ in range(200):
        loss, _ = ctm_loss(student, ema, teacher, toy_batch(128, g), zeros, zeros,
                           CTMConfig(grid_size=12, max_teacher_steps=3))
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for e, p in zip(ema.parameters(), student.parameters(), strict=False):
                e.lerp_(p, 0.05)
    data = toy_batch(4000, g)
    with torch.no_grad():
        z = torch.zeros(4000, 8, 2)
        samples = ctm_sample(ema, torch.randn(4000, 8, 2) * 80, z, z, jumps=1)
    assert (samples.mean(0) - data.mean(0)).abs().max() < 0.1
    ratio = samples.std(0) / data.std(0)
    assert bool(((ratio > 0.7) & (ratio < 1.3)).all()), ratio


def _widened(narrow: TemporalUNet) -> TemporalUNet:
    """A twice-as-wide U-Net computing exactly what ``narrow`` computes: in each GroupNorm
    group the second half of the channels copies the first half (same group statistics) and
    no layer reads the copies. Built without ``ctp.nn.narrow``, to test it."""
    cfg = copy.deepcopy(narrow.cfg)
    cfg.embed_dim, cfg.dim = narrow.cfg.dim, narrow.cfg.dim * 2
    wide = TemporalUNet(cfg)
    modules = dict(wide.named_modules())
    transposed = {n for n, m in modules.items() if isinstance(m, torch.nn.ConvTranspose1d)}
    concat_readers = {f"ups.{i}.0.{layer}" for i in range(len(wide.ups))
                      for layer in ("block1.conv", "residual")}

    def source(channels: int, concat: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if concat:  # [h, skip]: each half on its own
            first, kept = source(channels // 2, False)
            return torch.cat([first, first + channels // 4]), torch.cat([kept, kept])
        size = channels // 8
        c = torch.arange(channels)
        return c // size * (size // 2) + c % size % (size // 2), c % size < size // 2

    state, targets = {}, wide.state_dict()
    for name, value in narrow.state_dict().items():
        target = targets[name]
        module = name.rsplit(".", 1)[0]
        for axis in range(value.dim()):
            if value.shape[axis] == target.shape[axis]:
                continue
            reads = value.dim() > 1 and (axis == 1) != (module in transposed)
            index, kept = source(target.shape[axis], reads and module in concat_readers)
            value = value.index_select(axis, index)
            if reads:  # the copies are never read
                shape = [1] * value.dim()
                shape[axis] = -1
                value = value * kept.reshape(shape)
        state[name] = value
    wide.load_state_dict(state)
    return wide


def test_narrowed_unet_keeps_a_channel_subset_per_group() -> None:
    from ctp.nn.narrow import group_channels, narrowed_unet

    torch.manual_seed(0)
    narrow = TemporalUNet(UNetConfig(horizon=16, dim=16, dim_mults=(1, 2, 4), s_embedding=True))
    for p in narrow.parameters():  # no zero-initialised layer: every channel matters
        torch.nn.init.normal_(p, std=0.3)
    wide = _widened(narrow)
    x = torch.randn(3, 16, 4)
    mask, value = condition(3, 16)
    t, s = torch.randn(3), torch.randn(3)
    torch.testing.assert_close(wide(x, t, mask, value, s), narrow(x, t, mask, value, s))
    back = narrowed_unet(wide, 16)
    assert back.cfg.dim == 16 and back.cfg.embed_dim == 16  # the wide net's
    for name, tensor in narrow.state_dict().items():
        torch.testing.assert_close(back.state_dict()[name], tensor, msg=name)
    assert group_channels(64, 32, 8)[:6].tolist() == [0, 1, 2, 3, 8, 9]
    same = narrowed_unet(narrow, 16)
    torch.testing.assert_close(same(x, t, mask, value, s), narrow(x, t, mask, value, s))
    with pytest.raises(ValueError, match="multiple of 8 in \\[8, 16\\], got 12"):
        narrowed_unet(narrow, 12)


def test_narrow_student_is_smaller_and_keeps_the_time_embedding() -> None:
    torch.manual_seed(0)
    teacher = EDMDenoiser(TemporalUNet(UNetConfig(horizon=16, dim=32, dim_mults=(1, 2))))
    student = CTMStudent.from_teacher(teacher, dim=16)
    assert student.net.cfg.dim == 16 and student.net.cfg.embed_dim == 32
    assert sum(p.numel() for p in student.parameters()) < 0.5 * sum(
        p.numel() for p in CTMStudent.from_teacher(teacher).parameters())
    x = torch.randn(4, 16, 4)
    mask, value = condition(4, 16)
    out = student(x, torch.full((4,), 2.0), torch.zeros(4), mask, value)
    assert out.shape == (4, 16, 4) and torch.isfinite(out).all()


def test_build_network_builds_every_kind_and_load_network_reads_half_entries() -> None:
    from ctp.models.builder import build_network, load_network
    from ctp.utils.checkpoint import NETWORK_KINDS, PLANNER_NETWORKS
    from ctp.utils.errors import CTPError

    unet = UNetConfig(obs_dim=4, horizon=8, dim=16, dim_mults=(1, 2))
    edm = EDMConfig()
    from ctp.models.value import ValueNet

    types = {"teacher": EDMDenoiser, "ctm": CTMStudent, "critic": Critic, "value": ValueNet}
    assert set(NETWORK_KINDS) == set(types)
    from ctp.utils.checkpoint import MLP_NETWORKS

    assert set(PLANNER_NETWORKS.values()) == set(types) | set(MLP_NETWORKS)
    for kind in NETWORK_KINDS:
        torch.manual_seed(0)
        net = build_network(kind, unet, edm)
        assert isinstance(net, types[kind])
        entry = {"unet": unet.to_dict() | {"dim_mults": [1, 2]},
                 "state": {k: v.half() for k, v in net.state_dict().items()}}
        back = load_network(kind, entry["unet"], entry["state"], edm, "test")
        for name, tensor in back.state_dict().items():
            assert tensor.dtype == torch.float32
            assert torch.equal(tensor, entry["state"][name].float()), name
    assert unet.s_embedding is False  # the student's copy embeds s, the config is untouched
    assert build_network("ctm", unet, edm).net.cfg.s_embedding is True
    with pytest.raises(CTPError, match="unknown network kind 'invdyn'"):
        build_network("invdyn", unet, edm)
    with pytest.raises(CTPError, match="where: unet config is not valid"):
        load_network("critic", {"dim": 16}, {}, edm, "where")


def test_mlp_networks_load_from_their_configs_and_half_weights() -> None:
    """The two MLPs of a planner file (inverse dynamics, goal distance) rebuild from their
    recorded configs with float16 weights widened; a broken config is a one-line error."""
    from ctp.models.builder import load_mlp_network
    from ctp.models.distance import GoalDistance
    from ctp.models.inverse_dynamics import InverseDynamics
    from ctp.utils.errors import CTPError

    for net in (InverseDynamics(5, 2, (8,), stride=3, target_dims=2, reach=1.5),
                GoalDistance(2, (8, 8), expectile=0.2, scale=40.0)):
        kind = "invdyn" if isinstance(net, InverseDynamics) else "distance"
        state = {k: v.half() for k, v in net.state_dict().items()}
        back = load_mlp_network(kind, net.config(), state, "test")
        assert type(back) is type(net) and back.config() == net.config()
        for name, tensor in back.state_dict().items():
            assert tensor.dtype == torch.float32
            assert torch.equal(tensor, state[name].float()), name
        with pytest.raises(CTPError, match=f"^where: {kind} config is not valid"):
            load_mlp_network(kind, {"hidden": [8]}, state, "where")
