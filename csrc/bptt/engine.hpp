// The machinery every cell's time loop shares: unit blocks, block-interleaved packing of the
// weights, the input projection, and the big weight-gradient GEMMs after the backward loop.
// Internal to csrc/bptt.
//
// Block-interleaved layout. The hidden units are cut into blocks of at most kUnitBlock units
// (a function of H alone). A block k with units [j0, j0+nb) owns G*nb consecutive gate
// columns starting at G*j0: gate g of unit j0+u sits at column G*j0 + g*nb + u. One thread
// computes all gates of its units (a single GEMM with the packed weight rows) and applies the
// cell's pointwise step while they are hot. Because the blocks, and so the shape of every
// BLAS call, depend on the problem shape and never on the thread count, results are
// bit-identical for any number of threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "bptt/sequence.hpp"
#include "common/blas.hpp"
#include "common/parallel.hpp"

namespace rnnkit::bptt::detail {

constexpr std::int64_t kUnitBlock = 64;
// Rows of the [T*B, I] input gradient per task.
constexpr std::int64_t kRowBlock = 256;
// Input projection in inference runs over chunks of time steps holding about this many rows,
// so the workspace stays O(B*G*H) instead of O(T*B*G*H).
constexpr std::int64_t kChunkRows = 512;

// Uninitialised scratch memory, sized once per call.
template <typename T>
class Buffer {
public:
    Buffer() = default;
    explicit Buffer(std::int64_t n) : data_(n > 0 ? new T[static_cast<std::size_t>(n)] : nullptr) {}
    T* get() const { return data_.get(); }
    void fill(T value, std::int64_t n) { std::fill(data_.get(), data_.get() + n, value); }

private:
    std::unique_ptr<T[]> data_;
};

struct UnitBlocks {
    std::int64_t H;
    std::int64_t size;
    std::int64_t count;

    explicit UnitBlocks(std::int64_t hidden)
        : H(hidden),
          size(std::min(hidden, kUnitBlock)),
          count(size > 0 ? (hidden + size - 1) / size : 0) {}
    std::int64_t begin(std::int64_t k) const { return k * size; }
    std::int64_t width(std::int64_t k) const { return std::min(size, H - k * size); }
};

// Row r (gate g, unit j) of a PyTorch [G*H, cols] matrix goes to packed row G*j0 + g*nb + u.
template <typename T>
void pack_gate_rows(const T* src, std::int64_t G, const UnitBlocks& blocks, std::int64_t cols,
                    T* dst) {
    for (std::int64_t k = 0; k < blocks.count; ++k) {
        const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
        for (std::int64_t g = 0; g < G; ++g) {
            std::memcpy(dst + (G * j0 + g * nb) * cols, src + (g * blocks.H + j0) * cols,
                        static_cast<std::size_t>(nb * cols) * sizeof(T));
        }
    }
}

// Packed column of (gate g, unit j).
inline std::int64_t packed_column(std::int64_t G, const UnitBlocks& blocks, std::int64_t g,
                                  std::int64_t j) {
    const std::int64_t k = j / blocks.size;
    const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
    return G * j0 + g * nb + (j - j0);
}

// Weights repacked once per call, and the bias folded into the input projection:
// bias[c] = b_ih[c] + b_hh[c] for every gate listed in `fold_hh`, b_ih[c] alone otherwise.
template <typename T>
struct PackedWeights {
    Buffer<T> w_ih;  // [G*H, I]
    Buffer<T> w_hh;  // [G*H, H]
    Buffer<T> bias;  // [G*H]

