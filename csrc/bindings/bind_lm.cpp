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
    if (!arr.dtype().is(py::dtype::of<T>())) {
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

}  // namespace

void register_lm(py::module_& m) {
    m.def(
        "_gemm",
        [](py::handle a, py::handle b, py::handle c, bool trans_a, bool trans_b, double alpha,
           double beta) {
            if (py::isinstance<py::array>(a) &&
                py::reinterpret_borrow<py::array>(a).dtype().is(py::dtype::of<double>())) {
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
            if (arr.dtype().is(py::dtype::of<float>())) {
                auto x = py::array_t<float, py::array::c_style>::ensure(arr);
                py::gil_scoped_release release;
                return lm::sum_of_squares(x.data(), x.size(), threads);
            }
            if (arr.dtype().is(py::dtype::of<double>())) {
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
