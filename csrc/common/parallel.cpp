#include "common/parallel.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "common/blas.hpp"

extern "C" {
void scipy_openblas_set_num_threads(int num_threads);
}

namespace rnnkit {

namespace {
int g_num_threads = 0;  // 0: not set yet, use the OpenMP default
}

int get_num_threads() {
    if (g_num_threads > 0) return g_num_threads;
#ifdef _OPENMP
    return std::max(1, omp_get_max_threads());
#else
    return 1;
#endif
}

void set_num_threads(int n) {
    if (n < 1) {
        throw std::invalid_argument("num_threads must be a positive integer, got " +
                                    std::to_string(n));
    }
    g_num_threads = n;
}

int threads_for(double work) {
    // Below ~20k flops a fork/join costs more than it saves.
    if (work < 2.0e4) return 1;
    return get_num_threads();
}

}  // namespace rnnkit

namespace rnnkit::blas {
void use_single_threaded_blas() {
    scipy_openblas_set_num_threads(1);
}
}  // namespace rnnkit::blas
