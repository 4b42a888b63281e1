#include "lm/dense.hpp"

#include <algorithm>
#include <vector>

#include "common/blas.hpp"
#include "common/parallel.hpp"

namespace rnnkit::lm {

namespace {
constexpr std::int64_t kGemmRowBlock = 64;
constexpr std::int64_t kSumBlock = 1 << 16;
}  // namespace

template <typename T>
void parallel_gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
                   T alpha, const T* A, std::int64_t lda, const T* B, std::int64_t ldb, T beta,
                   T* C, std::int64_t ldc, int threads) {
    blas::check_blas_int(M, "M");
    blas::check_blas_int(N, "N");
    blas::check_blas_int(K, "K");
    const std::int64_t blocks = (M + kGemmRowBlock - 1) / kGemmRowBlock;
    const double flops =
        2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
    const int team = blocks < 2 || flops < 2e6 ? 1 : threads;
    parallel_region(team, [&](int tid, int nthreads) {
        for_each_owned(blocks, tid, nthreads, [&](std::int64_t b) {
            const std::int64_t m0 = b * kGemmRowBlock;
            const std::int64_t rows = std::min(kGemmRowBlock, M - m0);
            // Rows m0.. of op(A): rows of A, or columns of A when transposed.
            const T* a = trans_a ? A + m0 : A + m0 * lda;
            blas::gemm<T>(trans_a, trans_b, rows, N, K, alpha, a, lda, B, ldb, beta, C + m0 * ldc,
                          ldc);
        });
    });
}

template <typename T>
double sum_of_squares(const T* x, std::int64_t n, int threads) {
    const std::int64_t blocks = (n + kSumBlock - 1) / kSumBlock;
    std::vector<double> partial(static_cast<std::size_t>(blocks), 0.0);
    parallel_region(blocks < 4 ? 1 : threads, [&](int tid, int nthreads) {
        for_each_owned(blocks, tid, nthreads, [&](std::int64_t b) {
            const std::int64_t i0 = b * kSumBlock, i1 = std::min(n, i0 + kSumBlock);
            double s = 0;
            for (std::int64_t i = i0; i < i1; ++i)
                s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
            partial[static_cast<std::size_t>(b)] = s;
        });
    });
    double total = 0;
    for (double s : partial) total += s;
    return total;
}

template void parallel_gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, float,
                                   const float*, std::int64_t, const float*, std::int64_t, float,
                                   float*, std::int64_t, int);
template void parallel_gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double,
                                    const double*, std::int64_t, const double*, std::int64_t,
                                    double, double*, std::int64_t, int);
template double sum_of_squares<float>(const float*, std::int64_t, int);
template double sum_of_squares<double>(const double*, std::int64_t, int);

}  // namespace rnnkit::lm
