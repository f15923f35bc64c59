"""Triton kernels (run by the interpreter on CPU tensors) against their PyTorch references."""

import os

import pytest
import torch
import torch.nn.functional as F

from ctp.kernels import (
    dynamics_error,
    dynamics_error_reference,
    fused_gn_mish,
    gn_mish_reference,
    goal_reward,
    goal_reward_reference,
    mish_exp,
    resolve_backend,
    score_candidates,
    score_candidates_reference,
)
from ctp.nn import TemporalUNet, UNetConfig

# CPU tensors through Triton need the interpreter (tests/conftest.py turns it on).
interp = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1", reason="needs TRITON_INTERPRET=1 (conftest)"
)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# (B, C, G, L): every L in {1, 7, 37, 128}, C/G in {1, 4, 16}, B in {1, 3}.
SHAPES = [(1, 8, 8, 7), (3, 16, 4, 1), (3, 64, 4, 37), (1, 32, 8, 128), (3, 8, 2, 37),
          (1, 16, 1, 7)]


def _inputs(b, c, length, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, length, generator=g).to(dtype).requires_grad_()
    w = (1 + 0.5 * torch.randn(c, generator=g)).to(dtype).requires_grad_()
    bias = (0.5 * torch.randn(c, generator=g)).to(dtype).requires_grad_()
    emb = torch.randn(b, c, generator=g).to(dtype).requires_grad_()
    return x, w, bias, emb


@interp
@pytest.mark.parametrize("with_emb", [True, False])
@pytest.mark.parametrize(("b", "c", "groups", "length"), SHAPES)
def test_gn_mish_fp32_forward_backward(b, c, groups, length, with_emb) -> None:
    x, w, bias, emb = _inputs(b, c, length, torch.float32)
    emb = emb if with_emb else None
    y = fused_gn_mish(x, w, bias, groups, 1e-5, emb, backend="triton")
    ref = gn_mish_reference(x, w, bias, groups, 1e-5, emb)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    dy = torch.randn_like(y)
    inputs = [x, w, bias] + ([emb] if with_emb else [])
    got = torch.autograd.grad(y, inputs, dy)
    want = torch.autograd.grad(ref, inputs, dy)
    for a, r in zip(got, want, strict=False):
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-4)


@interp
def test_single_element_groups() -> None:
    """C/G = 1 and L = 1 (PyTorch's group_norm refuses this in training): x_hat = 0, so the
    output is mish(bias) + emb and no gradient reaches x."""
    x, w, bias, emb = _inputs(1, 8, 1, torch.float32)
    y = fused_gn_mish(x, w, bias, 8, 1e-5, emb, backend="triton")
    torch.testing.assert_close(y, (F.mish(bias) + emb)[:, :, None], rtol=1e-6, atol=1e-6)
    (dx,) = torch.autograd.grad(y.sum(), [x])
    torch.testing.assert_close(dx, torch.zeros_like(dx))


@interp
@pytest.mark.parametrize(("b", "c", "groups", "length"), [(3, 16, 4, 37), (1, 32, 8, 128)])
def test_gn_mish_bf16(b, c, groups, length) -> None:
    """bf16 in and out, fp32 statistics: close to the fp32 reference at bf16 precision."""
    x, w, bias, emb = _inputs(b, c, length, torch.bfloat16)
    y = fused_gn_mish(x, w, bias, groups, 1e-5, emb, backend="triton")
    assert y.dtype == torch.bfloat16
    ref = gn_mish_reference(x.float(), w.float(), bias.float(), groups, 1e-5, emb.float())
    torch.testing.assert_close(y.float(), ref, rtol=2e-2, atol=3e-2)
    dy = torch.randn_like(y)
    (dx,) = torch.autograd.grad(y, [x], dy)
    xf = x.detach().float().requires_grad_()
    ref = gn_mish_reference(xf, w.float(), bias.float(), groups, 1e-5, emb.float())
    (dx_ref,) = torch.autograd.grad(ref, [xf], dy.float())
    torch.testing.assert_close(dx.float(), dx_ref, rtol=5e-2, atol=5e-2)


@interp
def test_non_contiguous_input() -> None:
    base = torch.randn(3, 37, 16)
    x = base.transpose(1, 2).requires_grad_()  # [3, 16, 37], not contiguous
    assert not x.is_contiguous()
    w, bias = torch.ones(16), torch.zeros(16)
    y = fused_gn_mish(x, w, bias, 4, backend="triton")
    torch.testing.assert_close(y, gn_mish_reference(x, w, bias, 4), rtol=1e-5, atol=1e-5)
    (dx,) = torch.autograd.grad(y.sum(), [x])
    (dx_ref,) = torch.autograd.grad(gn_mish_reference(x, w, bias, 4).sum(), [x])
    torch.testing.assert_close(dx, dx_ref, rtol=1e-4, atol=1e-4)


