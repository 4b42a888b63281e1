// The per-element loops of the language-model helpers that pay for wide vectors (the
// exponentials of softmax cross-entropy), compiled once per instruction set like the
// recurrent kernels (CMakeLists.txt: RNNKIT_KERNEL_SOURCES; common/isa.hpp); dense.cpp calls
// the variant bptt::active_isa() names.
#pragma once

#include <cstdint>

namespace rnnkit::lm {

#define RNNKIT_LM_VECTOR_KERNELS(ns)                                                         \
    namespace ns {                                                                           \
    /* max of x[0 .. len), len >= 1 */                                                       \
    template <typename T>                                                                    \
    T row_max(const T* x, std::int64_t len);                                                 \
    /* g = exp(x - top) over [0, len); returns the sum of g in double (four accumulators) */ \
    template <typename T>                                                                    \
    double exps_and_sum(const T* x, std::int64_t len, T top, T* g);                          \
    /* g *= factor over [0, len) */                                                          \
    template <typename T>                                                                    \
    void scale(T* g, std::int64_t len, T factor);                                            \
    }
RNNKIT_LM_VECTOR_KERNELS(baseline)
RNNKIT_LM_VECTOR_KERNELS(avx2)
RNNKIT_LM_VECTOR_KERNELS(avx512)
#undef RNNKIT_LM_VECTOR_KERNELS

}  // namespace rnnkit::lm
