// The host executor of the CUDA backend's loops (sequence_loops.hpp): the same loops, cell
// functors and GEMM calls as on a GPU, run on the CPU with a plain column-major GEMM that
// follows cuBLAS's contract. It exists so that CI, which has no GPU, checks everything of
// the backend but the kernel launches and cuBLAS itself against the NumPy reference
// (rnnkit._core._cuda_host; tests/test_cuda_host.py). Not a fast path: single-threaded.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "cuda/sequence_loops.hpp"

namespace rnnkit::cuda {

struct HostExecutor {
    template <typename T>
    T* alloc(std::int64_t count) {
        void* p = std::malloc(static_cast<std::size_t>(count) * sizeof(T));
        if (p == nullptr) throw std::bad_alloc();
        return static_cast<T*>(p);
    }
    void free(void* p) { std::free(p); }
    void zero(void* p, std::int64_t bytes) { std::memset(p, 0, static_cast<std::size_t>(bytes)); }
    void copy(void* dst, const void* src, std::int64_t bytes) {
        std::memcpy(dst, src, static_cast<std::size_t>(bytes));
    }
    void upload(void* dst, const void* src, std::int64_t bytes) { copy(dst, src, bytes); }

    template <typename F>
    void for_each(std::int64_t n, const F& f) {
        for (std::int64_t i = 0; i < n; ++i) f(i);
    }

    template <typename T>
    void gemm(Op op_a, Op op_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
              const T* A, std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C,
              std::int64_t ldc) {
        for (std::int64_t j = 0; j < n; ++j) {
            for (std::int64_t i = 0; i < m; ++i) {
                T s = T(0);
                for (std::int64_t l = 0; l < k; ++l) {
                    const T a = op_a == Op::N ? A[i + l * lda] : A[l + i * lda];
                    const T b = op_b == Op::N ? B[l + j * ldb] : B[j + l * ldb];
                    s += a * b;
                }
                T& c = C[i + j * ldc];
                c = beta == T(0) ? alpha * s : alpha * s + beta * c;
            }
        }
    }
};

}  // namespace rnnkit::cuda
