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

// Fused log-softmax and cross-entropy over rows of logits [N, V]: returns the sum over the
// rows whose target is not `ignore_index` of -log softmax(row)[target] (in double, rows added
// in order), and writes grad = scale * (softmax(row) - onehot(target)) for those rows, zeros
// for the ignored ones. Targets outside [0, V) (other than ignore_index) throw
// std::invalid_argument. One pass over each row for the maximum, one for the exponentials,
// one for the gradient, rows on `threads` threads.
template <typename T>
double softmax_cross_entropy(const T* logits, const std::int64_t* targets, std::int64_t N,
                             std::int64_t V, std::int64_t ignore_index, T scale, T* grad,
                             int threads);

// One SGD step over n values, torch's rule, in place: d = g + weight_decay * p; with momentum,
// buf = d at the first step (first) and momentum * buf + d after, then d = buf (or d +
// momentum * buf with nesterov); p -= lr * d. buf is unused (may be null) without momentum.
// Elementwise on `threads` threads in fixed chunks: the same bits for any thread count.
template <typename T>
void sgd_step(T* p, const T* g, T* buf, std::int64_t n, T lr, T momentum, T weight_decay,
              bool nesterov, bool first, int threads);

// One Adam step (torch's, amsgrad off) over n values, in place: d = g + weight_decay * p;
// m = b1 m + (1 - b1) d; v = b2 v + (1 - b2) d^2; p -= step_size * m / (sqrt(v / c2) + eps),
// step_size = lr / (1 - b1^t), c2 = 1 - b2^t. Chunked on threads as sgd_step.
template <typename T>
void adam_step(T* p, const T* g, T* m, T* v, std::int64_t n, T b1, T b2, T step_size, T c2, T eps,
               T weight_decay, int threads);

// grad[ids[n], :] += dy[n, :] for n < N (ids in [0, V), checked by the caller): each thread owns
// a range of grad's rows and adds into them in the order of n, so the sums are the same for any
// thread count and no two threads write one row.
template <typename T>
void embedding_backward(const std::int64_t* ids, const T* dy, std::int64_t N, std::int64_t E,
                        std::int64_t V, T* grad, int threads);

}  // namespace rnnkit::lm
