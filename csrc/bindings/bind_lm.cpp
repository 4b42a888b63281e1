// Python bindings of the language-model helpers (csrc/lm): arrays checked here, kernels run
// with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <string>

#include "bindings/arrays.hpp"
#include "common/parallel.hpp"
#include "lm/dense.hpp"

namespace rnnkit::bindings {

namespace {

// obj as a numpy array of exactly dtype T (no copy, no cast), else a TypeError naming it.
template <typename T>
py::array exact_array(py::handle obj, const char* name) {
    if (!py::isinstance<py::array>(obj)) {
        throw py::type_error(std::string(name) + " must be a numpy.ndarray, got " + type_name(obj));
    }
    auto arr = py::reinterpret_borrow<py::array>(obj);
    if (!arr.dtype().equal(py::dtype::of<T>())) {
        throw py::type_error(std::string(name) + " must have dtype " +
                             dtype_string(py::dtype::of<T>()) + ", got " +
                             dtype_string(arr.dtype()));
    }
    return arr;
}

// A C-contiguous 2-D array of exactly dtype T (no copy, no cast).
template <typename T>
py::array_t<T, py::array::c_style> matrix(py::handle obj, const char* name, bool writable) {
    const py::array arr = exact_array<T>(obj, name);
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

// For an optimizer step: a C-contiguous array of exactly dtype T and `size` values (any
// shape), distinct in memory from the step's other arrays.
template <typename T>
py::array_t<T, py::array::c_style> step_array(py::handle obj, const char* name, std::int64_t size,
                                              bool writable) {
    const py::array arr = exact_array<T>(obj, name);
    if (!(arr.flags() & py::array::c_style) || arr.size() != size) {
        throw py::value_error(std::string(name) + " must be a C-contiguous array of " +
                              std::to_string(size) + " values (the parameter's), got shape " +
                              shape_string(shape_of(arr)));
    }
    if (writable && !arr.writeable()) throw py::value_error(std::string(name) + " is read-only");
    return py::reinterpret_borrow<py::array_t<T, py::array::c_style>>(arr);
}

void require_disjoint(std::initializer_list<const py::array*> arrays) {
    for (auto a = arrays.begin(); a != arrays.end(); ++a) {
        for (auto b = a + 1; b != arrays.end(); ++b) {
            if (ranges_overlap(**a, **b)) {
                throw py::value_error("an optimizer step's arrays must not share memory");
            }
        }
    }
}

// Calls fn(T{}) for p's dtype (float32 or float64).
template <typename Fn>
auto by_parameter_dtype(py::handle p, Fn&& fn) {
    if (py::isinstance<py::array>(p)) {
        const auto dtype = py::reinterpret_borrow<py::array>(p).dtype();
        if (dtype.equal(py::dtype::of<float>())) return fn(float{});
        if (dtype.equal(py::dtype::of<double>())) return fn(double{});
        throw py::type_error("p must have dtype float32 or float64, got " + dtype_string(dtype));
    }
    throw py::type_error("p must be a numpy.ndarray, got " + type_name(p));
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
    // grad is updated in place while dy and ids are read: a dy sharing grad's memory would be
    // read after earlier updates changed it (sums that depend on the order of the updates, and
    // so on the thread count), and ids sharing it would change after the range check below
    // (their rows dropped, or added to other rows).
    if (ranges_overlap(grad, dy) || ranges_overlap(grad, ids)) {
        throw py::value_error("dy and ids must not share memory with grad (updated in place)");
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
    m.def(
        "_sgd_step",
        [](py::handle p_obj, py::handle g_obj, py::handle buf_obj, double lr, double momentum,
           double weight_decay, bool nesterov, bool first) {
            by_parameter_dtype(p_obj, [&](auto tag) {
                using T = decltype(tag);
                auto p = step_array<T>(p_obj, "p", py::reinterpret_borrow<py::array>(p_obj).size(),
                                       true);
                const auto g = step_array<T>(g_obj, "g", p.size(), false);
                std::optional<py::array_t<T, py::array::c_style>> buf;
                if (momentum != 0.0) buf = step_array<T>(buf_obj, "buf", p.size(), true);
                require_disjoint({&p, &g});
                if (buf) require_disjoint({&p, &g, &*buf});
                T* bp = buf ? buf->mutable_data() : nullptr;
                const int threads = get_num_threads();
                py::gil_scoped_release release;
                lm::sgd_step<T>(p.mutable_data(), g.data(), bp, p.size(), static_cast<T>(lr),
                                static_cast<T>(momentum), static_cast<T>(weight_decay), nesterov,
                                first, threads);
            });
        },
        py::arg("p"), py::arg("g"), py::arg("buf"), py::arg("lr"), py::arg("momentum"),
        py::arg("weight_decay"), py::arg("nesterov"), py::arg("first"),
        "One SGD step in place (torch's rule; see rnnkit.lm.SGD).");
    m.def(
        "_adam_step",
        [](py::handle p_obj, py::handle g_obj, py::handle m_obj, py::handle v_obj, double b1,
           double b2, double step_size, double c2, double eps, double weight_decay) {
            by_parameter_dtype(p_obj, [&](auto tag) {
                using T = decltype(tag);
                auto p = step_array<T>(p_obj, "p", py::reinterpret_borrow<py::array>(p_obj).size(),
                                       true);
                const auto g = step_array<T>(g_obj, "g", p.size(), false);
                auto m = step_array<T>(m_obj, "m", p.size(), true);
                auto v = step_array<T>(v_obj, "v", p.size(), true);
                require_disjoint({&p, &g, &m, &v});
                const int threads = get_num_threads();
                py::gil_scoped_release release;
                lm::adam_step<T>(p.mutable_data(), g.data(), m.mutable_data(), v.mutable_data(),
                                 p.size(), static_cast<T>(b1), static_cast<T>(b2),
                                 static_cast<T>(step_size), static_cast<T>(c2), static_cast<T>(eps),
                                 static_cast<T>(weight_decay), threads);
            });
        },
        py::arg("p"), py::arg("g"), py::arg("m"), py::arg("v"), py::arg("b1"), py::arg("b2"),
        py::arg("step_size"), py::arg("c2"), py::arg("eps"), py::arg("weight_decay"),
        "One Adam step in place (torch's rule; see rnnkit.lm.Adam).");
}

}  // namespace rnnkit::bindings
