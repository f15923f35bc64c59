"""Per-environment ranking: ctp._ranking.best vs torch.topk vs numpy.argsort.

Run: ``pytest bench/bench_ranking.py --benchmark-only``. Scores are float32 [E, K].
"""

import numpy as np
import pytest
import torch

from ctp import _ranking

SHAPES = [(1, 64), (1, 1024), (50, 64), (50, 1024)]


def _scores(e: int, k: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(e, k)).astype(np.float32)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"E{s[0]}-K{s[1]}")
def test_ctp_ranking_best(benchmark, shape: tuple[int, int]) -> None:
    scores = torch.from_numpy(_scores(*shape))
    benchmark.group = f"best E={shape[0]} K={shape[1]}"
    out = benchmark(_ranking.best, scores)
    assert np.array_equal(out, scores.argmax(dim=1).numpy())


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"E{s[0]}-K{s[1]}")
def test_torch_topk(benchmark, shape: tuple[int, int]) -> None:
    scores = torch.from_numpy(_scores(*shape))
    benchmark.group = f"best E={shape[0]} K={shape[1]}"
    out = benchmark(lambda: torch.topk(scores, 1, dim=1).indices[:, 0])
    assert torch.equal(out, scores.argmax(dim=1))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"E{s[0]}-K{s[1]}")
def test_numpy_argsort(benchmark, shape: tuple[int, int]) -> None:
    scores = _scores(*shape)
    benchmark.group = f"best E={shape[0]} K={shape[1]}"
    out = benchmark(lambda: np.argsort(-scores, axis=1, kind="stable")[:, 0])
    assert np.array_equal(out, scores.argmax(axis=1))


@pytest.mark.parametrize("k", [8])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"E{s[0]}-K{s[1]}")
def test_ctp_ranking_topk(benchmark, shape: tuple[int, int], k: int) -> None:
    scores = torch.from_numpy(_scores(*shape))
    benchmark.group = f"top{k} E={shape[0]} K={shape[1]}"
    out = benchmark(_ranking.topk, scores, k)
    assert np.array_equal(out, torch.topk(scores, k, dim=1).indices.numpy())


@pytest.mark.parametrize("k", [8])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"E{s[0]}-K{s[1]}")
def test_torch_topk_k(benchmark, shape: tuple[int, int], k: int) -> None:
    scores = torch.from_numpy(_scores(*shape))
    benchmark.group = f"top{k} E={shape[0]} K={shape[1]}"
    benchmark(torch.topk, scores, k, 1)
