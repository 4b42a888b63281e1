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
#include <type_traits>
#include <utility>
#include <vector>

#include "bptt/microkernel.hpp"
#include "bptt/sequence.hpp"
#include "common/blas.hpp"
#include "common/parallel.hpp"
#include "common/pool.hpp"

namespace rnnkit::bptt::detail {
inline namespace RNNKIT_ISA_NS {

constexpr std::int64_t kUnitBlock = 64;
// Batches up to this many rows run the per-step recurrent GEMM on weights packed once per call
// (microkernel.hpp) instead of OpenBLAS, which repacks them at every call (measured faster
// from B = 1 to 128; beyond, the tiles stream the panels from further away).
constexpr std::int64_t kPanelRows = 256;
// Rows of the [T*B, I] input gradient per task.
constexpr std::int64_t kRowBlock = 256;
// Input projection in inference runs over chunks of time steps holding about this many rows,
// so the workspace stays O(B*G*H) instead of O(T*B*G*H).
constexpr std::int64_t kChunkRows = 512;

// Uninitialised scratch memory, sized once per call, from the pool of large blocks
// (common/pool.hpp) so that repeated calls do not fault their pages in again.
template <typename T>
class Buffer {
public:
    Buffer() = default;
    explicit Buffer(std::int64_t n)
        : data_(n > 0 ? static_cast<T*>(pool::allocate(bytes_of(n))) : nullptr), n_(n) {}
    Buffer(Buffer&& other) noexcept : data_(other.data_), n_(other.n_) {
        other.data_ = nullptr;
        other.n_ = 0;
    }
    Buffer& operator=(Buffer&& other) noexcept {
        if (this != &other) {
            pool::release(data_, bytes_of(n_));
            data_ = other.data_;
            n_ = other.n_;
            other.data_ = nullptr;
            other.n_ = 0;
        }
        return *this;
    }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    ~Buffer() { pool::release(data_, bytes_of(n_)); }

    T* get() const { return data_; }
    void fill(T value, std::int64_t n) { std::fill(data_, data_ + n, value); }

private:
    static std::size_t bytes_of(std::int64_t n) {
        return static_cast<std::size_t>(n > 0 ? n : 0) * sizeof(T);
    }
    T* data_ = nullptr;
    std::int64_t n_ = 0;
};

// Bytes of a row of `cols` values of T.
template <typename T>
inline std::size_t bytes(std::int64_t cols) {
    return static_cast<std::size_t>(cols) * sizeof(T);
}

struct UnitBlocks {
    std::int64_t H;
    std::int64_t size;
    std::int64_t count;

    explicit UnitBlocks(std::int64_t hidden) : UnitBlocks(hidden, std::min(hidden, kUnitBlock)) {}
    UnitBlocks(std::int64_t hidden, std::int64_t block)
        : H(hidden), size(block), count(size > 0 ? (hidden + size - 1) / size : 0) {}
    std::int64_t begin(std::int64_t k) const { return k * size; }
    std::int64_t width(std::int64_t k) const { return std::min(size, H - k * size); }
};

// The unit blocks of `hidden` units (or outputs) for batches of `rows` rows: kUnitBlock wide,
// except that a layer of one block (hidden <= kUnitBlock) is cut in two, 16-unit aligned,
// when its steps are wide enough to share (rows >= kSplitBlockRows): the threads own whole
// blocks, so one block kept a second thread idle. A function of the shape alone, so forward
// and backward (and any thread count) lay out the gates alike.
constexpr std::int64_t kSplitBlockRows = 32;
inline UnitBlocks unit_blocks(std::int64_t hidden, std::int64_t rows) {
    if (hidden <= kUnitBlock && hidden > 16 && rows >= kSplitBlockRows) {
        const std::int64_t half = (hidden + 1) / 2;
        return UnitBlocks(hidden, (half + 15) / 16 * 16);
    }
    return UnitBlocks(hidden);
}

// Unit blocks go to threads in contiguous runs: thread t of n owns blocks [t*count/n,
// (t+1)*count/n), the same at every step and in every phase of a time loop, so the states of
// a unit never cross threads between steps.
template <typename Fn>
inline void for_each_owned_block(std::int64_t count, int tid, int nthreads, Fn&& fn) {
    const std::int64_t k1 = count * (tid + 1) / nthreads;
    for (std::int64_t k = count * tid / nthreads; k < k1; ++k) fn(k);
}

// The rows of a time loop that thread tid of nthreads runs at every step: all of them, or
// (split) a fixed range of whole micro-kernel tiles of the B rows, the same at every step, so
// that a row's states never cross threads and the steps need no barrier. Used where a layer
// is one unit block (an LSTM of up to 16 units) and a row's step reads only its own row.
struct OwnedRows {
    // Whether splitting pays: one unit block (which would leave every thread but its owner
    // waiting at each step's barrier) and at least two tiles of rows.
    static bool pays(const UnitBlocks& blocks, std::int64_t B) {
        return blocks.count == 1 && B >= 2 * kTileRows;
    }

    std::int64_t begin, end;
    // The arguments of for_each_owned_block over the unit blocks: this thread of all of them,
    // or (split) every block, for this thread's own rows.
    int block_tid, block_threads;
    OwnedRows(bool split, std::int64_t B, int tid, int nthreads)
        : begin(0), end(B), block_tid(split ? 0 : tid), block_threads(split ? 1 : nthreads) {
        if (!split) return;
        const std::int64_t tiles = (B + kTileRows - 1) / kTileRows;
        begin = std::min(B, tiles * tid / nthreads * kTileRows);
        end = std::min(B, tiles * (tid + 1) / nthreads * kTileRows);
    }
    // This thread's rows [first, last) among the n running rows of a step.
    std::int64_t first(std::int64_t n) const { return std::min(begin, n); }
    std::int64_t last(std::int64_t n) const { return std::min(end, n); }
};

// Whether the steps of a batch of B rows cut their recurrent GEMM in halves
// (ReductionHalves). Measured with two threads, LSTM (T, B, I, H) = (200, B, 128, 128), the
// halves against one barrier per step: B = 1 1.7-3.3% faster (forward, forward+backward),
// B = 2 1% slower, B = 4 1% faster, and (100, 8, 256, 256) 0-3% slower: only the GEMV, whose
// step is short enough for the barrier's latency to count, gains.
inline bool split_steps(std::int64_t B) {
    return B == 1;
}

// sum[i] = sum[i] + second[i]: how every thread adds the two halves of a ReductionHalves
// reduction, whatever order it computed them in. One out-of-line copy, so that the operands
// keep one order in the machine code too: IEEE addition is commutative except for which NaN
// comes out when both are NaN, and that must not depend on the thread count either.
template <typename T>
__attribute__((noinline)) void add_second_half(std::int64_t count, const T* second, T* sum) {
    for (std::int64_t i = 0; i < count; ++i) sum[i] = sum[i] + second[i];
}

// The reduction of a step's recurrent GEMM (over the state's units forward, over the gate
// columns of those units backward) cut in two at the first unit of block count/2: a function
// of the shape alone; each half is summed into its own buffer and the two are added by
// add_second_half, so results do not depend on who computes which half, or when. With two
// threads, each owns exactly one half's blocks (for_each_owned_block) and can reduce over its
// own units' half as soon as it has written them, before it waits for the other thread's: the
// wait at every step's barrier then overlaps useful work.
struct ReductionHalves {
    std::int64_t split;  // the first unit of the second half; 0: not split

    explicit ReductionHalves(const UnitBlocks& blocks)
        : split(blocks.count >= 2 ? blocks.begin(blocks.count / 2) : 0) {}
    bool active() const { return split > 0; }
    // The half whose blocks are exactly the thread's own (0 or 1), or -1 if neither is.
    static int own(int tid, int nthreads) { return nthreads <= 2 ? tid : -1; }
    // Half h's range of [0, units) (times `scale` columns per unit: G backward).
    std::int64_t begin(int h, std::int64_t scale) const { return h == 0 ? 0 : split * scale; }
    std::int64_t end(int h, std::int64_t units, std::int64_t scale) const {
        return h == 0 ? split * scale : units * scale;
    }
};

// Rows of gates [g_first, g_first + g_count) of a PyTorch [G*H, cols] matrix, block-interleaved:
// row (g_first + g) * H + j, j = j0 + u in block k, goes to packed row g_count*j0 + g*nb + u.
template <typename T>
void pack_gate_rows(const T* src, std::int64_t g_first, std::int64_t g_count,
                    const UnitBlocks& blocks, std::int64_t cols, T* dst) {
    for (std::int64_t k = 0; k < blocks.count; ++k) {
        const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
        for (std::int64_t g = 0; g < g_count; ++g) {
            std::memcpy(dst + (g_count * j0 + g * nb) * cols,
                        src + ((g_first + g) * blocks.H + j0) * cols,
                        static_cast<std::size_t>(nb * cols) * sizeof(T));
        }
    }
}

// One matrix as micro-kernel panels per unit block (microkernel.hpp): block k holds
// cols_per_unit * width(k) columns of K rows. The constructor lays the blocks out (nothing when
// not enabled); each block's owner fills its own in the region, so that its panels start out
// in that core's cache.
template <typename T>
struct BlockPanels {
    std::vector<std::int64_t> offset;  // [blocks + 1]
    Buffer<T> data;

    BlockPanels(bool enabled, const UnitBlocks& blocks, std::int64_t cols_per_unit, std::int64_t K)
        : offset(enabled ? static_cast<std::size_t>(blocks.count) + 1 : 0, 0) {
        for (std::int64_t k = 0; enabled && k < blocks.count; ++k) {
            offset[k + 1] = offset[k] + panel_size<T>(cols_per_unit * blocks.width(k), K);
        }
        data = Buffer<T>(enabled ? offset.back() : 0);
    }
    T* block(std::int64_t k) const { return data.get() + offset[k]; }
};

// fn(w + (PyTorch row of packed column c) * K + col, c) for the packed columns c of G
// block-interleaved gates (pack_gate_rows' order) in ascending order: the PyTorch row of gate
// g, unit j0 + u of block k is g * H + j0 + u.
template <typename T, typename Fn>
inline void for_each_packed_row(std::int64_t G, const UnitBlocks& blocks, const T* w,
                                std::int64_t K, std::int64_t col, Fn&& fn) {
    for (std::int64_t k = 0; k < blocks.count; ++k) {
        const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
        for (std::int64_t g = 0; g < G; ++g) {
            const std::int64_t c0 = G * j0 + g * nb;
            const T* rows = w + (g * blocks.H + j0) * K + col;
            for (std::int64_t u = 0; u < nb; ++u) fn(rows + u * K, c0 + u);
        }
    }
}

// by_packed_rows on MR rows of dg and NV vectors of columns of w from `col`: each weight row's
// segment is loaded once for the MR rows, into MR x NV vector accumulators.
template <typename T, std::int64_t MR, std::int64_t NV>
inline void packed_rows_tile(std::int64_t G, const UnitBlocks& blocks, const T* dg,
                             std::int64_t ld_dg, const T* w, std::int64_t K, std::int64_t col,
                             T* out, std::int64_t ld_out, bool accumulate) {
    constexpr std::int64_t L = vec_lanes<T>();
    Vec<T> acc[MR][NV];
    for (std::int64_t m = 0; m < MR; ++m) {
        for (std::int64_t v = 0; v < NV; ++v) {
            acc[m][v] = accumulate ? load_vec(out + m * ld_out + v * L) : Vec<T>{};
        }
    }
    for_each_packed_row(G, blocks, w, K, col, [&](const T* row, std::int64_t c) {
        Vec<T> segment[NV];
        for (std::int64_t v = 0; v < NV; ++v) segment[v] = load_vec(row + v * L);
        for (std::int64_t m = 0; m < MR; ++m) {
            const T coef = dg[m * ld_dg + c];
            for (std::int64_t v = 0; v < NV; ++v) acc[m][v] += coef * segment[v];
        }
    });
    for (std::int64_t m = 0; m < MR; ++m) {
        for (std::int64_t v = 0; v < NV; ++v) {
            std::memcpy(out + m * ld_out + v * L, &acc[m][v], sizeof(Vec<T>));
        }
    }
}

// packed_rows_tile over rows [i0, i1) (a multiple of MR of them) and the columns [q, cols) in
// strips of NV vectors, strips outside and rows inside (a strip of w, G*H rows of NV vectors,
// comes from memory for the first tile of rows and from the cache for the others). Returns
// the first column left over.
template <typename T, std::int64_t MR, std::int64_t NV>
inline std::int64_t packed_rows_strips(std::int64_t i0, std::int64_t i1, std::int64_t q,
                                       std::int64_t cols, std::int64_t G, const UnitBlocks& blocks,
                                       const T* dg, std::int64_t ld_dg, const T* w, std::int64_t K,
                                       std::int64_t col0, T* out, std::int64_t ld_out,
                                       bool accumulate) {
    constexpr std::int64_t width = NV * vec_lanes<T>();
    for (; q + width <= cols; q += width) {
        for (std::int64_t i = i0; i < i1; i += MR) {
            packed_rows_tile<T, MR, NV>(G, blocks, dg + i * ld_dg, ld_dg, w, K, col0 + q,
                                        out + i * ld_out + q, ld_out, accumulate);
        }
    }
    return q;
}

// out[n, cols] (row stride ld_out) = (out when accumulating, else 0) + dg[n, G*H] (packed
// columns of G gates, row stride ld_dg) * w[the packed columns' rows, col0:col0+cols], w being
// the caller's [G*H, K] (or its first G gates): the direct backward products of one step
// (PackedWeights' direct mode). Every sum runs over the packed columns in ascending order,
// whatever the tiling, so the bits do not depend on n.
// Tiles of kTileRows rows by two vectors load each weight once per tile (the weights, several
// MiB, are the traffic); the rows left over go one by one, four vectors wide (four chains of
// multiply-adds); the last columns of less than a vector in scalar loops.
template <typename T>
void by_packed_rows(std::int64_t n, std::int64_t G, const UnitBlocks& blocks, const T* dg,
                    std::int64_t ld_dg, const T* w, std::int64_t K, std::int64_t col0,
                    std::int64_t cols, T* out, std::int64_t ld_out, bool accumulate) {
    const std::int64_t full_rows = n / kTileRows * kTileRows;
    const auto strips = [&](auto mr, auto nv, std::int64_t i0, std::int64_t i1, std::int64_t q) {
        return packed_rows_strips<T, decltype(mr)::value, decltype(nv)::value>(
            i0, i1, q, cols, G, blocks, dg, ld_dg, w, K, col0, out, ld_out, accumulate);
    };
    using One = std::integral_constant<std::int64_t, 1>;
    using Two = std::integral_constant<std::int64_t, 2>;
    using Four = std::integral_constant<std::int64_t, 4>;
    using Tile = std::integral_constant<std::int64_t, kTileRows>;
    // Both end at the last whole vector of columns.
    strips(Tile{}, One{}, 0, full_rows, strips(Tile{}, Two{}, 0, full_rows, 0));
    strips(One{}, One{}, full_rows, n, strips(One{}, Four{}, full_rows, n, 0));
    const std::int64_t vector_cols = cols / vec_lanes<T>() * vec_lanes<T>();
    if (vector_cols < cols) {
        const std::int64_t rest = cols - vector_cols;
        for (std::int64_t r = 0; r < n; ++r) {
            const T* d = dg + r * ld_dg;
            T* o = out + r * ld_out + vector_cols;
            T acc[kVectorBytes / sizeof(T)];
            for (std::int64_t q = 0; q < rest; ++q) acc[q] = accumulate ? o[q] : T(0);
            for_each_packed_row(G, blocks, w, K, col0 + vector_cols,
                                [&](const T* row, std::int64_t c) {
                                    const T coef = d[c];
                                    for (std::int64_t q = 0; q < rest; ++q) acc[q] += coef * row[q];
                                });
            std::copy(acc, acc + rest, o);
        }
    }
}

// out[n, cols] (row stride ld) = a[n, K] rows[cols, K]^T + beta * out, `rows` being
// consecutive rows of a caller's weight: a GEMV for one row (a one-row GEMM would have
// OpenBLAS copy the whole of `rows` first).
template <typename T>
inline void times_rows_transposed(std::int64_t n, std::int64_t cols, std::int64_t K, const T* a,
                                  const T* rows, T beta, T* out, std::int64_t ld) {
    if (n == 1) {
        blas::gemv<T>(false, cols, K, T(1), rows, K, a, 1, beta, out, 1);
    } else {
        blas::gemm<T>(false, true, n, cols, K, T(1), a, K, rows, K, beta, out, ld);
    }
}

// Weights repacked once per call, and the bias folded into the input projection:
// bias[c] = b_ih[c] + b_hh[c] for the first `gates_with_hh_bias` gates, b_ih[c] alone after.
// Which recurrent GEMM a PackedWeights serves: the forward step's (h_prev w_hh^T), the
// backward step's (dG w_hh), or none (the caller runs its own, as the GRU with the reset gate
// before the matmul does).
// ForwardFused: the forward step's GEMM takes the input too, [x_t | h_prev] [W_ih | W_hh]^T +
// bias, on panels of both weights (see fused_forward), so no input projection runs apart.
enum class Pass { Forward, ForwardFused, Backward, InputOnly };

// Whether a forward pass over a batch of B rows (values of type T) fuses the input projection
// into its steps (Pass::ForwardFused); the same rule for the three cells (the GRU's and the
// RNN's measured in BENCHMARKS.md, log steps 39-40). Measured: from B = 32 one pass over [W_ih |
// W_hh] per step beats a separate projection GEMM (which OpenBLAS packs, and whose output makes
// another trip through memory). From 4 to 31 rows it does too while the fused weights stay small
// enough: beyond, each step streams twice the weights from memory. Fourteenth session, an EPYC with
// 1 MiB of L2 per core, LSTM forward, alternating processes, separate -> fused:
// - float32: B = 4 H = I = 128-768 (0.25-18 MiB) 1.03-1.25x faster, H = 1024 (32 MiB) 0.93x;
//   B = 8-16 H = 128-768 1.06-1.11x, H = 1024 0.96-0.97x; B = 2 H = 128 1.06x but H = 256
//   0.83x; training 1.00-1.09x;
// - float64: B = 4-8 H = 256-384 (4-9 MiB) 1.06-1.10x, H = 512 (16 MiB) 0.94-0.97x.
constexpr std::int64_t kFusedMinRows = 32;
constexpr std::int64_t kFusedSmallBatchMinRows = 4;
template <typename T>
inline std::int64_t fused_weight_bytes(const SeqShape& s, std::int64_t G) {
    return G * s.H * (s.I + s.R) * static_cast<std::int64_t>(sizeof(T));
}
template <typename T>
inline bool fuse_input(const SeqShape& s, std::int64_t G) {
    if (s.B > kPanelRows || s.B < kFusedSmallBatchMinRows) return false;
    const std::int64_t small_batch_limit = (sizeof(T) == 4 ? 24 : 12) << 20;
    return s.B >= kFusedMinRows || fused_weight_bytes<T>(s, G) <= small_batch_limit;
}

// The weights of one call, repacked once:
// - w_ih block-interleaved, for the input projection (forward) and dx (backward);
// - the bias folded into the projection: b_ih + b_hh for the first `gates_with_hh_bias`
//   gates, b_ih alone after;
// - w_hh for the pass's recurrent GEMM: for batches up to kPanelRows rows as micro-kernel
//   panels (microkernel.hpp; forward: each unit block's gate rows, backward: each block of the
//   R columns), else block-interleaved for OpenBLAS.
// The constructor only lays the buffers out; pack() fills them, each thread the blocks it owns
// in the time loop (for_each_owned_block), so that the packing is shared and each thread's
// weights start out in its own core's cache.
// Direct (a forward pass of one step, see direct_weights): nothing is copied but the bias;
// the products read the caller's weights where they are, one GEMM (a GEMV for one row) per
// gate of a unit block. Packing reads and writes every weight once, as much memory traffic
// as the step itself, so a single step (a cell call, a generation step) would spend most of
// its time packing.
template <typename T>
struct PackedWeights {
    Buffer<T> w_ih;  // [G*H, I] (empty when direct)
    Buffer<T> bias;  // [G*H]
    Buffer<T> w_hh;  // [G*H, R], when not in panels
    Buffer<T> panels;
    std::vector<std::int64_t> panel_offset;  // [blocks + 1] (forward: unit blocks, else of R)

    PackedWeights(const SeqShape& s, std::int64_t G, const UnitBlocks& blocks,
                  const CellWeights<T>& w, std::int64_t gates_with_hh_bias, Pass pass,
                  bool direct = false)
        : w_ih(direct ? 0 : G * s.H * s.I),
          bias(G * s.H),
          s_(s),
          G_(G),
          blocks_(blocks),
          out_blocks_(unit_blocks(s.R, s.B)),
          w_(w),
          gates_with_hh_bias_(gates_with_hh_bias),
          pass_(pass),
          direct_(direct) {
        if (pass == Pass::InputOnly || direct) return;
        if (pass != Pass::ForwardFused && s.B > kPanelRows) {
            w_hh = Buffer<T>(G * s.H * s.R);
            return;
        }
        // Forward: per unit block, its gate rows of W_hh ([G*nb, R]; fused: of [W_ih | W_hh],
        // [G*nb, I + R]). Backward: per block of R, those columns of W_hh, [G*H, np].
        const bool forward = pass != Pass::Backward;
        const UnitBlocks& panel_blocks = forward ? blocks : out_blocks_;
        const std::int64_t K = pass == Pass::ForwardFused ? s.I + s.R : forward ? s.R : G * s.H;
        panel_offset.assign(static_cast<std::size_t>(panel_blocks.count) + 1, 0);
        for (std::int64_t k = 0; k < panel_blocks.count; ++k) {
            const std::int64_t nb = panel_blocks.width(k);
            const std::int64_t size = pass == Pass::ForwardFused
                                          ? fused_layout(nb).size
                                          : panel_size<T>(forward ? G * nb : nb, K);
            panel_offset[k + 1] = panel_offset[k] + size;
        }
        panels = Buffer<T>(panel_offset.back());
    }

    // Packs the blocks thread tid of nthreads owns, then meets the others at a barrier (the
    // backward pass's dx reads every block of w_ih). Called by every thread of the region.
    void pack(int tid, int nthreads) const {
        for_each_owned_block(blocks_.count, tid, nthreads,
                             [&](std::int64_t k) { pack_unit_block(k); });
        if (pass_ == Pass::Backward && panelled()) {
            for_each_owned_block(out_blocks_.count, tid, nthreads,
                                 [&](std::int64_t k) { pack_out_block(k); });
        }
        barrier();
    }

    // gh[n, G*nb] = h_prev[n, R] * (block k's rows of w_hh)^T: the recurrent GEMM of a forward
    // step. n <= B rows.
    void recurrent(std::int64_t n, std::int64_t G, const UnitBlocks& blocks, std::int64_t k,
                   std::int64_t R, const T* h_prev, T* gh) const {
        const std::int64_t nc = G * blocks.width(k);
        if (direct_) {
            by_gate(n, R, w_.w_hh, k, h_prev, T(0), gh, nc);
        } else if (!panel_offset.empty()) {
            panel_gemm<T>(n, nc, R, h_prev, R, panels.get() + panel_offset[k], gh, nc);
        } else {
            blas::gemm<T>(false, true, n, nc, R, T(1), h_prev, R,
                          w_hh.get() + G * blocks.begin(k) * R, R, T(0), gh, nc);
        }
    }

    // pre[rows, block k's G*nb columns] (row stride ld) += x[rows, I] (block k's rows of
    // w_ih)^T: the input projection of unit block k.
    void input_product(std::int64_t rows, std::int64_t k, const T* x, T* pre,
                       std::int64_t ld) const {
        const std::int64_t c0 = G_ * blocks_.begin(k), nc = G_ * blocks_.width(k);
        if (direct_) {
            by_gate(rows, s_.I, w_.w_ih, k, x, T(1), pre + c0, ld);
        } else {
            blas::gemm<T>(false, true, rows, nc, s_.I, T(1), x, s_.I, w_ih.get() + c0 * s_.I, s_.I,
                          T(1), pre + c0, ld);
        }
    }

    // dx[rows, i0:i0+ni] (row stride ldx) = dg[rows, G*H] (packed columns, row stride
    // ld_dg) * w_ih[packed rows, i0:i0+ni]: the input gradient of a backward chunk.
    void input_grad(std::int64_t rows, const T* dg, std::int64_t ld_dg, std::int64_t i0,
                    std::int64_t ni, T* dx, std::int64_t ldx) const {
        if (direct_) {
            by_packed_rows(rows, G_, blocks_, dg, ld_dg, w_.w_ih, s_.I, i0, ni, dx, ldx, false);
        } else {
            blas::gemm<T>(false, false, rows, ni, G_ * s_.H, T(1), dg, ld_dg, w_ih.get() + i0, s_.I,
                          T(0), dx, ldx);
        }
    }

    // Whether the recurrent GEMMs run on panels (so that they can be cut into parts).
    bool panelled() const { return !panel_offset.empty(); }

    // gh[n, G*nb] = h_prev[n, u0:u1] * (block k's rows of w_hh)[:, u0:u1]^T: part of
    // recurrent(), on panels.
    void recurrent_part(std::int64_t n, std::int64_t G, const UnitBlocks& blocks, std::int64_t k,
                        std::int64_t R, const T* h_prev, std::int64_t u0, std::int64_t u1,
                        T* gh) const {
        const std::int64_t nc = G * blocks.width(k);
        panel_gemm_part<T>(n, nc, R, u0, u1, h_prev, R, panels.get() + panel_offset[k], gh, nc);
    }

    // A whole forward step's GEMM for the gate rows of unit block k, on Pass::ForwardFused
    // panels: gates[n, G*nb] (row stride ld) = x_t[n, I] W_ih^T + h_prev[n, R] W_hh^T + bias.
    // The gates past the fused ones (FusedLayout: the GRU's n) keep their two products apart:
    // gates holds x_t W_ih^T + bias for them, and recurrent[n, rest] (row stride
    // ld_recurrent) h_prev W_hh^T.
    void fused_forward(std::int64_t n, std::int64_t G, const UnitBlocks& blocks, std::int64_t k,
                       std::int64_t I, std::int64_t R, const T* x_t, const T* h_prev, T* gates,
                       std::int64_t ld, T* recurrent = nullptr,
                       std::int64_t ld_recurrent = 0) const {
        const FusedLayout at = fused_layout(blocks.width(k));
        const T* block_panels = panels.get() + panel_offset[k];
        const T* block_bias = bias.get() + G * blocks.begin(k);
        panel_gemm<T>(n, at.fused, PanelRows<T>{x_t, I, I}, PanelRows<T>{h_prev, R, R},
                      block_panels, block_bias, gates, ld);
        if (at.rest == 0) return;
        panel_gemm<T>(n, at.rest, PanelRows<T>{x_t, I, I}, PanelRows<T>{x_t, I, 0},
                      block_panels + at.rest_input, block_bias + at.fused, gates + at.fused, ld);
        panel_gemm<T>(n, at.rest, R, h_prev, R, block_panels + at.rest_recurrent, recurrent,
                      ld_recurrent);
    }

    // dh[n, block k of R] (row stride R) = dg[n, c0:c1] * w_hh[c0:c1, block k]: part of
    // recurrent_grad(), on panels.
    void recurrent_grad_part(std::int64_t n, std::int64_t GH, const UnitBlocks& out_blocks,
                             std::int64_t k, std::int64_t R, const T* dg, std::int64_t ld_dg,
                             std::int64_t c0, std::int64_t c1, T* dh) const {
        const std::int64_t p0 = out_blocks.begin(k), np = out_blocks.width(k);
        panel_gemm_part<T>(n, np, GH, c0, c1, dg, ld_dg, panels.get() + panel_offset[k], dh + p0,
                           R);
    }

    // dh[n, block k of R] (row stride R) = dg[n, G*H] * w_hh[:, block k] (or += when
    // accumulate): the recurrent GEMM of a backward step, blocks of UnitBlocks(R).
    void recurrent_grad(std::int64_t n, std::int64_t GH, const UnitBlocks& out_blocks,
                        std::int64_t k, std::int64_t R, const T* dg, std::int64_t ld_dg, T* dh,
                        bool accumulate) const {
        const std::int64_t p0 = out_blocks.begin(k), np = out_blocks.width(k);
        if (direct_) {
            by_packed_rows(n, G_, blocks_, dg, ld_dg, w_.w_hh, R, p0, np, dh + p0, R, accumulate);
        } else if (!panel_offset.empty()) {
            const T* block_panels = panels.get() + panel_offset[k];
            if (accumulate) {
                panel_gemm<T, true>(n, np, GH, dg, ld_dg, block_panels, dh + p0, R);
            } else {
                panel_gemm<T, false>(n, np, GH, dg, ld_dg, block_panels, dh + p0, R);
            }
        } else {
            blas::gemm<T>(false, false, n, np, GH, T(1), dg, ld_dg, w_hh.get() + p0, R,
                          accumulate ? T(1) : T(0), dh + p0, R);
        }
    }

private:
    // out[n, G*nb] (row stride ld) = a[n, K] (rows of block k's units in each gate of the
    // caller's weights w [G*H, K])^T + beta * out: the direct products, gate by gate.
    void by_gate(std::int64_t n, std::int64_t K, const T* w, std::int64_t k, const T* a, T beta,
                 T* out, std::int64_t ld) const {
        const std::int64_t j0 = blocks_.begin(k), nb = blocks_.width(k);
        for (std::int64_t g = 0; g < G_; ++g) {
            times_rows_transposed(n, nb, K, a, w + (g * s_.H + j0) * K, beta, out + g * nb, ld);
        }
    }

    // A unit block's Pass::ForwardFused panels (nb units): the columns of the gates whose
    // input and recurrent products a step sums (the first gates_with_hh_bias_, those whose
    // b_hh folds into the bias: all of an LSTM's, the GRU's r and z) over [W_ih | W_hh]; then,
    // for the other gates' `rest` columns (the GRU's n, whose recurrent product the reset gate
    // scales), their W_ih panels at offset rest_input and W_hh panels at rest_recurrent.
    struct FusedLayout {
        std::int64_t fused, rest, rest_input, rest_recurrent, size;
    };
    FusedLayout fused_layout(std::int64_t nb) const {
        const std::int64_t fused = gates_with_hh_bias_ * nb, rest = G_ * nb - fused;
        const std::int64_t rest_input = panel_size<T>(fused, s_.I + s_.R);
        const std::int64_t rest_recurrent = rest_input + panel_size<T>(rest, s_.I);
        return {fused, rest, rest_input, rest_recurrent,
                rest_recurrent + panel_size<T>(rest, s_.R)};
    }

    // The PyTorch row (g * H + j) of packed column c (block-interleaved; see pack_gate_rows).
    std::int64_t source_row(std::int64_t c) const {
        const std::int64_t k = c / (G_ * blocks_.size);
        const std::int64_t j0 = blocks_.begin(k), nb = blocks_.width(k);
        const std::int64_t r = c - G_ * j0;
        return (r / nb) * s_.H + j0 + r % nb;
    }

    // w_ih's and the bias's columns of unit block k; w_hh's rows for OpenBLAS, or the
    // block's forward panels.
    void pack_unit_block(std::int64_t k) const {
        const std::int64_t j0 = blocks_.begin(k), nb = blocks_.width(k), c0 = G_ * j0;
        const std::int64_t H = s_.H, I = s_.I, R = s_.R;
        for (std::int64_t g = 0; g < G_; ++g) {
            if (!direct_) {
                std::memcpy(w_ih.get() + (c0 + g * nb) * I, w_.w_ih + (g * H + j0) * I,
                            static_cast<std::size_t>(nb * I) * sizeof(T));
            }
            for (std::int64_t u = 0; u < nb; ++u) {
                const std::int64_t r = g * H + j0 + u;
                T b = w_.b_ih ? w_.b_ih[r] : T(0);
                if (g < gates_with_hh_bias_ && w_.b_hh) b += w_.b_hh[r];
                bias.get()[c0 + g * nb + u] = b;
            }
        }
        if (pass_ == Pass::InputOnly || direct_) return;
        if (w_hh.get()) {
            for (std::int64_t g = 0; g < G_; ++g) {
                std::memcpy(w_hh.get() + (c0 + g * nb) * R, w_.w_hh + (g * H + j0) * R,
                            static_cast<std::size_t>(nb * R) * sizeof(T));
            }
            return;
        }
        if (pass_ == Pass::Backward) return;
        const auto hh_row = [&](std::int64_t n) {
            return w_.w_hh + source_row(c0 + n) * R;
        };
        T* block_panels = panels.get() + panel_offset[k];
        if (pass_ == Pass::ForwardFused) {
            const auto ih_row = [&](std::int64_t n) {
                return w_ih.get() + (c0 + n) * I;
            };
            const FusedLayout at = fused_layout(nb);
            pack_panels_of_rows(at.fused, I, ih_row, R, hh_row, block_panels);
            if (at.rest > 0) {  // the other gates' input, then recurrent, rows (fused_forward)
                const auto rest_ih_row = [&](std::int64_t n) {
                    return ih_row(at.fused + n);
                };
                const auto rest_hh_row = [&](std::int64_t n) {
                    return hh_row(at.fused + n);
                };
                pack_panels_of_rows(at.rest, I, rest_ih_row, 0, rest_ih_row,
                                    block_panels + at.rest_input);
                pack_panels_of_rows(at.rest, R, rest_hh_row, 0, rest_hh_row,
                                    block_panels + at.rest_recurrent);
            }
        } else {
            pack_panels_of_rows(G_ * nb, R, hh_row, 0, hh_row, block_panels);
        }
    }

    // The backward panels of block k of R: W_hh's columns [p0, p0 + np), in packed row order.
    void pack_out_block(std::int64_t k) const {
        const std::int64_t p0 = out_blocks_.begin(k);
        const auto row = [&](std::int64_t c) {
            return w_.w_hh + source_row(c) * s_.R + p0;
        };
        pack_panels_of_columns(out_blocks_.width(k), G_ * s_.H, row,
                               panels.get() + panel_offset[k]);
    }

    SeqShape s_;
    std::int64_t G_;
    UnitBlocks blocks_, out_blocks_;
    CellWeights<T> w_;
    std::int64_t gates_with_hh_bias_;
    Pass pass_;
    bool direct_;
};

// One thread's forward recurrent GEMMs, gh = h_prev W_hh^T per owned unit block, and the step
// barrier. Active (split_steps), each GEMM is cut in ReductionHalves: begin_step computes the
// thread's own half of every block it owns, then waits for the other threads' last arrival;
// recurrent(k) computes the other half and sums the two in one order; end_step arrives, and
// the wait comes in the next step. Inactive, recurrent(k) is the whole GEMM and end_step a
// whole barrier.
template <typename T>
class HalvedSteps {
public:
    // Scratch values per thread: room for both halves of every block when active (OpenMP may
    // start fewer threads than asked, so a thread may own any number of blocks).
    static std::int64_t scratch(bool active, std::int64_t block_scratch, const UnitBlocks& blocks) {
        return block_scratch * (active ? 2 * blocks.count : 1);
    }

    // block_scratch: values of one block's output, [B, G*blocks.size]; R: columns of h_prev.
    HalvedSteps(bool active, const PackedWeights<T>& pw, std::int64_t G, std::int64_t R,
                std::int64_t block_scratch, const UnitBlocks& blocks, int tid, int nthreads,
                T* thread_scratch)
        : active_(active),
          pw_(pw),
          G_(G),
          R_(R),
          block_scratch_(block_scratch),
          halves_(blocks),
          blocks_(blocks),
          first_block_(blocks.count * tid / nthreads),
          own_(ReductionHalves::own(tid, nthreads)),
          tid_(tid),
          nthreads_(nthreads),
          scratch_(thread_scratch) {}

    // Block k's GEMM output buffer, [n, G*nb] (active: the first half's sum).
    T* gh(std::int64_t k) const {
        return active_ ? scratch_ + (k - first_block_) * 2 * block_scratch_ : scratch_;
    }
    void begin_step(std::int64_t n, const T* h_prev) {
        if (!active_) return;
        if (own_ >= 0) {
            for_each_owned_block(blocks_.count, tid_, nthreads_,
                                 [&](std::int64_t k) { half(k, own_, n, h_prev); });
        }
        wait();
    }
    // Block k's GEMM over the n rows of h_prev: gh(k).
    T* recurrent(std::int64_t k, std::int64_t n, const T* h_prev) const {
        T* out = gh(k);
        if (!active_) {
            pw_.recurrent(n, G_, blocks_, k, R_, h_prev, out);
            return out;
        }
        if (own_ < 0) half(k, 0, n, h_prev);
        half(k, own_ < 0 ? 1 : 1 - own_, n, h_prev);
        add_second_half(n * G_ * blocks_.width(k), out + block_scratch_, out);
        return out;
    }
    void end_step() {
        if (!active_) {
            barrier();
            return;
        }
        ticket_ = barrier_arrive();
        arrived_ = true;
    }
    // The wait for the last arrival, if still due (before the end of a chunk of steps).
    void wait() {
        if (arrived_) barrier_wait(ticket_);
        arrived_ = false;
    }

private:
    // Half h of block k's GEMM, into its own buffer.
    void half(std::int64_t k, int h, std::int64_t n, const T* h_prev) const {
        pw_.recurrent_part(n, G_, blocks_, k, R_, h_prev, halves_.begin(h, 1),
                           halves_.end(h, R_, 1), gh(k) + h * block_scratch_);
    }

    bool active_;
    const PackedWeights<T>& pw_;
    std::int64_t G_, R_, block_scratch_;
    ReductionHalves halves_;
    const UnitBlocks& blocks_;
    std::int64_t first_block_;
    int own_, tid_, nthreads_;
    T* scratch_;
    bool arrived_ = false;  // at the barrier of the last step, not yet waited for
    unsigned ticket_ = 0;
};

// The recurrent GEMM of a backward step, after its pointwise pass has written this thread's
// blocks of dg [n, G*H]: dh [n, R] = dg W_hh, by blocks of out_blocks (UnitBlocks(R)). Either
// after a whole barrier, or (split, batch 1) with the reduction over dg's columns cut in
// ReductionHalves: the thread arrives, reduces over its own half of the columns (with 3 or
// more threads, none), waits for the others, reduces over the rest, and adds the two. Half
// 0's sum goes into dh and half 1's into `second` (this thread's [B, R] scratch), whoever
// computes them.
template <typename T>
void backward_recurrent_step(const PackedWeights<T>& pw, bool split, const ReductionHalves& halves,
                             std::int64_t n, std::int64_t G, std::int64_t H,
                             const UnitBlocks& out_blocks, const T* dg, T* dh, T* second, int tid,
                             int nthreads) {
    const std::int64_t GH = G * H, R = out_blocks.H;
    if (!split) {
        barrier();
        for_each_owned_block(out_blocks.count, tid, nthreads, [&](std::int64_t k) {
            pw.recurrent_grad(n, GH, out_blocks, k, R, dg, GH, dh, false);
        });
        return;
    }
    const unsigned ticket = barrier_arrive();
    // The first half's sum into dh, the second's into `second` (the same layout).
    const auto half = [&](std::int64_t k, int h) {
        pw.recurrent_grad_part(n, GH, out_blocks, k, R, dg, GH, halves.begin(h, G),
                               halves.end(h, H, G), h == 0 ? dh : second);
    };
    const int own = ReductionHalves::own(tid, nthreads);
    if (own >= 0) {
        for_each_owned_block(out_blocks.count, tid, nthreads,
                             [&](std::int64_t k) { half(k, own); });
    }
    barrier_wait(ticket);
    for_each_owned_block(out_blocks.count, tid, nthreads, [&](std::int64_t k) {
        if (own < 0) half(k, 0);
        half(k, own < 0 ? 1 : 1 - own);
        const std::int64_t p0 = out_blocks.begin(k), np = out_blocks.width(k);
        for (std::int64_t i = 0; i < n; ++i) {
            add_second_half(np, second + i * R + p0, dh + i * R + p0);
        }
    });
}

// pre[rows, block k columns] = x[rows, I] * w_ih_packed[block k]^T + bias[block k].
// `pre` has row stride G*H; only block k's columns are written.
template <typename T>
void input_projection_block(std::int64_t rows, std::int64_t G, const UnitBlocks& blocks,
                            std::int64_t k, const T* x, const PackedWeights<T>& pw, T* pre) {
    const std::int64_t GH = G * blocks.H;
    const std::int64_t c0 = G * blocks.begin(k), nc = G * blocks.width(k);
    const T* bias = pw.bias.get() + c0;
    for (std::int64_t r = 0; r < rows; ++r) {
        std::memcpy(pre + r * GH + c0, bias, static_cast<std::size_t>(nc) * sizeof(T));
    }
    pw.input_product(rows, k, x, pre, GH);
}

// Whether a forward pass reads its weights where they are (PackedWeights' direct mode): one
// step. Below 32 rows, or above kPanelRows (where packing would only make a block-interleaved
// copy for OpenBLAS, which packs again), always. From 32 to kPanelRows rows the steps would
// run on panels of packed weights (for the LSTM, [W_ih | W_hh] fused), which pays for a
// single step only while the weights are small: packing writes a copy of every weight, and
// from kDirectWeightBytes of them (beyond the cores' L2) the copy costs more than the panels
// save. Measured, one step forward, packed -> direct, I = H, B = 32..256 (thirteenth
// session): LSTM H = 512 (8 MiB) 1.86x at B = 32 to 0.95x at 256, H = 1024 1.09-2.36x; GRU
// H = 512 1.06-1.72x; RNN H = 1024 1.20-1.61x; but LSTM H = 256 (2 MiB) 0.80-0.94x.
constexpr std::int64_t kDirectWeightBytes = std::int64_t{4} << 20;
template <typename T>
inline bool direct_weights(const Schedule& sc, const SeqShape& s, std::int64_t G) {
    if (sc.steps() != 1) return false;
    return sc.B() < kFusedMinRows || sc.B() > kPanelRows ||
           fused_weight_bytes<T>(s, G) >= kDirectWeightBytes;
}

// The same for a backward pass, whose direct products (PackedWeights::by_packed_rows) are
// vector loops rather than BLAS, reading the weights once per tile of kTileRows rows: one
// step of at most kDirectBackwardRows rows. Measured (cell forward + backward, alternating
// processes): batch 1 LSTM (H = 1024) 5.2 -> 2.8 ms, GRU 3.7 -> 1.9 ms (twelfth session,
// when each row read the weights). With tiles of rows (thirteenth session; one-step backward,
// I = H, 5 alternations, packed -> direct): B = 8 GRU (H = 512) 3.6x, LSTM 1.31x, RNN 1.33x;
// B = 16 1.07-2.3x (LSTM at H = 1024 0.95x); B = 32 LSTM and GRU at H = 1024 0.89-0.95x.
constexpr std::int64_t kDirectBackwardRows = 16;
inline bool direct_backward_weights(const Schedule& sc) {
    return sc.steps() == 1 && sc.B() <= kDirectBackwardRows;
}

// Steps per input-projection chunk: about kChunkRows rows of the packed layout. Training
// projects in the same chunks (straight into the gate cache) as inference, so both run the
// same GEMM calls and give bit-identical outputs (BLAS rounding depends on the call's shape).
inline std::int64_t chunk_steps(const Schedule& sc) {
    const std::int64_t S = sc.steps();
    if (sc.B() == 0) return std::max<std::int64_t>(S, 1);
    return std::clamp<std::int64_t>((kChunkRows + sc.B() - 1) / sc.B(), 1,
                                    std::max<std::int64_t>(S, 1));
}

// out[c] = (out[c] when accumulating, else 0) + sum over rows r (ascending, a fixed order)
// of a[r * stride + c].
template <typename T>
void column_sums(std::int64_t rows, std::int64_t cols, const T* a, std::int64_t stride, T* out,
                 bool accumulate) {
    if (!accumulate) std::fill(out, out + cols, T(0));
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* row = a + r * stride;
        for (std::int64_t c = 0; c < cols; ++c) out[c] += row[c];
    }
}

// The recurrent side of one gate's weight gradient: dw_hh rows of the gate =
// sum_rows dg[row, :]^T * state[row, :], dg with row stride `stride`, state [N, cols].
template <typename T>
struct RecurrentSource {
    const T* dg;
    std::int64_t stride;
    const T* state;
};

// The backward loops keep the pre-activation gradients of one chunk of steps at a time, about
// kBackwardChunkRows packed rows, not of all N rows: after each chunk its rows' weight
// gradients and dx are computed and the buffer is reused (workspace O(chunk*G*H), and the
// gradients are still hot when the GEMMs read them). The chunks are a function of the schedule
// alone, so the order of every sum is too.
constexpr std::int64_t kBackwardChunkRows = 1024;

inline std::int64_t backward_chunk_steps(const Schedule& sc) {
    const std::int64_t S = std::max<std::int64_t>(sc.steps(), 1);
    if (sc.B() == 0) return S;
    return std::clamp<std::int64_t>((kBackwardChunkRows + sc.B() - 1) / sc.B(), 1, S);
}

// Rows of the largest backward chunk (the size of per-chunk buffers).
inline std::int64_t backward_chunk_rows(const Schedule& sc) {
    return std::min(sc.rows(), backward_chunk_steps(sc) * sc.B());
}

// How the bulk work after a backward chunk's steps (the weight gradients and dx over its rows)
// is cut into tasks: a function of the shapes alone, like everything that fixes the order of a
// sum. Weight gradients: a chunk of whole unit blocks holding about kGradChunkColumns packed
// gate columns, times a piece of at most kGradPieceColumns of the weight's columns (of I for
// dw_ih, of R for dw_hh); dx: kRowBlock rows times its I columns, or times each half of them
// when the largest chunk (in practice, all the rows of the call) fits one row block. Large
// tasks let OpenBLAS pack each operand once for much work; but with dx in one task, two
// threads got (dw_ih + dx, dw_hh) at batch 1: one did two thirds of the bulk. Halving dx
// measured 9-12% faster backward at batch 1 (LSTM, GRU, H = 128 and 256); cutting the weight
// gradients into 64-column pieces as well gained no more at batch 1 and was 5-15% slower from
// batch 4. Every piece packs the chunk's whole dG again, so pieces of 1024 rather than 256
// columns (of I or R = 512 to 1024) measured 1.5-3.3% faster training (LSTM, GRU, RNN at
// (100, 64, 512, 512), (50, 128, 1024, 1024), (100, 16, 1024, 1024)), no slower at batch 1.
constexpr std::int64_t kGradChunkColumns = 1024;
constexpr std::int64_t kGradPieceColumns = 1024;

struct BulkSplit {
    std::int64_t blocks_per_chunk;
    std::int64_t dx_piece;  // columns of dx per task (of dw_ih, dw_hh: kGradPieceColumns)

