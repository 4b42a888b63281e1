// Thin, typed wrapper over the CBLAS GEMM of scipy-openblas32 (symbols carry the `scipy_`
// prefix). Row-major throughout. The 32-bit BLAS takes int dimensions: every argument is
// checked so that a huge problem is a clear error, never a silently truncated size.
#pragma once

#include <cstdint>

namespace rnnkit::blas {

// C[M,N] = alpha * op(A) * op(B) + beta * C, row-major; op(X) = X^T when trans_x.
// Single-threaded: rnnkit runs BLAS inside its own OpenMP regions (see parallel.hpp).
template <typename T>
void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, T alpha,
          const T* A, std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C,
          std::int64_t ldc);

// y = alpha * op(A) x + beta * y, A [rows, cols] row-major, op(A) = A^T when trans (x has
// cols entries, or rows when trans; strides incx, incy). Single-threaded, as gemm.
template <typename T>
void gemv(bool trans, std::int64_t rows, std::int64_t cols, T alpha, const T* A, std::int64_t lda,
          const T* x, std::int64_t incx, T beta, T* y, std::int64_t incy);

// Sets OpenBLAS to one thread (called once when the extension loads).
void use_single_threaded_blas();

// Throws std::invalid_argument if `value` does not fit the 32-bit BLAS integer.
void check_blas_int(std::int64_t value, const char* what);

}  // namespace rnnkit::blas
