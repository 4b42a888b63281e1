#include "common/blas.hpp"

#include <climits>
#include <stdexcept>
#include <string>

extern "C" {
// From scipy-openblas32's cblas.h (prefixed symbols, 32-bit integers).
enum RnnkitCblasOrder { RnnkitRowMajor = 101 };
enum RnnkitCblasTranspose { RnnkitNoTrans = 111, RnnkitTrans = 112 };
void scipy_cblas_sgemm(int order, int trans_a, int trans_b, int M, int N, int K, float alpha,
                       const float* A, int lda, const float* B, int ldb, float beta, float* C,
                       int ldc);
void scipy_cblas_dgemm(int order, int trans_a, int trans_b, int M, int N, int K, double alpha,
                       const double* A, int lda, const double* B, int ldb, double beta, double* C,
                       int ldc);
void scipy_cblas_sgemv(int order, int trans, int M, int N, float alpha, const float* A, int lda,
                       const float* x, int incx, float beta, float* y, int incy);
void scipy_cblas_dgemv(int order, int trans, int M, int N, double alpha, const double* A, int lda,
                       const double* x, int incx, double beta, double* y, int incy);
}

namespace rnnkit::blas {

void check_blas_int(std::int64_t value, const char* what) {
    if (value < 0 || value > INT_MAX) {
        throw std::invalid_argument(std::string(what) + " = " + std::to_string(value) +
                                    " exceeds the 32-bit BLAS limit of " + std::to_string(INT_MAX));
    }
}

namespace {
inline int tr(bool t) {
    return t ? RnnkitTrans : RnnkitNoTrans;
}

// An empty product: C = beta * C. BLAS would reject the leading dimensions of K = 0 operands.
template <typename T>
void scale_rows(std::int64_t M, std::int64_t N, T beta, T* C, std::int64_t ldc) {
    for (std::int64_t i = 0; i < M; ++i) {
        T* row = C + i * ldc;
        for (std::int64_t j = 0; j < N; ++j) row[j] = beta == T(0) ? T(0) : beta * row[j];
    }
}
}  // namespace

template <>
void gemm<float>(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
                 float alpha, const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
                 float beta, float* C, std::int64_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) return scale_rows(M, N, beta, C, ldc);
    scipy_cblas_sgemm(RnnkitRowMajor, tr(trans_a), tr(trans_b), static_cast<int>(M),
                      static_cast<int>(N), static_cast<int>(K), alpha, A, static_cast<int>(lda), B,
                      static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

template <>
void gemm<double>(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
                  double alpha, const double* A, std::int64_t lda, const double* B,
                  std::int64_t ldb, double beta, double* C, std::int64_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) return scale_rows(M, N, beta, C, ldc);
    scipy_cblas_dgemm(RnnkitRowMajor, tr(trans_a), tr(trans_b), static_cast<int>(M),
                      static_cast<int>(N), static_cast<int>(K), alpha, A, static_cast<int>(lda), B,
                      static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

namespace {
// y = beta * y for an empty product (BLAS would reject the leading dimension of cols = 0).
template <typename T>
void scale_vector(std::int64_t n, T beta, T* y, std::int64_t incy) {
    for (std::int64_t i = 0; i < n; ++i) {
        T& v = y[i * incy];
        v = beta == T(0) ? T(0) : beta * v;
    }
}

// (one name for both precisions, so that gemv below is written once)
void cblas_gemv(int trans, int rows, int cols, float alpha, const float* A, int lda, const float* x,
                int incx, float beta, float* y, int incy) {
    scipy_cblas_sgemv(RnnkitRowMajor, trans, rows, cols, alpha, A, lda, x, incx, beta, y, incy);
}
void cblas_gemv(int trans, int rows, int cols, double alpha, const double* A, int lda,
                const double* x, int incx, double beta, double* y, int incy) {
    scipy_cblas_dgemv(RnnkitRowMajor, trans, rows, cols, alpha, A, lda, x, incx, beta, y, incy);
}
}  // namespace

template <typename T>
void gemv(bool trans, std::int64_t rows, std::int64_t cols, T alpha, const T* A, std::int64_t lda,
          const T* x, std::int64_t incx, T beta, T* y, std::int64_t incy) {
    const std::int64_t out = trans ? cols : rows, in = trans ? rows : cols;
    if (out == 0) return;
    if (in == 0) return scale_vector(out, beta, y, incy);
    cblas_gemv(tr(trans), static_cast<int>(rows), static_cast<int>(cols), alpha, A,
               static_cast<int>(lda), x, static_cast<int>(incx), beta, y, static_cast<int>(incy));
}

template void gemv<float>(bool, std::int64_t, std::int64_t, float, const float*, std::int64_t,
                          const float*, std::int64_t, float, float*, std::int64_t);
template void gemv<double>(bool, std::int64_t, std::int64_t, double, const double*, std::int64_t,
                           const double*, std::int64_t, double, double*, std::int64_t);

}  // namespace rnnkit::blas
