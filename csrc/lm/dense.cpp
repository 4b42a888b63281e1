#include "lm/dense.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "bptt/isa_dispatch.hpp"
#include "common/blas.hpp"
#include "common/parallel.hpp"
#include "lm/vector_kernels.hpp"
#include "rnn/gates.hpp"

namespace rnnkit::lm {

namespace {
constexpr std::int64_t kGemmRowBlock = 64;
constexpr std::int64_t kGemmColBlock = 256;

constexpr std::int64_t kSumBlock = 1 << 16;
// Values per chunk of an optimizer step (a thread's unit of work; 256 KiB of float32).
constexpr std::int64_t kStepChunk = 1 << 16;
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
    if (blocks == 1 && flops >= 2e6) {
        // Few rows (a generation step's single row, a small batch): one row block would put
        // everything on one thread, and OpenBLAS's gemm repacks all of op(B) for it (a
        // 50,000 x 1,024 decoder: 200 MB per row). Fixed blocks of columns go to the threads
        // instead (the same blocks, so the same bits, for any thread count), one row as a
        // gemv, which reads B once without packing.
        const std::int64_t col_blocks = (N + kGemmColBlock - 1) / kGemmColBlock;
        parallel_region(col_blocks < 2 ? 1 : threads, [&](int tid, int nthreads) {
            for_each_owned(col_blocks, tid, nthreads, [&](std::int64_t b) {
                const std::int64_t n0 = b * kGemmColBlock;
                const std::int64_t cols = std::min(kGemmColBlock, N - n0);
                // Columns n0.. of op(B): rows of B when transposed, else its columns.
                const T* bb = trans_b ? B + n0 * ldb : B + n0;
                if (M == 1) {
                    const std::int64_t incx = trans_a ? lda : 1;  // (A's one row or column)
                    if (trans_b) {
                        blas::gemv<T>(false, cols, K, alpha, bb, ldb, A, incx, beta, C + n0, 1);
                    } else {
                        blas::gemv<T>(true, K, cols, alpha, bb, ldb, A, incx, beta, C + n0, 1);
                    }
                } else {
                    blas::gemm<T>(trans_a, trans_b, M, cols, K, alpha, A, lda, bb, ldb, beta,
                                  C + n0, ldc);
                }
            });
        });
        return;
    }
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

namespace {
// Softmax sums run over fixed blocks of columns, each summed in double with four
// accumulators, the blocks added in order: the same bits whether a row is done by one thread
// or (a long row on its own) its blocks by several.
constexpr std::int64_t kSoftmaxBlock = 1 << 14;

// The vector loops (vector_kernels.hpp) of the instruction set in use, chosen once.
template <typename T>
struct VectorLoops {
    T (*row_max)(const T*, std::int64_t);
    double (*exps_and_sum)(const T*, std::int64_t, T, T*);
    void (*scale)(T*, std::int64_t, T);
};

template <typename T>
const VectorLoops<T>& vector_loops() {
    static const VectorLoops<T> loops = [] {
        switch (bptt::active_isa()) {
            case bptt::Isa::Avx512:
                return VectorLoops<T>{avx512::row_max<T>, avx512::exps_and_sum<T>,
                                      avx512::scale<T>};
            case bptt::Isa::Avx2:
                return VectorLoops<T>{avx2::row_max<T>, avx2::exps_and_sum<T>, avx2::scale<T>};
            case bptt::Isa::Baseline:
                break;
        }
        return VectorLoops<T>{baseline::row_max<T>, baseline::exps_and_sum<T>, baseline::scale<T>};
    }();
    return loops;
}
}  // namespace

template <typename T>
double softmax_cross_entropy(const T* logits, const std::int64_t* targets, std::int64_t N,
                             std::int64_t V, std::int64_t ignore_index, T scale, T* grad,
                             int threads) {
    for (std::int64_t n = 0; n < N; ++n) {
        if (targets[n] != ignore_index && (targets[n] < 0 || targets[n] >= V)) {
            throw std::invalid_argument("targets must be in [0, " + std::to_string(V) +
                                        ") or ignore_index (" + std::to_string(ignore_index) +
                                        "), got " + std::to_string(targets[n]));
        }
    }
    std::vector<double> row_loss(static_cast<std::size_t>(N), 0.0);
    const std::int64_t blocks = (V + kSoftmaxBlock - 1) / kSoftmaxBlock;
    const auto block_len = [&](std::int64_t b) {
        return std::min(V, (b + 1) * kSoftmaxBlock) - b * kSoftmaxBlock;
    };
    // Row n's gradient, its exponentials scaled in place (blocks [b0, b1)).
    const auto finish_row = [&](std::int64_t n, double sum, std::int64_t b0, std::int64_t b1) {
        T* g = grad + n * V;
        const T factor = static_cast<T>(static_cast<double>(scale) / sum);
        for (std::int64_t b = b0; b < b1; ++b) {
            vector_loops<T>().scale(g + b * kSoftmaxBlock, block_len(b), factor);
        }
    };
    if (N < threads && blocks >= 2 * threads) {
        // Few long rows (one row over a large vocabulary: a generation step's scoring): each
        // row's blocks on the threads, in three passes (maxima, exponentials, scaling).
        std::vector<T> maxima(static_cast<std::size_t>(blocks));
        std::vector<double> sums(static_cast<std::size_t>(blocks));
        for (std::int64_t n = 0; n < N; ++n) {
            const T* x = logits + n * V;
            T* g = grad + n * V;
            if (targets[n] == ignore_index) {
                std::fill(g, g + V, T(0));
                continue;
            }
            parallel_region(threads, [&](int tid, int nthreads) {
                for_each_owned(blocks, tid, nthreads, [&](std::int64_t b) {
                    maxima[static_cast<std::size_t>(b)] =
                        vector_loops<T>().row_max(x + b * kSoftmaxBlock, block_len(b));
                });
            });
            T top = maxima[0];
            for (T m : maxima) top = std::max(top, m);
            parallel_region(threads, [&](int tid, int nthreads) {
                for_each_owned(blocks, tid, nthreads, [&](std::int64_t b) {
                    sums[static_cast<std::size_t>(b)] = vector_loops<T>().exps_and_sum(
                        x + b * kSoftmaxBlock, block_len(b), top, g + b * kSoftmaxBlock);
                });
            });
            double sum = 0;
            for (double part : sums) sum += part;
            row_loss[static_cast<std::size_t>(n)] =
                std::log(sum) - static_cast<double>(x[targets[n]] - top);
            parallel_region(threads, [&](int tid, int nthreads) {
                const std::int64_t b0 = blocks * tid / nthreads;
                const std::int64_t b1 = blocks * (tid + 1) / nthreads;
                finish_row(n, sum, b0, b1);
            });
            g[targets[n]] -= scale;
        }
    } else {
        const double work = static_cast<double>(N) * static_cast<double>(V);
        parallel_region(work < 1e5 ? 1 : threads, [&](int tid, int nthreads) {
            for (std::int64_t n = tid; n < N; n += nthreads) {
                const T* x = logits + n * V;
                T* g = grad + n * V;
                if (targets[n] == ignore_index) {
                    std::fill(g, g + V, T(0));
                    continue;
                }
                const T top = vector_loops<T>().row_max(x, V);
                double sum = 0;
                for (std::int64_t b = 0; b < blocks; ++b) {
                    sum += vector_loops<T>().exps_and_sum(x + b * kSoftmaxBlock, block_len(b), top,
                                                          g + b * kSoftmaxBlock);
                }
                row_loss[static_cast<std::size_t>(n)] =
                    std::log(sum) - static_cast<double>(x[targets[n]] - top);
                finish_row(n, sum, 0, blocks);
                g[targets[n]] -= scale;
            }
        });
    }
    double total = 0;
    for (double l : row_loss) total += l;
    return total;
}

template <typename T>
void embedding_backward(const std::int64_t* ids, const T* dy, std::int64_t N, std::int64_t E,
                        std::int64_t V, T* grad, int threads) {
    const double work = static_cast<double>(N) * static_cast<double>(E);
    const int team = work < 1e5 ? 1 : threads;
    parallel_region(team, [&](int tid, int nthreads) {
        const std::int64_t lo = V * tid / nthreads, hi = V * (tid + 1) / nthreads;
        for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t id = ids[n];
            if (id < lo || id >= hi) continue;
            T* row = grad + id * E;
            const T* d = dy + n * E;
            for (std::int64_t e = 0; e < E; ++e) row[e] += d[e];
        }
    });
}

template double softmax_cross_entropy<float>(const float*, const std::int64_t*, std::int64_t,
                                             std::int64_t, std::int64_t, float, float*, int);
template double softmax_cross_entropy<double>(const double*, const std::int64_t*, std::int64_t,
                                              std::int64_t, std::int64_t, double, double*, int);
template void embedding_backward<float>(const std::int64_t*, const float*, std::int64_t,
                                        std::int64_t, std::int64_t, float*, int);
template void embedding_backward<double>(const std::int64_t*, const double*, std::int64_t,
                                         std::int64_t, std::int64_t, double*, int);

template void parallel_gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, float,
                                   const float*, std::int64_t, const float*, std::int64_t, float,
                                   float*, std::int64_t, int);
