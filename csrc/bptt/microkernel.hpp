// A small-batch GEMM on weights packed once per call: C[M, N] = A[M, K] * W^T, W given as
// panels of V columns, each [K][V] (zero-padded past N). For the recurrent GEMM of a time step
// with few rows (M = running batch rows): OpenBLAS packs both operands on every call, which for
// a few rows costs more than the arithmetic (the weights, a few hundred KB, are re-copied at
// every step). Here they are packed once and each step streams them from cache.
//
// Written as plain loops over compile-time tile sizes, so the compiler maps the V columns to
// vector registers of the instruction set this file is compiled for (common/isa.hpp); the
// reduction over K runs in one fixed order, so results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/isa.hpp"

namespace rnnkit::bptt::detail {
inline namespace RNNKIT_ISA_NS {

// Columns per panel: two vector registers of this instruction set.
template <typename T>
constexpr std::int64_t panel_width() {
#if defined(__AVX512F__)
    return 128 / static_cast<std::int64_t>(sizeof(T));
#elif defined(__AVX2__)
    return 64 / static_cast<std::int64_t>(sizeof(T));
#else
    return 32 / static_cast<std::int64_t>(sizeof(T));
#endif
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

template <typename T, std::int64_t MR, bool kAccumulate>
inline void panel_tile(std::int64_t K, const T* __restrict A, std::int64_t lda,
                       const T* __restrict panel, T* __restrict C, std::int64_t ldc,
                       std::int64_t nv) {
    constexpr std::int64_t V = panel_width<T>();
    T acc[MR][V] = {};
    for (std::int64_t k = 0; k < K; ++k) {
        const T* w = panel + k * V;
        for (std::int64_t m = 0; m < MR; ++m) {
            const T a = A[m * lda + k];
            for (std::int64_t v = 0; v < V; ++v) acc[m][v] += a * w[v];
        }
    }
    for (std::int64_t m = 0; m < MR; ++m) {
        if constexpr (kAccumulate) {
            for (std::int64_t v = 0; v < nv; ++v) C[m * ldc + v] += acc[m][v];
        } else {
            std::memcpy(C + m * ldc, acc[m], static_cast<std::size_t>(nv) * sizeof(T));
        }
    }
}

// One row of A against PN consecutive full panels: PN*2 independent accumulators. A one-row
// tile over a single panel has only two, and the chain of multiply-adds through them (not the
// loads) would bound it: this is the batch-1 (GEMV) case.
template <typename T, std::int64_t PN, bool kAccumulate>
inline void panel_row_wide(std::int64_t K, const T* __restrict a, const T* __restrict panels,
                           T* __restrict c) {
    constexpr std::int64_t V = panel_width<T>();
    T acc[PN][V] = {};
    for (std::int64_t k = 0; k < K; ++k) {
        const T ak = a[k];
        for (std::int64_t p = 0; p < PN; ++p) {
            const T* w = panels + (p * K + k) * V;
            for (std::int64_t v = 0; v < V; ++v) acc[p][v] += ak * w[v];
        }
    }
    for (std::int64_t p = 0; p < PN; ++p) {
        for (std::int64_t v = 0; v < V; ++v) {
            if constexpr (kAccumulate) {
                c[p * V + v] += acc[p][v];
            } else {
                c[p * V + v] = acc[p][v];
            }
        }
    }
}

// C[M, N] (row stride ldc) = A[M, K] (row stride lda) * W^T, W as panels (C += ... when
// kAccumulate).
template <typename T, bool kAccumulate = false>
void panel_gemm(std::int64_t M, std::int64_t N, std::int64_t K, const T* A, std::int64_t lda,
                const T* panels, T* C, std::int64_t ldc) {
    constexpr std::int64_t V = panel_width<T>();
    const std::int64_t full_rows = M / kTileRows * kTileRows;
    for (std::int64_t p0 = 0; p0 < N; p0 += V) {
        const T* panel = panels + p0 * K;
        const std::int64_t nv = std::min(V, N - p0);
        for (std::int64_t m0 = 0; m0 < full_rows; m0 += kTileRows) {
            panel_tile<T, kTileRows, kAccumulate>(K, A + m0 * lda, lda, panel, C + m0 * ldc + p0,
                                                  ldc, nv);
        }
    }
    // The remaining rows, one at a time, over 4 full panels at once, then 2, then one.
    const std::int64_t full_panels_end = N / V * V;
    for (std::int64_t m = full_rows; m < M; ++m) {
        const T* a = A + m * lda;
        T* c = C + m * ldc;
        std::int64_t p0 = 0;
        for (; p0 + 4 * V <= full_panels_end; p0 += 4 * V) {
            panel_row_wide<T, 4, kAccumulate>(K, a, panels + p0 * K, c + p0);
        }
        for (; p0 + 2 * V <= full_panels_end; p0 += 2 * V) {
            panel_row_wide<T, 2, kAccumulate>(K, a, panels + p0 * K, c + p0);
        }
        for (; p0 < N; p0 += V) {
            panel_tile<T, 1, kAccumulate>(K, a, lda, panels + p0 * K, c + p0, ldc,
                                          std::min(V, N - p0));
        }
    }
}
}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit::bptt::detail
