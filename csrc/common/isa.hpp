// The instruction set a translation unit of the kernels is compiled for.
//
// The time loops (csrc/bptt/*_sequence.cpp) are compiled three times, for the x86-64
// baseline, AVX2+FMA and AVX-512, and bptt/dispatch.cpp picks one at run time from the CPU's
// features (the build never depends on -march=native). Every inline function and template
// those files use (gates, cells, engine) lives in `inline namespace RNNKIT_ISA_NS`, so the
// three copies have different symbols and the linker can never mix them up.
#pragma once

#ifndef RNNKIT_ISA_NS
#define RNNKIT_ISA_NS baseline
#endif
