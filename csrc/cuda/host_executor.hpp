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
    // The persistent recurrence's batch limit (0: never), and the hidden units of each
    // emulated block: few by default, so that tests cover several blocks and a partial last
    // one.
    std::int64_t persistent_max_batch = 64;
    std::int64_t units_per_block = 16;

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

    // The persistent kernel's work in its order: per step, per block, the dot products of
    // the block's rows of w_hh with h_t, written to rec [B, G*H], then the cell step of the
    // block's units; blocks run one after the other where a GPU runs them side by side.
    template <typename T, class Maker>
    bool recurrence(const RecurrenceShape& s, const T* w_hh, T* rec, const Maker& make) {
        if (s.B > persistent_max_batch) return false;
        const std::int64_t GH = s.G * s.H;
        for (std::int64_t t = 0; t < s.T; ++t) {
            const T* hp = make.h_prev(t);
            const auto step = make.step(t);
            for (std::int64_t u0 = 0; u0 < s.H; u0 += units_per_block) {
                const std::int64_t nu = s.H - u0 < units_per_block ? s.H - u0 : units_per_block;
                for (std::int64_t item = 0; item < s.B * s.G * nu; ++item) {
                    const std::int64_t b = item / (s.G * nu), g = item % (s.G * nu) / nu;
                    const std::int64_t j = item % nu;
                    const T* row = w_hh + (g * s.H + u0 + j) * s.R;
                    T sum = T(0);
                    for (std::int64_t k = 0; k < s.R; ++k) sum += row[k] * hp[b * s.R + k];
                    rec[b * GH + g * s.H + u0 + j] = sum;
                }
                for (std::int64_t i = 0; i < s.B * nu; ++i) step(i / nu * s.H + u0 + i % nu);
            }
        }
        return true;
    }

    // The persistent backward in its order: the last step's cell backward; then per step t,
    // per block, dg_t . w_hh[:, the block's units] added to those units of dh_run and the
    // cell backward of step t-1 for them.
    template <typename T, class Maker>
    bool recurrence_backward(const RecurrenceShape& s, const T* w_hh, T* dh_run,
                             const Maker& make) {
        if (s.B > persistent_max_batch || s.T == 0) return false;
        const std::int64_t GH = s.G * s.H;
        const auto step_all = [&](std::int64_t t) {
            const auto step = make.step(t);
            for (std::int64_t i = 0; i < s.B * s.H; ++i) step(i);
        };
        step_all(s.T - 1);
        for (std::int64_t t = s.T - 1; t >= 0; --t) {
            const T* dg = make.products(t);
            for (std::int64_t u0 = 0; u0 < s.H; u0 += units_per_block) {
                const std::int64_t nu = s.H - u0 < units_per_block ? s.H - u0 : units_per_block;
                for (std::int64_t b = 0; b < s.B; ++b) {
                    for (std::int64_t k = u0; k < u0 + nu; ++k) {
                        T sum = T(0);
                        for (std::int64_t row = 0; row < GH; ++row) {
                            sum += dg[b * GH + row] * w_hh[row * s.R + k];
                        }
                        dh_run[b * s.R + k] += sum;
                    }
                }
                if (t > 0) {
                    const auto step = make.step(t - 1);
                    for (std::int64_t i = 0; i < s.B * nu; ++i) step(i / nu * s.H + u0 + i % nu);
                }
            }
        }
        return true;
    }

    template <typename T>
    void gemm(Op op_a, Op op_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* A,
              std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
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
