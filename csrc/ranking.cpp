// ctp._ranking: per-environment ranking of candidate trajectories on the CPU.
//
// Scores are a 2-D array [E, K] (E environments, K candidates each). Order: highest score
// first, ties broken towards the lower candidate index, NaN below every number (including
// -inf). The work runs with the GIL released.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
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

// Ranking key of a score: unsigned integers that sort like the scores, NaN lowest of all and
// -0.0 equal to +0.0, so that the best candidate has the largest key. Branch-free, so the
// per-row key pass vectorises.
template <typename T>
using KeyOf = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;

template <typename T>
KeyOf<T> order_key(T x) {
  using K = KeyOf<T>;
  constexpr K sign = K{1} << (sizeof(K) * 8 - 1);
  const T inf = std::numeric_limits<T>::infinity();
  K u, inf_bits;
  std::memcpy(&u, &x, sizeof u);
  std::memcpy(&inf_bits, &inf, sizeof inf_bits);
  const K mag = u & ~sign;
  const K flip = (K{0} - (u >> (sizeof(K) * 8 - 1))) | sign;  // negatives: all bits
  const K key = mag == 0 ? sign : (u ^ flip);
  return mag > inf_bits ? K{0} : key;  // NaN below everything
}

// A candidate in the ranking; smaller sorts first: higher key, then lower index.
template <typename K>
struct Rank {
  K key;
  int64_t index;
  bool operator<(const Rank& o) const { return key != o.key ? key > o.key : index < o.index; }
};

// Up to this many, the k best are kept in a sorted buffer during one pass over the row (most
// candidates cost one comparison with the current k-th best); above it, nth_element + sort.
constexpr py::ssize_t kSmallK = 64;

template <typename T>
void rank_rows(const ScoreView<T>& v, py::ssize_t k, int64_t* out) {
  using K = KeyOf<T>;
  std::vector<K> keys(static_cast<size_t>(v.cols));
  std::vector<Rank<K>> ranks(static_cast<size_t>(k <= kSmallK ? k : v.cols));
  for (py::ssize_t r = 0; r < v.rows; ++r) {
    if (v.col_stride == 1) {  // contiguous row: a loop the compiler vectorises
      const T* row = v.data + r * v.row_stride;
      for (py::ssize_t c = 0; c < v.cols; ++c) keys[c] = order_key(row[c]);
    } else {
      for (py::ssize_t c = 0; c < v.cols; ++c) keys[c] = order_key(v.at(r, c));
    }
    int64_t* row_out = out + r * k;
    if (k == 1) {
      row_out[0] = std::max_element(keys.begin(), keys.end()) - keys.begin();  // first maximum
    } else if (k <= kSmallK) {
      // Candidates arrive in index order, so a newcomer beats a kept one only on a larger key.
      for (py::ssize_t c = 0; c < k; ++c) ranks[c] = Rank<K>{keys[c], c};
      std::sort(ranks.begin(), ranks.end());
      for (py::ssize_t c = k; c < v.cols; ++c) {
        const K key = keys[c];
        if (key <= ranks[k - 1].key) continue;
        py::ssize_t j = k - 1;
        for (; j > 0 && key > ranks[j - 1].key; --j) ranks[j] = ranks[j - 1];
        ranks[j] = Rank<K>{key, c};
      }
    } else {
      for (py::ssize_t c = 0; c < v.cols; ++c) ranks[c] = Rank<K>{keys[c], c};
      if (k < v.cols) std::nth_element(ranks.begin(), ranks.begin() + (k - 1), ranks.end());
      std::sort(ranks.begin(), ranks.begin() + k);
    }
    if (k > 1) {
      for (py::ssize_t j = 0; j < k; ++j) row_out[j] = ranks[j].index;
    }
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
  if (!arr || arr.dtype().kind() == 'O') {
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