    PackedWeights(const SeqShape& s, std::int64_t G, const UnitBlocks& blocks,
                  const CellWeights<T>& w, std::int64_t gates_with_hh_bias)
        : w_ih(G * s.H * s.I), w_hh(G * s.H * s.H), bias(G * s.H) {
        pack_gate_rows(w.w_ih, G, blocks, s.I, w_ih.get());
        pack_gate_rows(w.w_hh, G, blocks, s.H, w_hh.get());
        for (std::int64_t g = 0; g < G; ++g) {
            for (std::int64_t j = 0; j < s.H; ++j) {
                const std::int64_t r = g * s.H + j;
                T b = w.b_ih ? w.b_ih[r] : T(0);
                if (g < gates_with_hh_bias && w.b_hh) b += w.b_hh[r];
                bias.get()[packed_column(G, blocks, g, j)] = b;
            }
        }
    }
};

// pre[rows, block k columns] = x[rows, I] * w_ih_packed[block k]^T + bias[block k].
// `pre` has row stride G*H; only block k's columns are written.
template <typename T>
void input_projection_block(std::int64_t rows, std::int64_t I, std::int64_t G,
                            const UnitBlocks& blocks, std::int64_t k, const T* x,
                            const PackedWeights<T>& pw, T* pre) {
    const std::int64_t GH = G * blocks.H;
    const std::int64_t c0 = G * blocks.begin(k), nc = G * blocks.width(k);
    const T* bias = pw.bias.get() + c0;
    for (std::int64_t r = 0; r < rows; ++r) {
        std::memcpy(pre + r * GH + c0, bias, static_cast<std::size_t>(nc) * sizeof(T));
    }
    blas::gemm<T>(false, true, rows, nc, I, T(1), x, I, pw.w_ih.get() + c0 * I, I, T(1), pre + c0,
                  GH);
}

// Time steps per input-projection chunk (all of them in training, where the gate cache holds
// the projections anyway).
inline std::int64_t chunk_steps(const SeqShape& s, bool training) {
    if (training || s.B == 0) return std::max<std::int64_t>(s.T, 1);
    return std::clamp<std::int64_t>((kChunkRows + s.B - 1) / s.B, 1,
                                    std::max<std::int64_t>(s.T, 1));
}

// out[c] = sum over rows r (ascending, a fixed order) of a[r * stride + c].
template <typename T>
void column_sums(std::int64_t rows, std::int64_t cols, const T* a, std::int64_t stride, T* out) {
    std::fill(out, out + cols, T(0));
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* row = a + r * stride;
        for (std::int64_t c = 0; c < cols; ++c) out[c] += row[c];
    }
}

// Gradients of the weights after the backward loop, for the gate columns of block k:
//   dw_ih[g*H + j, :] = sum_rows dgx[row, col(g, j)] * x[row, :]
//   dw_hh[g*H + j, :] = sum_rows dgh[row, col(g, j)] * h_prev[row, :]
//   db_ih[g*H + j] = sum_rows dgx[row, col(g,j)], db_hh likewise from dgh
// dgx and dgh are [T*B, G*H] packed; the caller may give, per gate, a different source for the
// recurrent side (GRU's n gate) through `dgh_for_gate(g)`, returning {pointer to the first
// column of this block's gate, row stride}.
template <typename T, typename RecurrentSource>
void weight_grads_block(const SeqShape& s, std::int64_t G, const UnitBlocks& blocks, std::int64_t k,
                        const T* dgx, RecurrentSource dgh_for_gate, const T* x, const T* h_prev,
                        const WeightGrads<T>& dw) {
    const std::int64_t rows = s.T * s.B, GH = G * s.H;
    const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
    for (std::int64_t g = 0; g < G; ++g) {
        const T* gx = dgx + G * j0 + g * nb;
        const auto [gh, gh_stride] = dgh_for_gate(g, j0, nb);
        blas::gemm<T>(true, false, nb, s.I, rows, T(1), gx, GH, x, s.I, T(0),
                      dw.dw_ih + (g * s.H + j0) * s.I, s.I);
        blas::gemm<T>(true, false, nb, s.H, rows, T(1), gh, gh_stride, h_prev, s.H, T(0),
                      dw.dw_hh + (g * s.H + j0) * s.H, s.H);
        if (dw.db_ih) column_sums(rows, nb, gx, GH, dw.db_ih + g * s.H + j0);
        if (dw.db_hh) column_sums(rows, nb, gh, gh_stride, dw.db_hh + g * s.H + j0);
    }
}

// dx[T*B, I] = dgx[T*B, G*H] * w_ih_packed[G*H, I], rows in fixed blocks of kRowBlock.
template <typename T>
void input_grad_blocks(std::int64_t rows, std::int64_t I, std::int64_t GH, const T* dgx,
                       const T* w_ih_packed, T* dx, int tid, int nthreads) {
    const std::int64_t tasks = (rows + kRowBlock - 1) / kRowBlock;
    for_each_owned(tasks, tid, nthreads, [&](std::int64_t task) {
        const std::int64_t r0 = task * kRowBlock;
        const std::int64_t nr = std::min(kRowBlock, rows - r0);
        blas::gemm<T>(false, false, nr, I, GH, T(1), dgx + r0 * GH, GH, w_ih_packed, I, T(0),
                      dx + r0 * I, I);
    });
}

// Rough flop count of a forward pass, to decide whether threads pay off.
inline double forward_flops(const SeqShape& s, std::int64_t G) {
    return 2.0 * static_cast<double>(s.T) * static_cast<double>(s.B) *
           static_cast<double>(s.I + s.H) * static_cast<double>(G * s.H);
}

// dst[u] += src[u]
template <typename T>
inline void add_into(std::int64_t n, const T* __restrict src, T* __restrict dst) {
    for (std::int64_t u = 0; u < n; ++u) dst[u] += src[u];
}

template <typename T>
void copy_or_zero(T* dst, const T* src, std::int64_t n) {
    if (n <= 0) return;
    if (src) {
        std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(T));
    } else {
        std::fill(dst, dst + n, T(0));
    }
}

}  // namespace rnnkit::bptt::detail
