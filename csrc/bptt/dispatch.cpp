// The public sequence kernels: each forwards to the variant compiled for the best instruction
// set this CPU has (AVX-512, AVX2+FMA, or the x86-64 baseline), chosen once. The environment
// variable RNNKIT_ISA (baseline, avx2, avx512) caps the choice, for testing and comparison.
#include <cstdlib>
#include <cstring>
#include <string>

#include "bptt/isa_dispatch.hpp"
#include "bptt/sequence.hpp"

#undef RNNKIT_ISA_NS
#define RNNKIT_ISA_NS baseline
#include "bptt/kernels.hpp"
#undef RNNKIT_ISA_NS
#define RNNKIT_ISA_NS avx2
#include "bptt/kernels.hpp"
#undef RNNKIT_ISA_NS
#define RNNKIT_ISA_NS avx512
#include "bptt/kernels.hpp"

namespace rnnkit::bptt {

namespace {

Isa detect_isa() {
    Isa best = Isa::Baseline;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::Avx2;
    // The AVX-512 variant is compiled with -mavx512f -mavx512dq -mavx512vl -mavx512bw
    // (CMakeLists.txt): a CPU with AVX-512F alone (Xeon Phi) would fault on the others.
    if (best == Isa::Avx2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw")) {
        best = Isa::Avx512;
    }
#endif
    if (const char* cap = std::getenv("RNNKIT_ISA")) {
        const Isa limit = std::strcmp(cap, "baseline") == 0 ? Isa::Baseline
                          : std::strcmp(cap, "avx2") == 0   ? Isa::Avx2
                                                            : Isa::Avx512;
        if (limit < best) best = limit;
    }
    return best;
}

}  // namespace

Isa active_isa() {
    static const Isa isa = detect_isa();
    return isa;
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::Avx512:
            return "avx512";
        case Isa::Avx2:
            return "avx2";
        case Isa::Baseline:
            return "baseline";
    }
    return "baseline";
}

#define RNNKIT_DISPATCH_KERNEL(name, params, args) \
    template <typename T>                          \
    void name params {                             \
        switch (active_isa()) {                    \
            case Isa::Avx512:                      \
                return avx512::name<T> args;       \
            case Isa::Avx2:                        \
                return avx2::name<T> args;         \
            case Isa::Baseline:                    \
                break;                             \
        }                                          \
        return baseline::name<T> args;             \
    }
RNNKIT_SEQUENCE_KERNELS(RNNKIT_DISPATCH_KERNEL)

// Explicit instantiations: the parameter lists with T spelled float, then double.
#define RNNKIT_INSTANTIATE_KERNEL(name, params, args) template void name params;
#define T float
RNNKIT_SEQUENCE_KERNELS(RNNKIT_INSTANTIATE_KERNEL)
#undef T
#define T double
RNNKIT_SEQUENCE_KERNELS(RNNKIT_INSTANTIATE_KERNEL)
#undef T

}  // namespace rnnkit::bptt
