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
#include <type_traits>

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

// W [N, K0 + K1] -> panels, W's row n being [row0(n) | row1(n)] (K0 and K1 values): e.g.
// [W_ih | W_hh] without building it, or the gate rows of a block picked out of PyTorch's
// layout without copying them first. K1 may be 0 (row1 never called).
template <typename T, typename Row0, typename Row1>
void pack_panels_of_rows(std::int64_t N, std::int64_t K0, Row0&& row0, std::int64_t K1, Row1&& row1,
                         T* panels) {
    constexpr std::int64_t V = panel_width<T>();
    const std::int64_t K = K0 + K1;
    const T* r0[V];
    const T* r1[V];
    for (std::int64_t p0 = 0; p0 < N; p0 += V) {
        T* panel = panels + p0 * K;
        const std::int64_t nv = std::min(V, N - p0);
        for (std::int64_t v = 0; v < nv; ++v) {
            r0[v] = row0(p0 + v);
            r1[v] = K1 > 0 ? row1(p0 + v) : nullptr;
        }
        for (std::int64_t k = 0; k < K0; ++k) {
            for (std::int64_t v = 0; v < V; ++v) panel[k * V + v] = v < nv ? r0[v][k] : T(0);
        }
        for (std::int64_t k = 0; k < K1; ++k) {
            for (std::int64_t v = 0; v < V; ++v) {
                panel[(K0 + k) * V + v] = v < nv ? r1[v][k] : T(0);
            }
        }
    }
}