    BulkSplit(const SeqShape& s, std::int64_t G, const UnitBlocks& blocks,
              std::int64_t chunk_rows_max)
        : blocks_per_chunk(std::max<std::int64_t>(1, kGradChunkColumns / (G * blocks.size))),
          dx_piece(chunk_rows_max <= kRowBlock && s.I > 16 ? (s.I + 1) / 2
                                                           : std::max<std::int64_t>(s.I, 1)) {}
    // Scratch values one thread needs.
    std::int64_t scratch(const SeqShape& s, std::int64_t G, const UnitBlocks& blocks) const {
        return blocks_per_chunk * G * blocks.size * std::min(kGradPieceColumns, std::max(s.I, s.R));
    }
};

// Columns [q0, q1) of dW for the packed gate columns of blocks [k0, k1):
// dW^T = dG[:, those gate columns]^T * S[:, q0:q1] over the N rows as ONE GEMM into `scratch`
// (OpenBLAS packs S once per task, not once per gate and block), then each row moved to its
// PyTorch place (gate g, unit j: row g*H + j of dW [G*H, cols]).
template <typename T>
void packed_weight_grad(std::int64_t rows, std::int64_t G, const UnitBlocks& blocks,
                        std::int64_t k0, std::int64_t k1, const T* dg, std::int64_t ld_dg,
                        const T* state, std::int64_t cols, std::int64_t q0, std::int64_t q1, T* dw,
                        T* scratch, bool accumulate) {
    const std::int64_t c0 = G * blocks.begin(k0);
    const std::int64_t c1 = G * (blocks.begin(k1 - 1) + blocks.width(k1 - 1));
    const std::int64_t nq = q1 - q0;
    if (rows == 1) {
        // An outer product (one step of batch 1): each row of dW straight from dg and the
        // state, the same products (one rounding each) without the round trip through
        // `scratch`, which cost more than the products.
        const T* s = state + q0;
        for (std::int64_t k = k0; k < k1; ++k) {
            const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
            for (std::int64_t g = 0; g < G; ++g) {
                for (std::int64_t u = 0; u < nb; ++u) {
                    T* __restrict row = dw + (g * blocks.H + j0 + u) * cols + q0;
                    const T coef = dg[G * j0 + g * nb + u];
                    if (accumulate) {
                        for (std::int64_t q = 0; q < nq; ++q) row[q] += coef * s[q];
                    } else {
                        for (std::int64_t q = 0; q < nq; ++q) row[q] = coef * s[q];
                    }
                }
            }
        }
        return;
    }
    blas::gemm<T>(true, false, c1 - c0, nq, rows, T(1), dg + c0, ld_dg, state + q0, cols, T(0),
                  scratch, nq);
    for (std::int64_t k = k0; k < k1; ++k) {
        const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
        for (std::int64_t g = 0; g < G; ++g) {
            for (std::int64_t u = 0; u < nb; ++u) {
                T* row = dw + (g * blocks.H + j0 + u) * cols + q0;
                const T* value = scratch + (G * j0 + g * nb + u - c0) * nq;
                if (accumulate) {
                    for (std::int64_t q = 0; q < nq; ++q) row[q] += value[q];
                } else {
                    std::memcpy(row, value, bytes<T>(nq));
                }
            }
        }
    }
}

// The bulk work of the backward chunks, over the N packed rows of each:
//   dw_ih[g*H + j, :] = sum_rows dgx[row, col(g, j)] * x[row, :]
//   dw_hh[g*H + j, :] = sum_rows dgh[row, (g, j)] * state[row, :]    (RecurrentSource of g)
//   db_ih[g*H + j] = sum_rows dgx[row, col(g, j)], db_hh likewise from dgh
//   dx[rows, I] = dgx[rows, G*H] * w_ih_packed[G*H, I]
// dgx is [N, G*H] packed; `source(g, j0, nb)` gives the recurrent side of gate g for a block's
// units (a pointer to its first column, and the state it multiplies), so that cells whose
// recurrent gradient differs from the input one (GRU's n gate) can supply their own. When the
// recurrent side of every gate is in one [N, G*H] packed array `dgh` over one state (LSTM and
// RNN: dgx itself; the GRU with the reset after the matmul: its own), dw_hh runs in tasks like
// dw_ih, one GEMM per chunk of blocks; otherwise (dgh null) one GEMM per gate and block. The tasks
// (BulkSplit) are taken from a shared counter, the GEMMs first and the biases last. After the first
// chunk the sums are added to the gradients already there (the backward loops run the last chunk
// first).
template <typename T>
class BackwardBulk {
public:
    BackwardBulk(const SeqShape& s, const Schedule& sc, std::int64_t G, const UnitBlocks& blocks,
                 int threads)
        : s_(s),
          G_(G),
          blocks_(blocks),
          split_(s, G, blocks, backward_chunk_rows(sc)),
          scratch_size_(split_.scratch(s, G, blocks)),
          scratch_(threads * scratch_size_) {}

