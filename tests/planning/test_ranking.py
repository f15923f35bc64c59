"""ctp._ranking against NumPy's stable argsort on -score with NaN last."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ctp import _ranking


def reference_order(scores: np.ndarray) -> np.ndarray:
    """Best-first order per row: stable argsort of -score, NaN after every number."""
    # Sort on (isnan, -score) lexicographically: -inf still ranks above NaN.
    nan_last = np.isnan(scores)
    negated = np.where(nan_last, 0.0, -scores.astype(np.float64))
    return np.lexsort((negated, nan_last), axis=-1)


# Values drawn from a small pool so ties, infinities and NaN are common.
POOL = [0.0, 1.0, -1.0, 2.5, -0.5, np.inf, -np.inf, np.nan, 1e30, -1e-30]
score_arrays = st.tuples(st.integers(1, 6), st.integers(1, 40)).flatmap(
    lambda shape: hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64]),
        shape=shape,
        elements=st.one_of(st.sampled_from(POOL), st.floats(-10, 10, width=32)),
    )
)


@given(scores=score_arrays, data=st.data())
def test_topk_matches_numpy(scores: np.ndarray, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, scores.shape[1]))
    got = _ranking.topk(scores, k)
    assert got.dtype == np.int64 and got.shape == (scores.shape[0], k)
    np.testing.assert_array_equal(got, reference_order(scores)[:, :k])


@given(scores=score_arrays)
def test_best_is_first_of_topk(scores: np.ndarray) -> None:
    got = _ranking.best(scores)
    assert got.dtype == np.int64 and got.shape == (scores.shape[0],)
    np.testing.assert_array_equal(got, reference_order(scores)[:, 0])


def test_reference_agrees_with_hand_ranking() -> None:
    scores = np.array([[1.0, np.nan, 3.0, 3.0, -np.inf, np.inf]], dtype=np.float32)
    np.testing.assert_array_equal(reference_order(scores), [[5, 2, 3, 0, 4, 1]])
    np.testing.assert_array_equal(_ranking.topk(scores, 6), [[5, 2, 3, 0, 4, 1]])


def test_all_nan_row_keeps_index_order() -> None:
    scores = np.full((2, 5), np.nan, dtype=np.float32)
    np.testing.assert_array_equal(_ranking.topk(scores, 3), [[0, 1, 2], [0, 1, 2]])


def test_large_k_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(-50, 50, size=(3, 5000)).astype(np.float32)
    scores[0, ::7] = np.nan
    np.testing.assert_array_equal(_ranking.topk(scores, 4000), reference_order(scores)[:, :4000])


def test_non_contiguous_inputs() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(8, 30)).astype(np.float32)
    for view in (base.T, base[::2, ::3], base[:, ::-1]):
        assert not view.flags.c_contiguous
        np.testing.assert_array_equal(_ranking.topk(view, 3), reference_order(view)[:, :3])


def test_torch_cpu_tensor_and_float64() -> None:
    t = torch.tensor([[0.5, 2.0, -1.0], [3.0, 3.0, 1.0]])
    np.testing.assert_array_equal(_ranking.topk(t, 2), [[1, 0], [0, 1]])
    np.testing.assert_array_equal(_ranking.best(t.double()), [1, 0])
    np.testing.assert_array_equal(_ranking.best(t.T), [1, 1, 1])  # non-contiguous tensor


@pytest.mark.parametrize("k", [0, 4, -1])
def test_k_out_of_range(k: int) -> None:
    with pytest.raises(ValueError, match=r"1 <= k <= K = 3"):
        _ranking.topk(np.zeros((2, 3), np.float32), k)


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4), ()])
def test_wrong_rank(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"2-D array \[E, K\]"):
        _ranking.best(np.zeros(shape, np.float32))


def test_empty_rows() -> None:
    with pytest.raises(ValueError, match=r"E >= 1 and K >= 1"):
        _ranking.best(np.zeros((2, 0), np.float32))


@pytest.mark.parametrize("dtype", [np.int64, np.float16, np.bool_])
def test_wrong_dtype(dtype: type) -> None:
    with pytest.raises(TypeError, match="float32 or float64"):
        _ranking.topk(np.zeros((2, 3), dtype), 1)


def test_non_array_input() -> None:
    with pytest.raises(TypeError):
        _ranking.best(object())
