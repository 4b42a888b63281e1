// Python bindings of the language-model helpers (csrc/lm): arrays checked here, kernels run
// with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>

#include "bindings/arrays.hpp"
#include "common/parallel.hpp"
#include "lm/dense.hpp"

namespace rnnkit::bindings {

namespace {

// A C-contiguous 2-D array of exactly dtype T (no copy, no cast).
template <typename T>
py::array_t<T, py::array::c_style> matrix(py::handle obj, const char* name, bool writable) {
    if (!py::isinstance<py::array>(obj)) {
        throw py::type_error(std::string(name) + " must be a numpy.ndarray, got " + type_name(obj));
    }
    auto arr = py::reinterpret_borrow<py::array>(obj);
    if (!arr.dtype().equal(py::dtype::of<T>())) {
        throw py::type_error(std::string(name) + " must have dtype " +
                             dtype_string(py::dtype::of<T>()) + ", got " +
                             dtype_string(arr.dtype()));
    }
    if (arr.ndim() != 2 || !(arr.flags() & py::array::c_style)) {
        throw py::value_error(std::string(name) + " must be a C-contiguous 2-D array, got shape " +
                              shape_string(shape_of(arr)));
    }
    if (writable && !arr.writeable()) throw py::value_error(std::string(name) + " is read-only");
    return py::reinterpret_borrow<py::array_t<T, py::array::c_style>>(arr);
}

bool ranges_overlap(const py::array& x, const py::array& y) {
    const auto* x0 = static_cast<const char*>(x.data());
    const auto* y0 = static_cast<const char*>(y.data());
    return x0 < y0 + y.nbytes() && y0 < x0 + x.nbytes();
}

template <typename T>
void gemm_typed(py::handle a_obj, py::handle b_obj, py::handle c_obj, bool trans_a, bool trans_b,
                double alpha, double beta) {
    const auto a = matrix<T>(a_obj, "a", false);
    const auto b = matrix<T>(b_obj, "b", false);
    auto c = matrix<T>(c_obj, "c", true);
    const std::int64_t M = trans_a ? a.shape(1) : a.shape(0), K = trans_a ? a.shape(0) : a.shape(1);
    const std::int64_t N = trans_b ? b.shape(0) : b.shape(1),
                       Kb = trans_b ? b.shape(1) : b.shape(0);
    if (K != Kb || c.shape(0) != M || c.shape(1) != N) {
        throw py::value_error("shapes do not match: op(a) is " + std::to_string(M) + "x" +
                              std::to_string(K) + ", op(b) " + std::to_string(Kb) + "x" +
                              std::to_string(N) + ", c " + shape_string(shape_of(c)));
    }
    if (ranges_overlap(c, a) || ranges_overlap(c, b)) {
        throw py::value_error("c must not share memory with a or b");
    }
    const int threads = get_num_threads();
    T* out = c.mutable_data();
    py::gil_scoped_release release;
    lm::parallel_gemm<T>(trans_a, trans_b, M, N, K, static_cast<T>(alpha), a.data(), a.shape(1),
                         b.data(), b.shape(1), static_cast<T>(beta), out, N, threads);
}

template <typename T>
py::tuple cross_entropy_typed(py::handle logits_obj, py::handle targets_obj,
                              std::int64_t ignore_index, double scale) {
    const auto logits = matrix<T>(logits_obj, "logits", false);
    if (!py::isinstance<py::array>(targets_obj) || !py::reinterpret_borrow<py::array>(targets_obj)
                                                        .dtype()
                                                        .equal(py::dtype::of<std::int64_t>())) {
        throw py::type_error("targets must be a numpy.ndarray of int64");
    }
    const auto targets = py::array_t<std::int64_t, py::array::c_style>::ensure(targets_obj);
    const std::int64_t N = logits.shape(0), V = logits.shape(1);
    if (targets.ndim() != 1 || targets.shape(0) != N) {
        throw py::value_error("targets must have shape [" + std::to_string(N) + "]");
    }
    auto grad = new_array<T>({N, V});  // from the pool: no fresh pages at every step
    T* g = grad.mutable_data();
    const int threads = get_num_threads();
    double total = 0;
    {
        py::gil_scoped_release release;
        total = lm::softmax_cross_entropy<T>(logits.data(), targets.data(), N, V, ignore_index,
                                             static_cast<T>(scale), g, threads);
    }
    return py::make_tuple(total, grad);
}

template <typename T>
void embedding_backward_typed(py::handle ids_obj, py::handle dy_obj, py::handle grad_obj) {
    const auto dy = matrix<T>(dy_obj, "dy", false);
    auto grad = matrix<T>(grad_obj, "grad", true);
    const auto ids = py::array_t<std::int64_t, py::array::c_style>::ensure(ids_obj);
    if (!ids || ids.ndim() != 1 || ids.shape(0) != dy.shape(0) || dy.shape(1) != grad.shape(1)) {
        throw py::value_error("ids [N], dy [N, E] and grad [V, E] do not match");
    }
    const std::int64_t N = dy.shape(0), E = dy.shape(1), V = grad.shape(0);
    for (std::int64_t n = 0; n < N; ++n) {
        if (ids.data()[n] < 0 || ids.data()[n] >= V) {
            throw py::value_error("ids must be in [0, " + std::to_string(V) + ")");
        }
    }
    T* out = grad.mutable_data();
    const int threads = get_num_threads();
    py::gil_scoped_release release;
    lm::embedding_backward<T>(ids.data(), dy.data(), N, E, V, out, threads);
}

}  // namespace

void register_lm(py::module_& m) {
    m.def(
        "_softmax_cross_entropy",
        [](py::handle logits, py::handle targets, std::int64_t ignore_index, double scale) {
            if (py::isinstance<py::array>(logits) &&
                py::reinterpret_borrow<py::array>(logits).dtype().equal(py::dtype::of<double>())) {
                return cross_entropy_typed<double>(logits, targets, ignore_index, scale);
            }
            return cross_entropy_typed<float>(logits, targets, ignore_index, scale);
        },
        py::arg("logits"), py::arg("targets"), py::arg("ignore_index"), py::arg("scale"),
        "(sum of -log softmax(logits)[target] over the rows not ignored, scale * (softmax - "
        "onehot)) for logits [N, V] and int64 targets [N].");
    m.def(
        "_embedding_backward",
        [](py::handle ids, py::handle dy, py::handle grad) {
            if (py::isinstance<py::array>(dy) &&
                py::reinterpret_borrow<py::array>(dy).dtype().equal(py::dtype::of<double>())) {
                embedding_backward_typed<double>(ids, dy, grad);
            } else {
                embedding_backward_typed<float>(ids, dy, grad);
            }
        },
        py::arg("ids"), py::arg("dy"), py::arg("grad"), "grad[ids[n]] += dy[n], in place.");
    m.def(
        "_gemm",
        [](py::handle a, py::handle b, py::handle c, bool trans_a, bool trans_b, double alpha,
           double beta) {
            if (py::isinstance<py::array>(a) &&
                py::reinterpret_borrow<py::array>(a).dtype().equal(py::dtype::of<double>())) {
                gemm_typed<double>(a, b, c, trans_a, trans_b, alpha, beta);
            } else {
                gemm_typed<float>(a, b, c, trans_a, trans_b, alpha, beta);
            }
        },
        py::arg("a"), py::arg("b"), py::arg("c"), py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("alpha") = 1.0, py::arg("beta") = 0.0,
        "c = alpha * op(a) @ op(b) + beta * c in place, on rnnkit's threads (float32/float64, "
        "C-contiguous 2-D).");
    m.def(
        "_sum_of_squares",
        [](py::handle x_obj) -> double {
            if (!py::isinstance<py::array>(x_obj)) {
                throw py::type_error("x must be a numpy.ndarray, got " + type_name(x_obj));
            }
            auto arr = py::reinterpret_borrow<py::array>(x_obj);
            const int threads = get_num_threads();
            if (arr.dtype().equal(py::dtype::of<float>())) {
                auto x = py::array_t<float, py::array::c_style>::ensure(arr);
                py::gil_scoped_release release;
                return lm::sum_of_squares(x.data(), x.size(), threads);
            }
            if (arr.dtype().equal(py::dtype::of<double>())) {
                auto x = py::array_t<double, py::array::c_style>::ensure(arr);
                py::gil_scoped_release release;
                return lm::sum_of_squares(x.data(), x.size(), threads);
            }
            throw py::type_error("x must have dtype float32 or float64, got " +
                                 dtype_string(arr.dtype()));
        },
        py::arg("x"), "Sum of squares in double precision.");
}

}  // namespace rnnkit::bindings