    // One chunk's bulk (`first`: the first chunk done, whose sums start from zero). Called by
    // every thread of the region, with its cursor, between two barriers.
    template <typename SourceFn>
    void run(std::int64_t rows, const T* dgx, SourceFn source, const T* dgh, const T* x,
             const WeightGrads<T>& dw, const PackedWeights<T>& pw, T* dx, bool first,
             SharedTasks::Cursor& cursor, int tid, int nthreads) {
        const std::int64_t GH = G_ * s_.H, I = s_.I, R = s_.R, H = s_.H;
        const std::int64_t per_chunk = split_.blocks_per_chunk, piece = kGradPieceColumns;
        const std::int64_t chunks = (blocks_.count + per_chunk - 1) / per_chunk;
        const std::int64_t pieces_ih = (I + piece - 1) / piece;
        const std::int64_t pieces_hh = (R + piece - 1) / piece;
        const std::int64_t dx_pieces = (I + split_.dx_piece - 1) / split_.dx_piece;
        const std::int64_t row_blocks = (rows + kRowBlock - 1) / kRowBlock;
        // Tasks: [chunks * pieces_ih) dw_ih, then dw_hh: chunks * pieces_hh (recurrent side
        // as the input's) or blocks * pieces_hh (its own), then dx, then a bias task per chunk.
        const std::int64_t ih_tasks = chunks * pieces_ih;
        const std::int64_t hh_tasks = (dgh ? chunks : blocks_.count) * pieces_hh;
        const std::int64_t dx_tasks = row_blocks * dx_pieces;
        const std::int64_t tasks = ih_tasks + hh_tasks + dx_tasks + chunks;
        const bool accumulate = !first;
        T* own = scratch_.get() + tid * scratch_size_;
        const auto chunk_blocks = [&](std::int64_t c) {
            return std::pair{c * per_chunk, std::min(blocks_.count, (c + 1) * per_chunk)};
        };
        tasks_.run(cursor, tasks, nthreads, [&](std::int64_t task) {
            if (task < ih_tasks) {
                const auto [k0, k1] = chunk_blocks(task / pieces_ih);
                const std::int64_t q0 = task % pieces_ih * piece;
                packed_weight_grad(rows, G_, blocks_, k0, k1, dgx, GH, x, I, q0,
                                   std::min(I, q0 + piece), dw.dw_ih, own, accumulate);
                return;
            }
            task -= ih_tasks;
            if (task < hh_tasks) {
                const std::int64_t q0 = task % pieces_hh * piece, q1 = std::min(R, q0 + piece);
                if (dgh) {
                    const auto [k0, k1] = chunk_blocks(task / pieces_hh);
                    packed_weight_grad(rows, G_, blocks_, k0, k1, dgh, GH, source(0, 0, 0).state, R,
                                       q0, q1, dw.dw_hh, own, accumulate);
                    return;
                }
                const std::int64_t k = task / pieces_hh;
                const std::int64_t j0 = blocks_.begin(k), nb = blocks_.width(k);
                for (std::int64_t g = 0; g < G_; ++g) {
                    const RecurrentSource<T> rec = source(g, j0, nb);
                    blas::gemm<T>(true, false, nb, q1 - q0, rows, T(1), rec.dg, rec.stride,
                                  rec.state + q0, R, accumulate ? T(1) : T(0),
                                  dw.dw_hh + (g * H + j0) * R + q0, R);
                }
                return;
            }
            task -= hh_tasks;
            if (task < dx_tasks) {
                const std::int64_t r0 = task / dx_pieces * kRowBlock;
                const std::int64_t nr = std::min(kRowBlock, rows - r0);
                const std::int64_t i0 = task % dx_pieces * split_.dx_piece;
                const std::int64_t ni = std::min(I, i0 + split_.dx_piece) - i0;
                pw.input_grad(nr, dgx + r0 * GH, GH, i0, ni, dx + r0 * I + i0, I);
                return;
            }
            const auto [k0, k1] = chunk_blocks(task - dx_tasks);
            for (std::int64_t k = k0; k < k1; ++k) {
                const std::int64_t j0 = blocks_.begin(k), nb = blocks_.width(k);
                for (std::int64_t g = 0; g < G_; ++g) {
                    const T* gx = dgx + G_ * j0 + g * nb;
                    const RecurrentSource<T> rec = source(g, j0, nb);
                    if (dw.db_ih) column_sums(rows, nb, gx, GH, dw.db_ih + g * H + j0, accumulate);
                    if (dw.db_hh) {
                        column_sums(rows, nb, rec.dg, rec.stride, dw.db_hh + g * H + j0,
                                    accumulate);
                    }
                }
            }
        });
    }

private:
    SeqShape s_;
    std::int64_t G_;
    UnitBlocks blocks_;
    BulkSplit split_;
    std::int64_t scratch_size_;
    Buffer<T> scratch_;
    SharedTasks tasks_;
};

// Zero weight gradients (a pass with no real token).
template <typename T>
void zero_weight_grads(const SeqShape& s, std::int64_t G, const WeightGrads<T>& dw) {
    const std::int64_t GH = G * s.H;
    std::fill(dw.dw_ih, dw.dw_ih + GH * s.I, T(0));
    std::fill(dw.dw_hh, dw.dw_hh + GH * s.R, T(0));
    if (dw.db_ih) std::fill(dw.db_ih, dw.db_ih + GH, T(0));
    if (dw.db_hh) std::fill(dw.db_hh, dw.db_hh + GH, T(0));
    if (dw.dw_hr) std::fill(dw.dw_hr, dw.dw_hr + s.R * s.H, T(0));
    if (dw.dpeepholes) std::fill(dw.dpeepholes, dw.dpeepholes + 3 * s.H, T(0));
}

// Runs a backward time loop by chunks, last chunk first: step(st, base) for st from the
// chunk's last step down to its first (base: the chunk's first packed row, so that the step's
// rows sit at offset(st) - base of the chunk's buffers), then, after a barrier,
// chunk_done(base, rows, first) (first: the first chunk done, whose sums start from zero), then
// a barrier before the buffers are reused. Called by every thread of a parallel region.
template <typename StepFn, typename ChunkFn>
void backward_chunks(const Schedule& sc, StepFn&& step, ChunkFn&& chunk_done) {
    const std::int64_t S = sc.steps(), chunk = backward_chunk_steps(sc);
    if (S == 0) return;
    const std::int64_t last = (S - 1) / chunk;
    for (std::int64_t c = last; c >= 0; --c) {
        const std::int64_t s0 = c * chunk, s1 = std::min(S, s0 + chunk);
        const std::int64_t base = sc.offset(s0);
        for (std::int64_t st = s1 - 1; st >= s0; --st) step(st, base);
        barrier();
        chunk_done(base, sc.offset(s1) - base, c == last);
        barrier();
    }
}

// Where step s of a time loop reads its input state and writes its output state, for one
// state (h or c) of `width` values per row, in sorted row order. Training keeps every step's
// input state in the cache, [N + B, width]: the packed rows (schedule.hpp), then the sorted
// final states, so that backward can read them all. Inference ping-pongs between two
// [B, width] buffers and keeps the finals in a third.
template <typename T>
class StateTrack {
public:
    StateTrack(const Schedule& sc, std::int64_t width, T* cache)
        : sc_(sc), width_(width), cache_(cache), work_(cache ? 0 : 3 * sc.B() * width) {}