template void parallel_gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double,
                                    const double*, std::int64_t, const double*, std::int64_t,
                                    double, double*, std::int64_t, int);
template <typename T>
void sgd_step(T* p, const T* g, T* buf, std::int64_t n, T lr, T momentum, T weight_decay,
              bool nesterov, bool first, int threads) {
    const std::int64_t chunks = (n + kStepChunk - 1) / kStepChunk;
    // The options as compile-time flags, so that each variant's loop vectorises.
    rnn::with_flags(
        [&](auto decay, auto heavy, auto nest, auto init) {
            constexpr bool kDecay = decltype(decay)::value, kMomentum = decltype(heavy)::value;
            constexpr bool kNesterov = decltype(nest)::value, kFirst = decltype(init)::value;
            parallel_region(chunks < 2 ? 1 : threads, [&](int tid, int nthreads) {
                for_each_owned(chunks, tid, nthreads, [&](std::int64_t c) {
                    const std::int64_t i0 = c * kStepChunk, i1 = std::min(n, i0 + kStepChunk);
                    T* __restrict pc = p + i0;
                    const T* __restrict gc = g + i0;
                    T* __restrict bc = kMomentum ? buf + i0 : nullptr;
                    for (std::int64_t i = 0; i < i1 - i0; ++i) {
                        T d = kDecay ? gc[i] + weight_decay * pc[i] : gc[i];
                        if constexpr (kMomentum) {
                            const T b = kFirst ? d : momentum * bc[i] + d;
                            bc[i] = b;
                            d = kNesterov ? d + momentum * b : b;
                        }
                        pc[i] -= lr * d;
                    }
                });
            });
        },
        weight_decay != T(0), momentum != T(0), nesterov, first);
}

