// The extension module rnnkit._core: the only place that includes pybind11 (with the
// bind_*.cpp files it registers).
#include <pybind11/pybind11.h>

#include "common/blas.hpp"
#include "common/parallel.hpp"

namespace py = pybind11;

namespace rnnkit::bindings {
void register_rnn(py::module_& m);
}

PYBIND11_MODULE(_core, m) {
    m.doc() = "rnnkit's compiled core: fused recurrent kernels (C++, OpenMP, OpenBLAS).";
    // rnnkit runs all of its threads through OpenMP over fixed blocks (deterministic for any
    // thread count); OpenBLAS's own pool would only oversubscribe the cores.
    rnnkit::blas::use_single_threaded_blas();
    m.def("set_num_threads", &rnnkit::set_num_threads, py::arg("n"),
          "Number of threads rnnkit's kernels use (default: OpenMP's default).");
    m.def("get_num_threads", &rnnkit::get_num_threads);
    m.def("has_cuda", []() { return false; }, "Whether the CUDA backend was built.");
    rnnkit::bindings::register_rnn(m);
}
