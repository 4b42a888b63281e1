// Which instruction-set variant of the sequence kernels runs (see common/isa.hpp).
#pragma once

namespace rnnkit::bptt {

enum class Isa { Baseline = 0, Avx2 = 1, Avx512 = 2 };

// The variant in use: the best the CPU supports, capped by the environment variable RNNKIT_ISA
// (read once, at the first call).
Isa active_isa();
const char* isa_name(Isa isa);

}  // namespace rnnkit::bptt