    // Input states of step s: rows i < active(s), contiguous with row stride width.
    T* prev(std::int64_t s) const {
        return cache_ ? cache_ + sc_.offset(s) * width_ : work_.get() + (s & 1) * sc_.B() * width_;
    }
    // Where row i's state after step s goes.
    T* next(std::int64_t s, std::int64_t i) const {
        if (i >= sc_.active(s + 1)) return finals() + i * width_;
        return cache_ ? cache_ + (sc_.offset(s + 1) + i) * width_
                      : work_.get() + (((s + 1) & 1) * sc_.B() + i) * width_;
    }
    T* finals() const {
        return cache_ ? cache_ + sc_.rows() * width_ : work_.get() + 2 * sc_.B() * width_;
    }
    // From the caller's initial state [B, width] (null: zeros): running rows into prev(0),
    // the rows of length 0 straight to the finals.
    void start(const T* init) const {
        const std::int64_t running = sc_.active(0);
        const std::size_t bytes = static_cast<std::size_t>(width_) * sizeof(T);
        for (std::int64_t i = 0; i < sc_.B(); ++i) {
            T* dst = i < running ? prev(0) + i * width_ : finals() + i * width_;
            if (init) {
                std::memcpy(dst, init + sc_.batch_of(i) * width_, bytes);
            } else {
                std::memset(dst, 0, bytes);
            }
        }
    }
    // The final states in batch order.
    void finish(T* out) const { sc_.unsort_rows(finals(), bytes<T>(width_), out); }

private:
    const Schedule& sc_;
    std::int64_t width_;
    T* cache_;
    Buffer<T> work_;
};

// The input x [T, B, I] in packed row order: the caller's array itself when the schedule is
// the identity, else gathered, a chunk of steps at a time.
template <typename T>
class PackedInput {
public:
    PackedInput(const Schedule& sc, const T* x, std::int64_t I, std::int64_t chunk)
        : sc_(sc), x_(x), I_(I), work_(sc.identity() ? 0 : chunk * sc.B() * I) {}
    // Rows of steps [s0, s1). Called by every thread of a parallel region: the threads
    // gather their share of the steps and meet at a barrier.
    const T* rows(std::int64_t s0, std::int64_t s1, int tid, int nthreads) const {
        if (sc_.identity()) return x_ + sc_.offset(s0) * I_;
        for (std::int64_t s = s0 + tid; s < s1; s += nthreads) {
            sc_.gather(s, s + 1, x_, bytes<T>(I_),
                       work_.get() + (sc_.offset(s) - sc_.offset(s0)) * I_);
        }
        barrier();
        return work_.get();
    }

private:
    const Schedule& sc_;
    const T* x_;
    std::int64_t I_;
    Buffer<T> work_;
};

// For the GEMMs after a backward loop: x in packed row order, and where dx is written in that
// order; `finish` scatters it back to the caller's [T, B, I] (zeros at padded steps). With the
// identity schedule both are the caller's own arrays.
template <typename T>
class PackedGradientRows {
public:
    PackedGradientRows(const Schedule& sc, const T* x, T* dx, std::int64_t I)
        : sc_(sc),
          I_(I),
          x_(x),
          dx_(dx),
          x_rows_(sc.identity() ? 0 : sc.rows() * I),
          dx_rows_(sc.identity() ? 0 : sc.rows() * I) {
        if (!sc.identity()) sc.gather(0, sc.steps(), x, bytes<T>(I), x_rows_.get());
    }
    const T* x() const { return sc_.identity() ? x_ : x_rows_.get(); }
    T* dx() const { return sc_.identity() ? dx_ : dx_rows_.get(); }
    void finish() const {
        if (!sc_.identity()) sc_.scatter(dx_rows_.get(), bytes<T>(I_), dx_);
    }

private:
    const Schedule& sc_;
    std::int64_t I_;
    const T* x_;
    T* dx_;
    Buffer<T> x_rows_, dx_rows_;
};

// A running gradient of a state, [B, width] in sorted row order, starting from the caller's
// gradient of the final state (null: zeros); `finish` writes it out in batch order.
template <typename T>
class RunningGradient {
public:
    RunningGradient(const Schedule& sc, std::int64_t width, const T* init)
        : sc_(sc), width_(width), data_(sc.B() * width) {
        if (init) {
            sc.sort_rows(init, bytes<T>(width), data_.get());
        } else {
            data_.fill(T(0), sc.B() * width);
        }
    }
    T* get() const { return data_.get(); }
    void finish(T* out) const { sc_.unsort_rows(data_.get(), bytes<T>(width_), out); }

private:
    const Schedule& sc_;
    std::int64_t width_;
    Buffer<T> data_;
};

// Copies row values of the block [j0, j0 + nb) of a new state into y[source row] (width R).
template <typename T>
inline void write_output(const Schedule& sc, std::int64_t s, std::int64_t i, std::int64_t R,
                         std::int64_t j0, std::int64_t nb, const T* value, T* y) {
    std::memcpy(y + sc.source_row(s, i) * R + j0, value, static_cast<std::size_t>(nb) * sizeof(T));
}

// Rough flop count of one forward time step, to decide whether threads pay off: the threads
// meet at a barrier every step, so what matters is the work between two barriers.
inline double step_flops(const SeqShape& s, std::int64_t G) {
    return 2.0 * static_cast<double>(s.B) * static_cast<double>(s.I + s.R) *
           static_cast<double>(G * s.H);
}

// dst[u] += src[u]
template <typename T>
inline void add_into(std::int64_t n, const T* __restrict src, T* __restrict dst) {
    for (std::int64_t u = 0; u < n; ++u) dst[u] += src[u];
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit::bptt::detail
