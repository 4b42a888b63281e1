// Dense helpers of the language-model layers (rnnkit.lm): a GEMM split over rnnkit's own
// threads, and a sum of squares, so that a training step never wakes a second thread pool
// (NumPy's BLAS spinning beside rnnkit's OpenMP threads made the recurrent kernels 3x slower
// on two cores: BENCHMARKS.md).
#pragma once

#include <cstdint>

namespace rnnkit::lm {

// C[M,N] = alpha * op(A) * op(B) + beta * C (row-major, op(X) = X^T when trans_x), the rows
// of C in fixed blocks of kGemmRowBlock computed by single-threaded BLAS calls on `threads`
// threads: the result does not depend on the thread count.
template <typename T>
void parallel_gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
                   T alpha, const T* A, std::int64_t lda, const T* B, std::int64_t ldb, T beta,
                   T* C, std::int64_t ldc, int threads);

// Sum of x[i]^2 in double, by fixed blocks added in order (the same for any thread count).
template <typename T>
double sum_of_squares(const T* x, std::int64_t n, int threads);

}  // namespace rnnkit::lm
