// cuBLAS, loaded at run time (dlopen) rather than linked: the CUDA build then needs only nvcc
// and the CUDA runtime to compile (CI has no cuBLAS), and a machine without cuBLAS can still
// import rnnkit. Only the handful of entry points the loops use, declared here from cuBLAS's
// stable C ABI (cublas_api.h): enums are ints, the handle an opaque pointer.
#pragma once

#include <cstdint>

namespace rnnkit::cuda {

struct CublasContext;
using CublasHandle = CublasContext*;

// cublasOperation_t and cublasMath_t values.
enum CublasOp : int { kCublasOpN = 0, kCublasOpT = 1 };
enum CublasMath : int { kCublasDefaultMath = 0, kCublasTf32TensorOpMath = 3 };

struct Cublas {
    using Create = int (*)(CublasHandle*);
    using SetStream = int (*)(CublasHandle, void*);
    using SetMathMode = int (*)(CublasHandle, int);
    using Sgemm = int (*)(CublasHandle, int, int, int, int, int, const float*, const float*, int,
                          const float*, int, const float*, float*, int);
    using Dgemm = int (*)(CublasHandle, int, int, int, int, int, const double*, const double*, int,
                          const double*, int, const double*, double*, int);

    Create create = nullptr;
    SetStream set_stream = nullptr;
    SetMathMode set_math_mode = nullptr;
    Sgemm sgemm = nullptr;
    Dgemm dgemm = nullptr;

    // The library, loaded on first use; std::runtime_error naming the files tried if absent.
    static const Cublas& get();

    // The handle of the current device for this host thread (created once, kept for the
    // life of the process, as PyTorch does).
    static CublasHandle handle();
};

}  // namespace rnnkit::cuda
