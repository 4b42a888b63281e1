// The extension module rnnkit._core: the only place that includes pybind11 (with the
// bind_*.cpp files it registers).
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/arrays.hpp"
#include "bptt/isa_dispatch.hpp"
#include "common/blas.hpp"
#include "common/parallel.hpp"
#include "common/pool.hpp"
#include "cuda/backend.hpp"

namespace py = pybind11;

namespace rnnkit::bindings {
void register_rnn(py::module_& m);
void register_ngram(py::module_& m);
void register_lm(py::module_& m);
void register_cuda(py::module_& m);
}  // namespace rnnkit::bindings

PYBIND11_MODULE(_core, m) {
    m.doc() = "rnnkit's compiled core: fused recurrent kernels (C++, OpenMP, OpenBLAS).";
    // rnnkit runs all of its threads through OpenMP over fixed blocks (deterministic for any
    // thread count); OpenBLAS's own pool would only oversubscribe the cores.
    rnnkit::blas::use_single_threaded_blas();
    rnnkit::install_fork_handler();
    m.def(
        "set_num_threads",
        [](py::handle n) {
            // Any integer (int, NumPy's integers: whatever has __index__) but a bool, checked
            // here rather than by pybind11's overload resolution, whose message dumps the
            // whole signature.
            if (rnnkit::bindings::is_bool(n) || !PyIndex_Check(n.ptr())) {
                throw py::type_error("n must be an int, got " + rnnkit::bindings::type_name(n));
            }
            const auto index = py::reinterpret_steal<py::object>(PyNumber_Index(n.ptr()));
            if (!index) throw py::error_already_set();
            // Integers beyond 64 bits do not convert; they are out of range all the same.
            const long long value = PyLong_AsLongLong(index.ptr());
            const bool fits = value != -1 || !PyErr_Occurred();
            if (!fits) PyErr_Clear();
            if (!fits || value < 1 || value > rnnkit::kMaxThreads) {
                throw py::value_error("n must be an integer in [1, " +
                                      std::to_string(rnnkit::kMaxThreads) + "], got " +
                                      py::repr(index).cast<std::string>());
            }
            rnnkit::set_num_threads(static_cast<int>(value));
        },
        py::arg("n"),
        "Number of threads rnnkit's kernels use, 1 to 1024 (default: OpenMP's default).");
    m.def("get_num_threads", &rnnkit::get_num_threads);
    m.def("_set_thread_limit", &rnnkit::set_thread_limit, py::arg("n"),
          "Caps the threads of kernels called from this host thread (0: no cap). Internal: "
          "rnnkit.nn runs the two directions of a layer side by side with it.");
    m.def(
        "_failing_region",
        [](int threads, int failing_thread) {
            if (threads < 1 || threads > rnnkit::kMaxThreads) {
                throw py::value_error("threads must be in [1, " +
                                      std::to_string(rnnkit::kMaxThreads) + "], got " +
                                      std::to_string(threads));
            }
            py::gil_scoped_release release;
            rnnkit::parallel_region(threads, [&](int tid, int) {
                for (int round = 0; round < 3; ++round) {
                    if (tid == failing_thread && round == 1) {
                        throw std::runtime_error("thread " + std::to_string(tid) + " failed");
                    }
                    rnnkit::barrier();
                    rnnkit::barrier_wait(rnnkit::barrier_arrive());
                }
            });
        },
        py::arg("threads"), py::arg("failing_thread"),
        "Internal, for tests: a parallel region of `threads` threads, each passing barriers "
        "(whole and in halves), where thread `failing_thread` throws RuntimeError after the "
        "first round; the others must stop waiting for it and the error must come out.");
    m.def(
        "release_memory", []() { rnnkit::pool::clear(); },
        "Frees the memory rnnkit keeps for reuse (large blocks of freed arrays, at most 1 GiB).");
    m.def(
        "pooled_bytes", []() { return rnnkit::pool::idle_bytes(); },
        "Bytes rnnkit keeps for reuse: large blocks of freed arrays (see release_memory).");
    m.def(
        "_pooled_empty",
        [](std::int64_t d0, std::int64_t d1, std::int64_t d2, bool double_precision) -> py::array {
            if (d0 < 0 || d1 < 0 || d2 < 0) throw py::value_error("dimensions must be >= 0");
            if (double_precision) return rnnkit::bindings::new_array<double>({d0, d1, d2});
            return rnnkit::bindings::new_array<float>({d0, d1, d2});
        },
        py::arg("d0"), py::arg("d1"), py::arg("d2"), py::arg("double_precision"),
        "An uninitialised C-ordered [d0, d1, d2] array whose memory comes from the pool. "
        "Internal: rnnkit.nn builds merged outputs in it, so that they reuse freed blocks.");
#ifdef RNNKIT_SANITIZE_BUILD
    m.def(
        "_sanitizer_self_test",
        []() {
            // Reads one element past a heap array: AddressSanitizer must stop here
            // (scripts/sanitize.sh checks that it does). Only in sanitizer builds.
            std::vector<int> values(4, 1);
            volatile const int* data = values.data();
            volatile int sink = data[values.size()];
            (void)sink;
        },
        "Internal: a deliberate one-element heap over-read, to check a sanitizer build.");
#endif
    m.def(
        "has_cuda", []() { return rnnkit::cuda::device_backend() != nullptr; },
        "Whether the CUDA backend was built (RNNKIT_CUDA=ON); see rnnkit.cuda_available().");
    m.def(
        "cpu_isa", []() { return std::string(rnnkit::bptt::isa_name(rnnkit::bptt::active_isa())); },
        "The instruction set the CPU kernels run with: 'avx512', 'avx2' or 'baseline' (the best "
        "this CPU has, capped by the environment variable RNNKIT_ISA).");
    rnnkit::bindings::register_rnn(m);
    rnnkit::bindings::register_ngram(m);
    rnnkit::bindings::register_lm(m);
    rnnkit::bindings::register_cuda(m);
}
