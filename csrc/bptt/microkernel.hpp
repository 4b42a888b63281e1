// A small-batch GEMM on weights packed once per call: C[M, N] = A[M, K] * W^T, W given as
// panels of V columns, each [K][V] (zero-padded past N). For the recurrent GEMM of a time step
// with few rows (M = running batch rows): OpenBLAS packs both operands on every call, which for
// a few rows costs more than the arithmetic (the weights, a few hundred KB, are re-copied at
// every step). Here they are packed once and each step streams them from cache.
//
// The tiles are written with GCC/Clang vector types of the instruction set this file is
// compiled for (common/isa.hpp): plain loops left the choice of vector axis to the compiler,
// which for float64 vectorised the 8 rows of a tile instead of the columns and ran 10x slower.
// The reduction over K runs in one fixed order, so results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/isa.hpp"

#if defined(__GNUC__)
#define RNNKIT_MK_INLINE inline __attribute__((always_inline))
#else
#define RNNKIT_MK_INLINE inline
#endif

namespace rnnkit::bptt::detail {
inline namespace RNNKIT_ISA_NS {

// Bytes of a vector register of this instruction set.
#if defined(__AVX512F__)
constexpr std::int64_t kVectorBytes = 64;
#elif defined(__AVX2__)
constexpr std::int64_t kVectorBytes = 32;
#else
constexpr std::int64_t kVectorBytes = 16;
#endif

// One vector register of T (float or double). GCC ignores vector_size on a dependent type,
// hence one specialisation per type.
template <typename T>
struct VecOf;
template <>
struct VecOf<float> {
    typedef float type __attribute__((vector_size(kVectorBytes)));
};
template <>
struct VecOf<double> {
    typedef double type __attribute__((vector_size(kVectorBytes)));
};
template <typename T>
using Vec = typename VecOf<T>::type;

template <typename T>
constexpr std::int64_t vec_lanes() {
    return kVectorBytes / static_cast<std::int64_t>(sizeof(T));
}

// Columns per panel: two vector registers.
template <typename T>
constexpr std::int64_t panel_width() {
    return 2 * vec_lanes<T>();
}

template <typename T>
RNNKIT_MK_INLINE Vec<T> load_vec(const T* p) {
    Vec<T> v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

// Rows of A per tile: its accumulators (MR x 2 registers) and the broadcasts fit the register
// file (32 registers with AVX-512, 16 before).
#if defined(__AVX512F__)
constexpr std::int64_t kTileRows = 8;
#else
constexpr std::int64_t kTileRows = 4;
#endif

// Values in the panel layout of an [N, K] row-major matrix.
template <typename T>
std::int64_t panel_size(std::int64_t N, std::int64_t K) {
    constexpr std::int64_t V = panel_width<T>();
    return (N + V - 1) / V * V * K;
}

// W [N, K] row-major (row stride ldw) -> panels.
template <typename T>
void pack_panels(std::int64_t N, std::int64_t K, const T* W, std::int64_t ldw, T* panels) {
    constexpr std::int64_t V = panel_width<T>();
    for (std::int64_t p0 = 0; p0 < N; p0 += V) {
        T* panel = panels + p0 * K;
        const std::int64_t nv = std::min(V, N - p0);
        for (std::int64_t k = 0; k < K; ++k) {
            for (std::int64_t v = 0; v < V; ++v) {
                panel[k * V + v] = v < nv ? W[(p0 + v) * ldw + k] : T(0);
            }
        }
    }
}

// [W0 | W1] -> panels, for W0 [N, K0] and W1 [N, K1] row-major and contiguous: the panels of
// the matrix whose rows are W0's and W1's rows side by side, without building it.
template <typename T>
void pack_panels_joined(std::int64_t N, std::int64_t K0, const T* W0, std::int64_t K1, const T* W1,
                        T* panels) {
    constexpr std::int64_t V = panel_width<T>();
    const std::int64_t K = K0 + K1;
    for (std::int64_t p0 = 0; p0 < N; p0 += V) {
        T* panel = panels + p0 * K;
        const std::int64_t nv = std::min(V, N - p0);
        for (std::int64_t k = 0; k < K; ++k) {
            for (std::int64_t v = 0; v < V; ++v) {
                const std::int64_t n = p0 + v;
                panel[k * V + v] = v >= nv ? T(0) : k < K0 ? W0[n * K0 + k] : W1[n * K1 + k - K0];
            }
        }
    }
}

// W^T given column-major, i.e. W [N, K] with W[n][k] = src[k * ld + n] (a block of columns of
// a row-major [K, ld] matrix) -> panels. Rows of the panels are contiguous runs of src.
template <typename T>
void pack_panels_transposed(std::int64_t N, std::int64_t K, const T* src, std::int64_t ld,
                            T* panels) {
    constexpr std::int64_t V = panel_width<T>();
    for (std::int64_t p0 = 0; p0 < N; p0 += V) {
        T* panel = panels + p0 * K;
        const std::int64_t nv = std::min(V, N - p0);
        for (std::int64_t k = 0; k < K; ++k) {
            for (std::int64_t v = 0; v < V; ++v) {
                panel[k * V + v] = v < nv ? src[k * ld + p0 + v] : T(0);
            }
        }
    }
}

// c[0:L] += v
template <typename T>
RNNKIT_MK_INLINE void store_add(T* c, const Vec<T>& v) {
    const Vec<T> sum = load_vec(c) + v;
    std::memcpy(c, &sum, sizeof(sum));
}

// Rows of the left operand of a panel GEMM: A [M, K] with row stride lda. A GEMM may take two
// (A = [A0 | A1], K = K0 + K1, e.g. [x_t | h_prev] against [W_ih | W_hh]) so that one pass over
// the packed weights does both without copying the rows side by side.
template <typename T>
struct PanelRows {
    const T* data;
    std::int64_t ld;
    std::int64_t K;
};

// A tile's accumulators: MR rows of one panel's V columns, two vector registers each.
template <typename T, std::int64_t MR>
struct TileAcc {
    Vec<T> lo[MR], hi[MR];
};

// acc += A[0:MR, 0:K] * panel (rows [0, K) of the panel).
template <typename T, std::int64_t MR>
RNNKIT_MK_INLINE void tile_accumulate(const PanelRows<T>& a, const T* __restrict panel,
                                      TileAcc<T, MR>& acc) {
    constexpr std::int64_t L = vec_lanes<T>();
    const T* __restrict A = a.data;
    for (std::int64_t k = 0; k < a.K; ++k) {
        const Vec<T> w_lo = load_vec(panel + k * 2 * L);
        const Vec<T> w_hi = load_vec(panel + k * 2 * L + L);
        for (std::int64_t m = 0; m < MR; ++m) {
            const T av = A[m * a.ld + k];
            acc.lo[m] += av * w_lo;
            acc.hi[m] += av * w_hi;
        }
    }
}

// C[MR rows, nv columns] (=, or += when kAccumulate) [A0 | A1] * panel, plus bias[v] when a
// bias is given.
template <typename T, std::int64_t MR, bool kAccumulate>
inline void panel_tile(const PanelRows<T>& a0, const PanelRows<T>& a1, const T* __restrict panel,
                       const T* __restrict bias, T* __restrict C, std::int64_t ldc,
                       std::int64_t nv) {
    constexpr std::int64_t V = panel_width<T>();
    constexpr std::int64_t L = vec_lanes<T>();
    TileAcc<T, MR> acc;
    {
        T start[V] = {};
        if (bias) std::memcpy(start, bias, static_cast<std::size_t>(nv) * sizeof(T));
        const Vec<T> lo = load_vec(start), hi = load_vec(start + L);
        for (std::int64_t m = 0; m < MR; ++m) {
            acc.lo[m] = lo;
            acc.hi[m] = hi;
        }
    }
    tile_accumulate<T, MR>(a0, panel, acc);
    if (a1.K > 0) tile_accumulate<T, MR>(a1, panel + a0.K * V, acc);
    for (std::int64_t m = 0; m < MR; ++m) {
        T row[V];
        std::memcpy(row, &acc.lo[m], sizeof(Vec<T>));
        std::memcpy(row + L, &acc.hi[m], sizeof(Vec<T>));
        if constexpr (kAccumulate) {
            for (std::int64_t v = 0; v < nv; ++v) C[m * ldc + v] += row[v];
        } else {
            std::memcpy(C + m * ldc, row, static_cast<std::size_t>(nv) * sizeof(T));
        }
    }
}

// acc[p] += a[0:K] * panel p, for PN consecutive panels of Kp rows each (2 registers a panel).
template <typename T, std::int64_t PN>
RNNKIT_MK_INLINE void row_accumulate(std::int64_t K, const T* __restrict a,
                                     const T* __restrict panels, std::int64_t Kp,
                                     Vec<T> (&acc)[2 * PN]) {
    constexpr std::int64_t L = vec_lanes<T>();
    for (std::int64_t k = 0; k < K; ++k) {
        const T ak = a[k];
        for (std::int64_t p = 0; p < PN; ++p) {
            const T* w = panels + (p * Kp + k) * 2 * L;
            acc[2 * p] += ak * load_vec(w);
            acc[2 * p + 1] += ak * load_vec(w + L);
        }
    }
}

// One row of [A0 | A1] against PN consecutive full panels: PN*2 independent accumulators. A
// one-row tile over a single panel has only two, and the chain of multiply-adds through them
// (not the loads) would bound it: this is the batch-1 (GEMV) case.
template <typename T, std::int64_t PN, bool kAccumulate>
inline void panel_row_wide(const T* __restrict a0, std::int64_t K0, const T* __restrict a1,
                           std::int64_t K1, const T* __restrict panels, const T* __restrict bias,
                           T* __restrict c) {
    constexpr std::int64_t L = vec_lanes<T>();
    const std::int64_t Kp = K0 + K1;
    Vec<T> acc[2 * PN];
    for (std::int64_t r = 0; r < 2 * PN; ++r) acc[r] = bias ? load_vec(bias + r * L) : Vec<T>{};
    row_accumulate<T, PN>(K0, a0, panels, Kp, acc);
    if (K1 > 0) row_accumulate<T, PN>(K1, a1, panels + K0 * 2 * L, Kp, acc);
    for (std::int64_t r = 0; r < 2 * PN; ++r) {
        if constexpr (kAccumulate) {
            store_add(c + r * L, acc[r]);
        } else {
            std::memcpy(c + r * L, &acc[r], sizeof(Vec<T>));
        }
    }
}

// C[M, N] (row stride ldc) = [A0 | A1] * W^T + bias (C += ... when kAccumulate), W [N, K0 + K1]
// as panels; a1.K = 0 for a single operand, bias null for none.
template <typename T, bool kAccumulate = false>
void panel_gemm(std::int64_t M, std::int64_t N, const PanelRows<T>& a0, const PanelRows<T>& a1,
                const T* panels, const T* bias, T* C, std::int64_t ldc) {
    constexpr std::int64_t V = panel_width<T>();
    const std::int64_t K = a0.K + a1.K;
    const std::int64_t full_rows = M / kTileRows * kTileRows;
    for (std::int64_t p0 = 0; p0 < N; p0 += V) {
        const T* panel = panels + p0 * K;
        const T* panel_bias = bias ? bias + p0 : nullptr;
        const std::int64_t nv = std::min(V, N - p0);
        for (std::int64_t m0 = 0; m0 < full_rows; m0 += kTileRows) {
            const PanelRows<T> t0{a0.data + m0 * a0.ld, a0.ld, a0.K};
            const PanelRows<T> t1{a1.data + m0 * a1.ld, a1.ld, a1.K};
            panel_tile<T, kTileRows, kAccumulate>(t0, t1, panel, panel_bias, C + m0 * ldc + p0, ldc,
                                                  nv);
        }
    }
    // The remaining rows, one at a time, over 4 full panels at once, then 2, then one.
    const std::int64_t full_panels_end = N / V * V;
    for (std::int64_t m = full_rows; m < M; ++m) {
        const T* r0 = a0.data + m * a0.ld;
        const T* r1 = a1.data + m * a1.ld;
        T* c = C + m * ldc;
        std::int64_t p0 = 0;
        for (; p0 + 4 * V <= full_panels_end; p0 += 4 * V) {
            panel_row_wide<T, 4, kAccumulate>(r0, a0.K, r1, a1.K, panels + p0 * K,
                                              bias ? bias + p0 : nullptr, c + p0);
        }
        for (; p0 + 2 * V <= full_panels_end; p0 += 2 * V) {
            panel_row_wide<T, 2, kAccumulate>(r0, a0.K, r1, a1.K, panels + p0 * K,
                                              bias ? bias + p0 : nullptr, c + p0);
        }
        for (; p0 < N; p0 += V) {
            panel_tile<T, 1, kAccumulate>({r0, a0.ld, a0.K}, {r1, a1.ld, a1.K}, panels + p0 * K,
                                          bias ? bias + p0 : nullptr, c + p0, ldc,
                                          std::min(V, N - p0));
        }
    }
}

// C[M, N] = A[M, K] * W^T (C += ... when kAccumulate), W as panels.
template <typename T, bool kAccumulate = false>
void panel_gemm(std::int64_t M, std::int64_t N, std::int64_t K, const T* A, std::int64_t lda,
                const T* panels, T* C, std::int64_t ldc) {
    panel_gemm<T, kAccumulate>(M, N, PanelRows<T>{A, lda, K}, PanelRows<T>{A, lda, 0}, panels,
                               nullptr, C, ldc);
}
}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit::bptt::detail
