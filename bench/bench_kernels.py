"""Kernels vs their PyTorch references (and torch.compile of the reference on CUDA).

Run: ``pytest bench/bench_kernels.py --benchmark-only``. Without CUDA only the reference
path is timed (the Triton cases skip: the CPU interpreter says nothing about GPU speed).
Shapes are the U-Net's at planning batch sizes: [B, C, L] = [64, 64, 16], [64, 128, 8] and
the scorer over 64 x 32-state candidates.
"""

import pytest
import torch

from ctp.kernels import fused_gn_mish, gn_mish_reference, score_candidates

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
BACKENDS = ["torch", "triton", "compiled"] if CUDA else ["torch"]
GN_SHAPES = [(64, 64, 16), (64, 128, 8), (1, 32, 32)]


def _sync():
    if CUDA:
        torch.cuda.synchronize()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", GN_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gn_mish(benchmark, shape, backend) -> None:
    b, c, length = shape
    x = torch.randn(b, c, length, device=DEVICE)
    w, bias = torch.ones(c, device=DEVICE), torch.zeros(c, device=DEVICE)
    emb = torch.randn(b, c, device=DEVICE)
    if backend == "compiled":
        fn = torch.compile(gn_mish_reference)
        call = lambda: fn(x, w, bias, 8, 1e-5, emb)  # noqa: E731
    else:
        call = lambda: fused_gn_mish(x, w, bias, 8, 1e-5, emb, backend=backend)  # noqa: E731
    benchmark.group = f"gn_mish {shape} on {DEVICE}"

    def run():
        out = call()
        _sync()
        return out

    out = benchmark(run)
    torch.testing.assert_close(out, gn_mish_reference(x, w, bias, 8, 1e-5, emb),
                               rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "compiled"])
def test_score_candidates(benchmark, backend) -> None:
    traj = torch.randn(64, 32, 4, device=DEVICE)
    goal = torch.randn(64, 2, device=DEVICE)
    benchmark.group = f"score_candidates 64x32 on {DEVICE}"

    def run():
        out = score_candidates(traj, goal, goal_radius=0.45, step_dt=0.04, dyn_weight=10.0,
                               backend=backend)
        _sync()
        return out

    assert benchmark(run).shape == (64,)


def test_triton_cases_need_cuda() -> None:
    """Says in the report why the Triton columns are missing on a CPU-only machine."""
    if not CUDA:
        pytest.skip("no CUDA device: Triton kernels are benchmarked on GPUs only")