def test_torch_path_matches_reference_values_and_gradients() -> None:
    """The torch backend's closed-form Mish equals F.mish, also far into both tails."""
    x, w, bias, emb = (t.detach().requires_grad_() for t in _inputs(3, 16, 9, torch.float32))
    y = fused_gn_mish(x, w, bias, 4, 1e-5, emb, backend="torch")
    ref = gn_mish_reference(x, w, bias, 4, 1e-5, emb)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(y.square().sum(), [x, w, bias, emb])
    refs = torch.autograd.grad(ref.square().sum(), [x, w, bias, emb])
    for got, want in zip(grads, refs, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    # GroupNorm keeps its outputs within a few units: probe both tails directly.
    z = torch.tensor([-1e4, -90.0, -20.0, -1.0, 0.0, 1e-3, 1.0, 19.9, 20.0, 25.0, 1e4],
                     requires_grad=True)
    torch.testing.assert_close(mish_exp(z), F.mish(z), rtol=1e-6, atol=1e-6)
    (dz,) = torch.autograd.grad(mish_exp(z).sum(), [z])
    (dz_ref,) = torch.autograd.grad(F.mish(z).sum(), [z])
    torch.testing.assert_close(dz, dz_ref, rtol=1e-5, atol=1e-6)


def test_bad_group_count() -> None:
    with pytest.raises(ValueError, match="C divisible by num_groups=3"):
        fused_gn_mish(torch.randn(1, 8, 4), torch.ones(8), torch.zeros(8), 3, backend="torch")


@interp
def test_unet_fused_matches_unfused_and_shares_state_dict() -> None:
    torch.manual_seed(0)
    cfg = dict(horizon=8, dim=16, dim_mults=(1, 2))
    fused = TemporalUNet(UNetConfig(backend="triton", **cfg))
    plain = TemporalUNet(UNetConfig(backend="torch", **cfg))
    plain.load_state_dict(fused.state_dict())  # identical keys: checkpoints load either way
    x = torch.randn(2, 8, 4)
    mask = torch.zeros_like(x)
    mask[:, 0] = 1
    sigma = torch.tensor([0.3, 2.0])
    torch.testing.assert_close(fused(x, sigma, mask, x), plain(x, sigma, mask, x),
                               rtol=1e-4, atol=1e-4)


@interp
@pytest.mark.parametrize(("n", "h"), [(5, 1), (7, 32), (3, 37), (17, 20)])
def test_score_kernel_matches_reference(n, h) -> None:
    g = torch.Generator().manual_seed(n * 100 + h)
    traj = torch.randn(n, h, 4, generator=g)
    goal = torch.randn(n, 2, generator=g)
    traj[:, h // 2 :, :2] = goal[:, None] + 0.3 * torch.randn(n, h - h // 2, 2, generator=g)
    kw = dict(goal_radius=0.45, step_dt=0.04, dyn_weight=3.0)
    got = score_candidates(traj, goal, backend="triton", **kw)
    torch.testing.assert_close(got, score_candidates_reference(traj, goal, **kw),
                               rtol=1e-5, atol=1e-5)


@interp
@pytest.mark.parametrize(("n", "h"), [(5, 1), (7, 32), (3, 37)])
def test_separate_score_kernels_match_references(n, h) -> None:
    g = torch.Generator().manual_seed(n * 10 + h)
    traj = torch.randn(n, h, 5, generator=g)
    goal = torch.randn(n, 2, generator=g)
    traj[:, h // 2 :, :2] = goal[:, None] + 0.3 * torch.randn(n, h - h // 2, 2, generator=g)
    reward = goal_reward(traj, goal, goal_radius=0.45, backend="triton")
    dyn = dynamics_error(traj, step_dt=0.04, backend="triton")
    torch.testing.assert_close(reward, goal_reward_reference(traj, goal, goal_radius=0.45))
    torch.testing.assert_close(dyn, dynamics_error_reference(traj, step_dt=0.04),
                               rtol=1e-5, atol=1e-5)
    # The fused score is their combination, bit for bit on the reference.
    fused = score_candidates_reference(traj, goal, goal_radius=0.45, step_dt=0.04,
                                       dyn_weight=3.0)
    assert torch.equal(fused, goal_reward_reference(traj, goal, goal_radius=0.45)
                       - 3.0 * dynamics_error_reference(traj, step_dt=0.04))


@interp
def test_auto_backend_is_reference_on_cpu() -> None:
    assert resolve_backend("auto", "cpu") == "torch"
    assert resolve_backend("triton", "cpu") == "triton"  # the interpreter is on
    with pytest.raises(ValueError, match="'auto', 'triton' or 'torch'"):
        resolve_backend("cuda", "cpu")


@cuda
@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1",
                    reason="on a GPU run with TRITON_INTERPRET=0 to compile the kernel")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_gn_mish_on_device(dtype) -> None:
    x, w, bias, emb = (t.detach().cuda().requires_grad_() for t in _inputs(4, 64, 128, dtype))
    y = fused_gn_mish(x, w, bias, 8, 1e-5, emb, backend="auto")
    ref = gn_mish_reference(x.float(), w.float(), bias.float(), 8, 1e-5, emb.float())
    torch.testing.assert_close(y.float(), ref, rtol=2e-2, atol=2e-2)