// W [N, K] -> panels, given by its columns: W[n][k] = row(k)[n], row(k) pointing at N values
// (a block of columns of a matrix whose rows are picked by `row`). Each panel row is a
// contiguous run of row(k).
template <typename T, typename Row>
void pack_panels_of_columns(std::int64_t N, std::int64_t K, Row&& row, T* panels) {
    constexpr std::int64_t V = panel_width<T>();
    for (std::int64_t p0 = 0; p0 < N; p0 += V) {
        T* panel = panels + p0 * K;
        const std::int64_t nv = std::min(V, N - p0);
        for (std::int64_t k = 0; k < K; ++k) {
            const T* src = row(k) + p0;
            for (std::int64_t v = 0; v < V; ++v) panel[k * V + v] = v < nv ? src[v] : T(0);
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

// acc[m][p] += A[m, 0:K] * panel p, for MR rows of A (row stride lda) and PN consecutive
// panels of Kp rows each (2 registers a row and panel).
template <typename T, std::int64_t MR, std::int64_t PN>
RNNKIT_MK_INLINE void rows_accumulate(std::int64_t K, const T* __restrict a, std::int64_t lda,
                                      const T* __restrict panels, std::int64_t Kp,
                                      Vec<T> (&acc)[MR][2 * PN]) {
    constexpr std::int64_t L = vec_lanes<T>();
    for (std::int64_t k = 0; k < K; ++k) {
        for (std::int64_t p = 0; p < PN; ++p) {
            const T* w = panels + (p * Kp + k) * 2 * L;
            const Vec<T> w_lo = load_vec(w), w_hi = load_vec(w + L);
            for (std::int64_t m = 0; m < MR; ++m) {
                const T am = a[m * lda + k];
                acc[m][2 * p] += am * w_lo;
                acc[m][2 * p + 1] += am * w_hi;
            }
        }
    }
}

// MR rows of [A0 | A1] against PN consecutive full panels of Kp rows: MR*PN*2 independent
// accumulators. A tile of one or two rows over a single panel has only two or four, and the
// chain of multiply-adds through them (not the loads) would bound it: the batch-1 (GEMV) and
// small-batch cases. Each output is summed in the order of panel_tile's, so a row's results do
// not depend on which rows it is computed with.
template <typename T, std::int64_t MR, std::int64_t PN, bool kAccumulate>
inline void panel_rows_wide(const PanelRows<T>& a0, const PanelRows<T>& a1,
                            const T* __restrict panels, std::int64_t Kp, const T* __restrict bias,
                            T* __restrict C, std::int64_t ldc) {
    constexpr std::int64_t L = vec_lanes<T>();
    Vec<T> acc[MR][2 * PN];
    for (std::int64_t r = 0; r < 2 * PN; ++r) {
        const Vec<T> start = bias ? load_vec(bias + r * L) : Vec<T>{};
        for (std::int64_t m = 0; m < MR; ++m) acc[m][r] = start;
    }
    rows_accumulate<T, MR, PN>(a0.K, a0.data, a0.ld, panels, Kp, acc);
    if (a1.K > 0) rows_accumulate<T, MR, PN>(a1.K, a1.data, a1.ld, panels + a0.K * 2 * L, Kp, acc);
    for (std::int64_t m = 0; m < MR; ++m) {
        T* c = C + m * ldc;
        for (std::int64_t r = 0; r < 2 * PN; ++r) {
            if constexpr (kAccumulate) {
                store_add(c + r * L, acc[m][r]);
            } else {
                std::memcpy(c + r * L, &acc[m][r], sizeof(Vec<T>));
            }
        }
    }
}

// Accumulators a group of rows may use across panels: half the register file.
#if defined(__AVX512F__)
constexpr std::int64_t kGroupAccumulators = 16;
#else
constexpr std::int64_t kGroupAccumulators = 8;
#endif

// C[MR rows, N] for a group of MR < kTileRows rows (the rows a batch leaves after its full
// tiles): as many full panels at once as the accumulators allow (at most 4), then the rest
// one panel at a time.
template <typename T, std::int64_t MR, bool kAccumulate>
void panel_row_group(std::int64_t N, const PanelRows<T>& a0, const PanelRows<T>& a1,
                     const T* panels, std::int64_t Kp, const T* bias, T* C, std::int64_t ldc) {
    constexpr std::int64_t V = panel_width<T>();
    constexpr std::int64_t PN = std::clamp<std::int64_t>(kGroupAccumulators / (2 * MR), 1, 4);
    const std::int64_t full_panels_end = N / V * V;
    std::int64_t p0 = 0;
    if constexpr (PN > 1) {
        for (; p0 + PN * V <= full_panels_end; p0 += PN * V) {
            panel_rows_wide<T, MR, PN, kAccumulate>(a0, a1, panels + p0 * Kp, Kp,
                                                    bias ? bias + p0 : nullptr, C + p0, ldc);
        }
    }
    if constexpr (PN > 2) {
        for (; p0 + 2 * V <= full_panels_end; p0 += 2 * V) {
            panel_rows_wide<T, MR, 2, kAccumulate>(a0, a1, panels + p0 * Kp, Kp,
                                                   bias ? bias + p0 : nullptr, C + p0, ldc);
        }
    }
    for (; p0 < N; p0 += V) {
        panel_tile<T, MR, kAccumulate>(a0, a1, panels + p0 * Kp, bias ? bias + p0 : nullptr, C + p0,
                                       ldc, std::min(V, N - p0));
    }
}

// C[M, N] (row stride ldc) = [A0 | A1] * W^T + bias (C += ... when kAccumulate), W [N, K0 + K1]
// as panels; a1.K = 0 for a single operand, bias null for none. The panels may have more rows
// than K0 + K1 (panel_rows, each panel's size; 0 for K0 + K1): then `panels` points at the row
// where A0's columns start, and the product covers those rows of W^T only.
template <typename T, bool kAccumulate = false>
void panel_gemm(std::int64_t M, std::int64_t N, const PanelRows<T>& a0, const PanelRows<T>& a1,
                const T* panels, const T* bias, T* C, std::int64_t ldc,
                std::int64_t panel_rows = 0) {
    constexpr std::int64_t V = panel_width<T>();
    const std::int64_t Kp = panel_rows > 0 ? panel_rows : a0.K + a1.K;
    const std::int64_t full_rows = M / kTileRows * kTileRows;
    for (std::int64_t p0 = 0; p0 < N; p0 += V) {
        const T* panel = panels + p0 * Kp;
        const T* panel_bias = bias ? bias + p0 : nullptr;
        const std::int64_t nv = std::min(V, N - p0);
        for (std::int64_t m0 = 0; m0 < full_rows; m0 += kTileRows) {
            const PanelRows<T> t0{a0.data + m0 * a0.ld, a0.ld, a0.K};
            const PanelRows<T> t1{a1.data + m0 * a1.ld, a1.ld, a1.K};
            panel_tile<T, kTileRows, kAccumulate>(t0, t1, panel, panel_bias, C + m0 * ldc + p0, ldc,
                                                  nv);
        }
    }
    // The remaining rows (fewer than a tile), in groups of 4, 2 and 1.
    std::int64_t m = full_rows;
    const auto group = [&](auto rows) {
        constexpr std::int64_t MR = decltype(rows)::value;
        if constexpr (MR < kTileRows) {
            if (M - m < MR) return;
            const PanelRows<T> g0{a0.data + m * a0.ld, a0.ld, a0.K};
            const PanelRows<T> g1{a1.data + m * a1.ld, a1.ld, a1.K};
            panel_row_group<T, MR, kAccumulate>(N, g0, g1, panels, Kp, bias, C + m * ldc, ldc);
            m += MR;
        }
    };
    group(std::integral_constant<std::int64_t, 4>{});
    group(std::integral_constant<std::int64_t, 2>{});
    group(std::integral_constant<std::int64_t, 1>{});
}

// C[M, N] = A[M, K] * W^T (C += ... when kAccumulate), W as panels.
template <typename T, bool kAccumulate = false>
void panel_gemm(std::int64_t M, std::int64_t N, std::int64_t K, const T* A, std::int64_t lda,
                const T* panels, T* C, std::int64_t ldc) {
    panel_gemm<T, kAccumulate>(M, N, PanelRows<T>{A, lda, K}, PanelRows<T>{A, lda, 0}, panels,
                               nullptr, C, ldc);
}

// C[M, N] = (or += when kAccumulate) A[M, k0:k1] * W[N, k0:k1]^T, W [N, K] as panels: part of
// a GEMM's reduction, for a caller that sums the parts itself.
template <typename T, bool kAccumulate = false>
void panel_gemm_part(std::int64_t M, std::int64_t N, std::int64_t K, std::int64_t k0,
                     std::int64_t k1, const T* A, std::int64_t lda, const T* panels, T* C,
                     std::int64_t ldc) {
    constexpr std::int64_t V = panel_width<T>();
    panel_gemm<T, kAccumulate>(M, N, PanelRows<T>{A + k0, lda, k1 - k0}, PanelRows<T>{A, lda, 0},
                               panels + k0 * V, nullptr, C, ldc, K);
}
}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit::bptt::detail