namespace {
// One chunk of an Adam step (a function of its own: with __restrict parameters, and its
// constants by value, the loop vectorises; written inside the lambdas it stayed scalar).
template <typename T, bool kDecay>
void adam_chunk(std::int64_t n, T* __restrict p, const T* __restrict g, T* __restrict m,
                T* __restrict v, T b1, T b2, T step_size, T c2, T eps, T weight_decay) {
    const T one_minus_b1 = T(1) - b1, one_minus_b2 = T(1) - b2;
    for (std::int64_t i = 0; i < n; ++i) {
        const T d = kDecay ? g[i] + weight_decay * p[i] : g[i];
        const T mi = b1 * m[i] + one_minus_b1 * d;
        const T vi = b2 * v[i] + one_minus_b2 * d * d;
        m[i] = mi;
        v[i] = vi;
        p[i] -= step_size * mi / (std::sqrt(vi / c2) + eps);
    }
}
}  // namespace

template <typename T>
void adam_step(T* p, const T* g, T* m, T* v, std::int64_t n, T b1, T b2, T step_size, T c2, T eps,
               T weight_decay, int threads) {
    const std::int64_t chunks = (n + kStepChunk - 1) / kStepChunk;
    const bool decay = weight_decay != T(0);
    parallel_region(chunks < 2 ? 1 : threads, [&](int tid, int nthreads) {
        for_each_owned(chunks, tid, nthreads, [&](std::int64_t c) {
            const std::int64_t i0 = c * kStepChunk, len = std::min(n, i0 + kStepChunk) - i0;
            if (decay) {
                adam_chunk<T, true>(len, p + i0, g + i0, m + i0, v + i0, b1, b2, step_size, c2, eps,
                                    weight_decay);
            } else {
                adam_chunk<T, false>(len, p + i0, g + i0, m + i0, v + i0, b1, b2, step_size, c2,
                                     eps, weight_decay);
            }
        });
    });
}

template void sgd_step<float>(float*, const float*, float*, std::int64_t, float, float, float, bool,
                              bool, int);
template void sgd_step<double>(double*, const double*, double*, std::int64_t, double, double,
                               double, bool, bool, int);
template void adam_step<float>(float*, const float*, float*, float*, std::int64_t, float, float,
                               float, float, float, float, int);
template void adam_step<double>(double*, const double*, double*, double*, std::int64_t, double,
                                double, double, double, double, double, int);
template double sum_of_squares<float>(const float*, std::int64_t, int);
template double sum_of_squares<double>(const double*, std::int64_t, int);

}  // namespace rnnkit::lm
