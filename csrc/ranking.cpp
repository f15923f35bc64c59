// ctp._ranking: per-environment ranking of candidate trajectories on the CPU.
//
// Scores are a 2-D array [E, K] (E environments, K candidates each). Order: highest score
// first, ties broken towards the lower candidate index, NaN below every number (including
// -inf). The work runs with the GIL released.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

namespace py = pybind11;

namespace {

// Strided read-only view of one [E, K] score matrix (strides in elements).
template <typename T>
struct ScoreView {
  const T* data;
  py::ssize_t rows, cols, row_stride, col_stride;
  T at(py::ssize_t r, py::ssize_t c) const { return data[r * row_stride + c * col_stride]; }
};

// True when candidate a ranks strictly before candidate b.
template <typename T>
inline bool ranks_before(T sa, T sb, int64_t a, int64_t b) {
  const bool na = std::isnan(sa), nb = std::isnan(sb);
  if (na || nb) return na == nb ? a < b : nb;
  if (sa != sb) return sa > sb;
  return a < b;
}

template <typename T>
void rank_rows(const ScoreView<T>& v, py::ssize_t k, int64_t* out) {
  std::vector<int64_t> idx(static_cast<size_t>(v.cols));
  for (py::ssize_t r = 0; r < v.rows; ++r) {
    std::iota(idx.begin(), idx.end(), int64_t{0});
    auto before = [&](int64_t a, int64_t b) { return ranks_before(v.at(r, a), v.at(r, b), a, b); };
    if (k == 1) {
      idx[0] = *std::min_element(idx.begin(), idx.end(), before);
    } else {
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), before);
    }
    std::copy(idx.begin(), idx.begin() + k, out + r * k);
  }
}

template <typename T>
py::array_t<int64_t> rank_array(const py::array& arr, py::ssize_t k) {
  const auto itemsize = static_cast<py::ssize_t>(sizeof(T));
  for (int d = 0; d < 2; ++d) {
    if (arr.strides(d) % itemsize != 0) throw py::value_error("scores: unaligned strides");
  }
  ScoreView<T> v{static_cast<const T*>(arr.data()), arr.shape(0), arr.shape(1),
                 arr.strides(0) / itemsize, arr.strides(1) / itemsize};
  py::array_t<int64_t> result({v.rows, k});
  int64_t* out = result.mutable_data();
  {
    py::gil_scoped_release release;
    rank_rows(v, k, out);
  }
  return result;
}

py::array as_score_array(const py::object& scores) {
  py::array arr = py::array::ensure(scores);
  if (!arr) {
    throw py::type_error("scores: expected a 2-D float32 or float64 array [E, K], got " +
                         std::string(py::str(py::type::of(scores))));
  }
  if (arr.ndim() != 2) {
    throw py::value_error("scores: expected a 2-D array [E, K], got " +
                          std::to_string(arr.ndim()) + " dimension(s)");
  }
  if (arr.shape(0) < 1 || arr.shape(1) < 1) {
    throw py::value_error("scores: expected a 2-D array [E, K] with E >= 1 and K >= 1, got [" +
                          std::to_string(arr.shape(0)) + ", " + std::to_string(arr.shape(1)) +
                          "]");
  }
  return arr;
}

py::array_t<int64_t> topk(const py::object& scores, py::ssize_t k) {
  py::array arr = as_score_array(scores);
  const py::ssize_t K = arr.shape(1);
  if (k < 1 || k > K) {
    throw py::value_error("k: expected 1 <= k <= K = " + std::to_string(K) + ", got " +
                          std::to_string(k));
  }
  if (arr.dtype().kind() == 'f' && arr.itemsize() == 4) return rank_array<float>(arr, k);
  if (arr.dtype().kind() == 'f' && arr.itemsize() == 8) return rank_array<double>(arr, k);
  throw py::type_error("scores: expected dtype float32 or float64 for the [E, K] array, got " +
                       std::string(py::str(arr.dtype())));
}

py::array_t<int64_t> best(const py::object& scores) {
  py::array_t<int64_t> top = topk(scores, 1);
  return top.reshape({top.shape(0)});
}

}  // namespace

PYBIND11_MODULE(_ranking, m) {
  m.doc() = "Per-environment ranking of candidate trajectory scores (C++17, GIL released).";
  m.def("topk", &topk, py::arg("scores"), py::arg("k"),
        R"doc(Indices of the k best candidates per row.

scores: [E, K] float32 or float64 (NumPy array, CPU torch tensor, any strides).
Returns int64 [E, k], best first; ties go to the lower index; NaN ranks below every number.
Raises ValueError unless 1 <= k <= K or when scores is not 2-D; TypeError for other dtypes.)doc");
  m.def("best", &best, py::arg("scores"),
        R"doc(Index of the best candidate per row: int64 [E], same rules as topk(scores, 1)[:, 0].)doc");
}
