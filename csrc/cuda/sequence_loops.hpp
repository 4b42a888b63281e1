// The CUDA backend's time loops (declared in sequence.hpp), written once over an executor:
//
//   ex.alloc<T>(n) / ex.free(p)          workspace memory (device memory on a GPU)
//   ex.zero(p, bytes), ex.copy(d, s, bytes)
//   ex.for_each(n, functor)              functor(i) for i in [0, n): one thread per element
//   ex.gemm(opA, opB, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
//                                        column-major, cuBLAS's contract (C is not read when
//                                        beta is 0; k = 0 gives beta * C)
//   ex.recurrence(shape, w_hh, rec, maker)
//                                        the whole forward time loop as one persistent
//                                        kernel, or false (see RecurrenceShape)
//   ex.recurrence_backward(shape, w_hh, dh_run, maker)
//                                        the backward time loop likewise (BackStepMakers)
//
// Forward over one layer-direction: one GEMM for the input projection of all T steps (biases
// folded in), then per step the recurrent GEMM and one fused pointwise kernel (plus the
// projection GEMM for an LSTM with w_hr, and the second phase of a GRU that resets before the
// matmul). Backward runs t = T-1 .. 0 with one pointwise kernel and one GEMM per step (or as
// one persistent kernel, ex.recurrence_backward, where the executor can), then
// the weight gradients as single GEMMs over all T*B rows and the bias and peephole gradients as
// column sums in a fixed order: no atomics anywhere, so results are bit-identical run to run.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cuda/gru_cell.hpp"
#include "cuda/lstm_cell.hpp"
#include "cuda/rnn_cell.hpp"
#include "cuda/sequence.hpp"

namespace rnnkit::cuda {

enum class Op { N = 0, T = 1 };

// Workspace buffers of one call, freed when it returns (or throws).
template <class Exec>
class Workspace {
public:
    explicit Workspace(Exec& ex) : ex_(ex) { buffers_.reserve(16); }
    Workspace(const Workspace&) = delete;
    Workspace& operator=(const Workspace&) = delete;
    ~Workspace() {
        for (void* p : buffers_) ex_.free(p);
    }

    template <typename T>
    T* get(std::int64_t count) {
        if (count <= 0) return nullptr;
        buffers_.push_back(nullptr);  // may throw before the allocation, never after it
        T* p = ex_.template alloc<T>(count);
        buffers_.back() = p;
        return p;
    }

private:
    Exec& ex_;
    std::vector<void*> buffers_;
};

// Row-major products through the column-major GEMM (a row-major M x N matrix is its
// column-major transpose).
// C [M, N] = A [M, K] . W^T, W [N, K]
template <class Exec, typename T>
void mm_nt(Exec& ex, std::int64_t M, std::int64_t N, std::int64_t K, const T* A, std::int64_t lda,
           const T* W, std::int64_t ldw, T beta, T* C, std::int64_t ldc) {
    ex.gemm(Op::T, Op::N, N, M, K, T(1), W, ldw, A, lda, beta, C, ldc);
}
// C [M, N] = A [M, K] . W, W [K, N]
template <class Exec, typename T>
void mm_nn(Exec& ex, std::int64_t M, std::int64_t N, std::int64_t K, const T* A, std::int64_t lda,
           const T* W, std::int64_t ldw, T beta, T* C, std::int64_t ldc) {
    ex.gemm(Op::N, Op::N, N, M, K, T(1), W, ldw, A, lda, beta, C, ldc);
}
// C [M, N] = A^T . Bm, A [K, M], Bm [K, N]
template <class Exec, typename T>
void mm_tn(Exec& ex, std::int64_t M, std::int64_t N, std::int64_t K, const T* A, std::int64_t lda,
           const T* Bm, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
    ex.gemm(Op::N, Op::T, N, M, K, T(1), Bm, ldb, A, lda, beta, C, ldc);
}

// ------------------------------------------------------------------------ helper kernels
template <typename T>
struct AddBias {
    std::int64_t width, fold;  // b_hh is added to the first `fold` columns only
    const T* b_ih;
    const T* b_hh;
    T* rows;  // [N, width]

    RNNKIT_HD void operator()(std::int64_t idx) const {
        const std::int64_t j = idx % width;
        T v = T(0);
        if (b_ih != nullptr) v += b_ih[j];
        if (b_hh != nullptr && j < fold) v += b_hh[j];
        rows[idx] += v;
    }
};

// dst[t, b] = src[lengths[b] - 1 - t, b] for t < lengths[b], else 0 ([T, B, width]). Its own
// inverse on the rows that count, so it both reverses x and dy and restores y and dx.
template <typename T>
struct ReverseRows {
    std::int64_t steps, B, width;
    const std::int32_t* lengths;
    const T* src;
    T* dst;

    RNNKIT_HD void operator()(std::int64_t idx) const {
        const std::int64_t tb = idx / width, w = idx % width;
        const std::int64_t b = tb % B, t = tb / B;
        const std::int64_t len = lengths != nullptr ? lengths[b] : steps;
        dst[idx] = t < len ? src[((len - 1 - t) * B + b) * width + w] : T(0);
    }
};

// Column sums of a [rows, cols] matrix (times b elementwise when b is not null), in chunks
// of a fixed number of rows and then over the chunks: the order of the additions does not
// depend on the device, so the sums are reproducible.
constexpr std::int64_t kSumChunk = 256;

template <typename T>
struct PartialColumnSums {
    std::int64_t rows, cols;
    const T* a;
    std::int64_t lda;
    const T* b;
    std::int64_t ldb;
    T* partial;  // [chunks, cols]

    RNNKIT_HD void operator()(std::int64_t idx) const {
        const std::int64_t col = idx % cols, chunk = idx / cols;
        const std::int64_t end = (chunk + 1) * kSumChunk < rows ? (chunk + 1) * kSumChunk : rows;
        T s = T(0);
        for (std::int64_t r = chunk * kSumChunk; r < end; ++r) {
            s += a[r * lda + col] * (b != nullptr ? b[r * ldb + col] : T(1));
        }
        partial[idx] = s;
    }
};

template <typename T>
struct FinishColumnSums {
    std::int64_t cols, chunks;
    const T* partial;
    T* out;

    RNNKIT_HD void operator()(std::int64_t col) const {
        T s = T(0);
        for (std::int64_t k = 0; k < chunks; ++k) s += partial[k * cols + col];
        out[col] = s;
    }
};

template <class Exec, typename T>
void column_sums(Exec& ex, std::int64_t rows, std::int64_t cols, const T* a, std::int64_t lda,
                 const T* b, std::int64_t ldb, T* out) {
    if (cols == 0) return;
    if (rows == 0) {
        ex.zero(out, cols * sizeof(T));
        return;
    }
    Workspace<Exec> ws(ex);
    const std::int64_t chunks = (rows + kSumChunk - 1) / kSumChunk;
    T* partial = ws.template get<T>(chunks * cols);
    ex.for_each(chunks * cols, PartialColumnSums<T>{rows, cols, a, lda, b, ldb, partial});
    ex.for_each(cols, FinishColumnSums<T>{cols, chunks, partial, out});
}

template <class Exec, typename T>
void copy_or_zero(Exec& ex, T* dst, const T* src, std::int64_t count) {
    if (count <= 0 || dst == nullptr) return;
    if (src != nullptr) {
        ex.copy(dst, src, count * sizeof(T));
    } else {
        ex.zero(dst, count * sizeof(T));
    }
}

// The states before each step: the training cache (time-indexed) or two alternating buffers.
template <typename T>
struct StateSequence {
    T* base;  // [T+1, B, width] or null
    std::int64_t stride;
    T* ping[2];

    RNNKIT_HD T* at(std::int64_t t) const {
        // Selected, not indexed: a run-time index into ping would keep the whole maker in
        // local memory inside the persistent kernels.
        return base != nullptr ? base + t * stride : (t % 2 == 0 ? ping[0] : ping[1]);
    }
};

// ------------------------------------------------------------------- persistent recurrence
// For small batches the per-step GEMM launch costs more than its work. The executor may then
// run the whole time loop as one persistent kernel (ex.recurrence): each block keeps its
// hidden units' rows of w_hh on chip for all T steps, computes rec = W_hh h for its units
// and applies the cell step to them, then all blocks meet at a grid-wide barrier. It works for
// the cells whose step needs only the block's own units of rec: the LSTM without projection,
// the GRU with linear_before_reset, the RNN. A maker gives, for step t, the state h_t that the
// products read and the cell functor of the step (the same functor as the per-step loop's).
// ex.recurrence returns false when it cannot (batch too large, w_hh too large for the
// device's shared memory, no cooperative launch), and the loop runs step by step.
struct RecurrenceShape {
    std::int64_t T, B, H, R, G;
};

template <typename T>
struct LstmStepMaker {
    std::int64_t H, B;
    const std::int32_t* lengths;
    const T* gx;
    T* rec;
    StateSequence<T> h, c;
    const T* peepholes;
    bool cifg;
    T clip;
    T* gates;  // cache base or null
    T* ys;

    RNNKIT_HD const T* h_prev(std::int64_t t) const { return h.at(t); }
    RNNKIT_HD LstmForwardStep<T> step(std::int64_t t) const {
        const std::int64_t GH = 4 * H;
        return {H,
                t,
                lengths,
                gx + t * B * GH,
                rec,
                c.at(t),
                h.at(t),
                peepholes,
                cifg,
                clip,
                gates != nullptr ? gates + t * B * GH : nullptr,
                c.at(t + 1),
                nullptr,
                h.at(t + 1),
                ys + t * B * H};
    }
};

template <typename T>
struct GruStepMaker {
    std::int64_t H, B;
    const std::int32_t* lengths;
    const T* gx;
    T* rec;
    const T* b_hn;
    StateSequence<T> h;
    T clip;
    T* gates;  // cache bases or null
    T* hn;
    T* ys;

    RNNKIT_HD const T* h_prev(std::int64_t t) const { return h.at(t); }
    RNNKIT_HD GruForwardStep<T> step(std::int64_t t) const {
        const std::int64_t GH = 3 * H;
        return {H,
                t,
                lengths,
                gx + t * B * GH,
                rec,
                b_hn,
                h.at(t),
                clip,
                gates != nullptr ? gates + t * B * GH : nullptr,
                hn != nullptr ? hn + t * B * H : nullptr,
                h.at(t + 1),
                ys + t * B * H};
    }
};

template <typename T>
struct RnnStepMaker {
    std::int64_t H, B;
    const std::int32_t* lengths;
    const T* gx;
    T* rec;
    StateSequence<T> h;
    Activation act;
    T clip;
    T* ys;

    RNNKIT_HD const T* h_prev(std::int64_t t) const { return h.at(t); }
    RNNKIT_HD RnnForwardStep<T> step(std::int64_t t) const {
        return {H,       t,   lengths, gx + t * B * H, rec,
                h.at(t), act, clip,    h.at(t + 1),    ys + t * B * H};
    }
};

// The backward time loop as one persistent kernel (ex.recurrence_backward), for the same
// cells: each block keeps the columns of w_hh of its hidden units. The cell backward of step
// t (the block's units) writes the gate gradients dg_t and restarts dh_run in the rows it
// consumed; after a grid-wide barrier each block adds dg_t . w_hh[:, its units] to its units
// of dh_run, which is all that the cell backward of step t-1 reads. A maker gives
// products(t), the gradients [B, G*H] that multiply w_hh after step t, and step(t), the
// functor of the per-step loop.
template <typename T>
struct LstmBackStepMaker {
    std::int64_t H, B;
    const std::int32_t* lengths;
    const T* gates;  // cache bases
    const T* c;
    const T* peepholes;
    bool cifg;
    T clip;
    const T* dys;  // [T, B, H] or null
    T* dh_run;
    T* dc_run;
    T* dgates;  // [T, B, 4H]

    RNNKIT_HD const T* products(std::int64_t t) const { return dgates + t * B * 4 * H; }
    RNNKIT_HD LstmBackwardStep<T> step(std::int64_t t) const {
        const std::int64_t GH = 4 * H;
        return {H,
                t,
                lengths,
                gates + t * B * GH,
                c + (t + 1) * B * H,
                c + t * B * H,
                peepholes,
                cifg,
                clip,
                nullptr,
                dys != nullptr ? dys + t * B * H : nullptr,
                dh_run,
                dc_run,
                dgates + t * B * GH};
    }
};

template <typename T>
struct GruBackStepMaker {
    std::int64_t H, B;
    const std::int32_t* lengths;
    const T* gates;  // cache bases
    const T* hn;
    const T* h;
    T clip;
    const T* dys;  // [T, B, H] or null
    T* dh_run;
    T* dgx;  // [T, B, 3H]
    T* dgh;  // [T, B, 3H]: what multiplies w_hh

    RNNKIT_HD const T* products(std::int64_t t) const { return dgh + t * B * 3 * H; }
    RNNKIT_HD GruBackwardStep<T> step(std::int64_t t) const {
        const std::int64_t GH = 3 * H;
        return {H,
                t,
                lengths,
                gates + t * B * GH,
                hn + t * B * H,
                h + t * B * H,
                clip,
                dys != nullptr ? dys + t * B * H : nullptr,
                dh_run,
                dgx + t * B * GH,
                dgh + t * B * GH};
    }
};

template <typename T>
struct RnnBackStepMaker {
    std::int64_t H, B;
    const std::int32_t* lengths;
    const T* h;  // cache base [T+1, B, H]
    Activation act;
    T clip;
    const T* dys;  // [T, B, H] or null
    T* dh_run;
    T* dgates;  // [T, B, H]

    RNNKIT_HD const T* products(std::int64_t t) const { return dgates + t * B * H; }
    RNNKIT_HD RnnBackwardStep<T> step(std::int64_t t) const {
        return {H,
                t,
                lengths,
                h + (t + 1) * B * H,
                act,
                clip,
                dys != nullptr ? dys + t * B * H : nullptr,
                dh_run,
                dgates + t * B * H};
    }
};

template <class Exec, typename T>
StateSequence<T> state_sequence(Workspace<Exec>& ws, T* cache, std::int64_t B, std::int64_t width) {
    if (cache != nullptr) return {cache, B * width, {nullptr, nullptr}};
    return {nullptr, 0, {ws.template get<T>(B * width), ws.template get<T>(B * width)}};
}

// The input projection of all steps, gx [T*B, G*H] = xs . w_ih^T + b_ih + b_hh[:fold].
template <class Exec, typename T>
void input_projection(Exec& ex, const Dims& d, std::int64_t GH, const T* xs, const Weights<T>& w,
                      std::int64_t fold, T* gx) {
    const std::int64_t rows = d.T * d.B;
    mm_nt(ex, rows, GH, d.I, xs, d.I, w.w_ih, d.I, T(0), gx, GH);
    if (w.b_ih != nullptr || w.b_hh != nullptr) {
        ex.for_each(rows * GH, AddBias<T>{GH, fold, w.b_ih, w.b_hh, gx});
    }
}

// x (or dy) in step order: reversed per row for a reverse layer, else as given.
template <class Exec, typename T>
const T* in_step_order(Exec& ex, Workspace<Exec>& ws, const Dims& d, const std::int32_t* lengths,
                       bool reverse, const T* src, std::int64_t width, T* into = nullptr) {
    if (!reverse || src == nullptr) return src;
    T* dst = into != nullptr ? into : ws.template get<T>(d.T * d.B * width);
    ex.for_each(d.T * d.B * width, ReverseRows<T>{d.T, d.B, width, lengths, src, dst});
    return dst;
}

template <class Exec, typename T>
void zero_weight_grads(Exec& ex, Cell cell, const Dims& d, const Grads<T>& g) {
    const std::int64_t GH = gate_count(cell) * d.H;
    copy_or_zero<Exec, T>(ex, g.dw_ih, nullptr, GH * d.I);
    copy_or_zero<Exec, T>(ex, g.dw_hh, nullptr, GH * d.R);
    copy_or_zero<Exec, T>(ex, g.db_ih, nullptr, GH);
    copy_or_zero<Exec, T>(ex, g.db_hh, nullptr, GH);
    copy_or_zero<Exec, T>(ex, g.dw_hr, nullptr, d.R * d.H);
    copy_or_zero<Exec, T>(ex, g.dpeepholes, nullptr, 3 * d.H);
}

// After the time loop: dx, dw_ih and db_ih from the input-side gate gradients dgx [T*B, G*H].
template <class Exec, typename T>
void input_side_grads(Exec& ex, Workspace<Exec>& ws, const Dims& d, std::int64_t GH,
                      const std::int32_t* lengths, bool reverse, const T* xs, const Weights<T>& w,
                      const T* dgx, T* dx, const Grads<T>& g) {
    const std::int64_t rows = d.T * d.B;
    T* dxs = reverse ? ws.template get<T>(rows * d.I) : dx;
    mm_nn(ex, rows, d.I, GH, dgx, GH, w.w_ih, d.I, T(0), dxs, d.I);
    if (reverse) ex.for_each(rows * d.I, ReverseRows<T>{d.T, d.B, d.I, lengths, dxs, dx});
    mm_tn(ex, GH, d.I, rows, dgx, GH, xs, d.I, T(0), g.dw_ih, d.I);
    if (g.db_ih != nullptr) column_sums<Exec, T>(ex, rows, GH, dgx, GH, nullptr, 0, g.db_ih);
}

// What every backward starts from: x and dy in step order, and the running gradient of the
// state (dh_n, or zeros) in a workspace buffer of [B, width].
template <typename T>
struct BackwardStart {
    const T* xs;
    const T* dys;
    T* dh_run;
};

template <class Exec, typename T>
BackwardStart<T> start_backward(Exec& ex, Workspace<Exec>& ws, const Dims& d,
                                const std::int32_t* lengths, const Options& o, const T* x,
                                const Cache<T>& cache, const T* dy, const T* dh_n,
                                std::int64_t width) {
    BackwardStart<T> start{o.reverse ? cache.x_rev : x,
                           in_step_order(ex, ws, d, lengths, o.reverse, dy, width),
                           ws.template get<T>(d.B * width)};
    copy_or_zero(ex, start.dh_run, dh_n, d.B * width);
    return start;
}

// ---------------------------------------------------------------------------------- LSTM
template <class Exec, typename T>
void lstm_forward(Exec& ex, const Dims& d, const std::int32_t* lengths, const Weights<T>& w,
                  const Options& o, const T* x, const T* h0, const T* c0, T* y, T* h_n, T* c_n,
                  const Cache<T>* cache) {
    const std::int64_t B = d.B, H = d.H, R = d.R, GH = 4 * H;
    const bool projected = w.w_hr != nullptr;
    Workspace<Exec> ws(ex);
    const StateSequence<T> h = state_sequence(ws, cache != nullptr ? cache->h : nullptr, B, R);
    const StateSequence<T> c = state_sequence(ws, cache != nullptr ? cache->c : nullptr, B, H);
    copy_or_zero(ex, h.at(0), h0, B * R);
    copy_or_zero(ex, c.at(0), c0, B * H);
    if (d.T > 0 && B > 0) {
        const T clip = static_cast<T>(o.clip);
        const T* xs = in_step_order(ex, ws, d, lengths, o.reverse, x, d.I,
                                    cache != nullptr ? cache->x_rev : nullptr);
        T* gx = ws.template get<T>(d.T * B * GH);
        input_projection(ex, d, GH, xs, w, GH, gx);
        T* rec = ws.template get<T>(B * GH);
        T* ys = o.reverse ? ws.template get<T>(d.T * B * R) : y;
        T* m_scratch = projected && cache == nullptr ? ws.template get<T>(B * H) : nullptr;
        const RecurrenceShape rs{d.T, B, H, R, 4};
        const bool fused =
            !projected &&
            ex.recurrence(
                rs, w.w_hh, rec,
                LstmStepMaker<T>{H, B, lengths, gx, rec, h, c, w.peepholes, o.input_forget, clip,
                                 cache != nullptr ? cache->gates : nullptr, ys});
        for (std::int64_t t = 0; t < d.T && !fused; ++t) {
            T* hp = h.at(t);
            T* hn = h.at(t + 1);
            mm_nt(ex, B, GH, R, hp, R, w.w_hh, R, T(0), rec, GH);
            T* m = projected ? (cache != nullptr ? cache->m + t * B * H : m_scratch) : nullptr;
            ex.for_each(B * H,
                        LstmForwardStep<T>{H, t, lengths, gx + t * B * GH, rec, c.at(t), hp,
                                           w.peepholes, o.input_forget, clip,
                                           cache != nullptr ? cache->gates + t * B * GH : nullptr,
                                           c.at(t + 1), m, projected ? nullptr : hn,
                                           projected ? nullptr : ys + t * B * R});
            if (projected) {
                mm_nt(ex, B, R, H, m, H, w.w_hr, H, T(0), hn, R);
                ex.for_each(B * R, CarryProjectedState<T>{R, t, lengths, hp, hn, ys + t * B * R});
            }
        }
        if (o.reverse) ex.for_each(d.T * B * R, ReverseRows<T>{d.T, B, R, lengths, ys, y});
    }
    copy_or_zero<Exec, T>(ex, h_n, h.at(d.T), B * R);
    copy_or_zero<Exec, T>(ex, c_n, c.at(d.T), B * H);
}

template <class Exec, typename T>
void lstm_backward(Exec& ex, const Dims& d, const std::int32_t* lengths, const Weights<T>& w,
                   const Options& o, const T* x, const Cache<T>& cache, const T* dy, const T* dh_n,
                   const T* dc_n, T* dx, T* dh0, T* dc0, const Grads<T>& g) {
    const std::int64_t B = d.B, H = d.H, R = d.R, GH = 4 * H, rows = d.T * d.B;
    const bool projected = w.w_hr != nullptr;
    if (rows == 0) {
        copy_or_zero(ex, dh0, dh_n, B * R);
        copy_or_zero(ex, dc0, dc_n, B * H);
        zero_weight_grads(ex, Cell::Lstm, d, g);
        return;
    }
    const T clip = static_cast<T>(o.clip);
    Workspace<Exec> ws(ex);
    const auto [xs, dys, dh_run] = start_backward(ex, ws, d, lengths, o, x, cache, dy, dh_n, R);
    T* dgates = ws.template get<T>(rows * GH);
    T* dc_run = ws.template get<T>(B * H);
    copy_or_zero(ex, dc_run, dc_n, B * H);
    T* dh_total = projected ? ws.template get<T>(rows * R) : nullptr;
    T* dm = projected ? ws.template get<T>(B * H) : nullptr;
    const RecurrenceShape rs{d.T, B, H, R, 4};
    const bool fused =
        !projected && ex.recurrence_backward(
                          rs, w.w_hh, dh_run,
                          LstmBackStepMaker<T>{H, B, lengths, cache.gates, cache.c, w.peepholes,
                                               o.input_forget, clip, dys, dh_run, dc_run, dgates});
    for (std::int64_t t = d.T - 1; t >= 0 && !fused; --t) {
        const T* dy_t = dys != nullptr ? dys + t * B * R : nullptr;
        if (projected) {
            T* total = dh_total + t * B * R;
            ex.for_each(B * R, SplitProjectedGrad<T>{R, t, lengths, dy_t, dh_run, total});
            mm_nn(ex, B, H, R, total, R, w.w_hr, H, T(0), dm, H);
        }
        T* dg = dgates + t * B * GH;
        ex.for_each(B * H, LstmBackwardStep<T>{H, t, lengths, cache.gates + t * B * GH,
                                               cache.c + (t + 1) * B * H, cache.c + t * B * H,
                                               w.peepholes, o.input_forget, clip, dm,
                                               projected ? nullptr : dy_t, dh_run, dc_run, dg});
        mm_nn(ex, B, R, GH, dg, GH, w.w_hh, R, T(1), dh_run, R);
    }
    copy_or_zero<Exec, T>(ex, dh0, dh_run, B * R);
    copy_or_zero<Exec, T>(ex, dc0, dc_run, B * H);
    input_side_grads(ex, ws, d, GH, lengths, o.reverse, xs, w, dgates, dx, g);
    mm_tn(ex, GH, R, rows, dgates, GH, cache.h, R, T(0), g.dw_hh, R);
    if (g.db_hh != nullptr) {
        if (g.db_ih != nullptr) {
            ex.copy(g.db_hh, g.db_ih, GH * sizeof(T));
        } else {
            column_sums<Exec, T>(ex, rows, GH, dgates, GH, nullptr, 0, g.db_hh);
        }
    }
    if (projected) mm_tn(ex, R, H, rows, dh_total, R, cache.m, H, T(0), g.dw_hr, H);
    if (g.dpeepholes != nullptr) {
        // p_i and p_f multiply the previous cell state, p_o the new one.
        column_sums<Exec, T>(ex, rows, H, dgates, GH, cache.c, H, g.dpeepholes);
        column_sums<Exec, T>(ex, rows, H, dgates + H, GH, cache.c, H, g.dpeepholes + H);
        column_sums<Exec, T>(ex, rows, H, dgates + 3 * H, GH, cache.c + B * H, H,
                             g.dpeepholes + 2 * H);
    }
}

// ----------------------------------------------------------------------------------- GRU
template <class Exec, typename T>
void gru_forward(Exec& ex, const Dims& d, const std::int32_t* lengths, const Weights<T>& w,
                 const Options& o, const T* x, const T* h0, T* y, T* h_n, const Cache<T>* cache) {
    const std::int64_t B = d.B, H = d.H, GH = 3 * H;
    Workspace<Exec> ws(ex);
    const StateSequence<T> h = state_sequence(ws, cache != nullptr ? cache->h : nullptr, B, H);
    copy_or_zero(ex, h.at(0), h0, B * H);
    if (d.T > 0 && B > 0) {
        const T clip = static_cast<T>(o.clip);
        const bool lbr = o.linear_before_reset;
        const T* xs = in_step_order(ex, ws, d, lengths, o.reverse, x, d.I,
                                    cache != nullptr ? cache->x_rev : nullptr);
        T* gx = ws.template get<T>(d.T * B * GH);
        // b_hn sits inside r * (W_hn h + b_hn) when the reset follows the matmul: not foldable.
        input_projection(ex, d, GH, xs, w, lbr ? 2 * H : GH, gx);
        T* rec = ws.template get<T>(B * GH);
        T* ys = o.reverse ? ws.template get<T>(d.T * B * H) : y;
        T* gate_scratch = cache == nullptr && !lbr ? ws.template get<T>(B * GH) : nullptr;
        T* rh_scratch = cache == nullptr && !lbr ? ws.template get<T>(B * H) : nullptr;
        const T* b_hn = w.b_hh != nullptr ? w.b_hh + 2 * H : nullptr;
        const RecurrenceShape rs{d.T, B, H, H, 3};
        const bool fused =
            lbr && ex.recurrence(rs, w.w_hh, rec,
                                 GruStepMaker<T>{H, B, lengths, gx, rec, b_hn, h, clip,
                                                 cache != nullptr ? cache->gates : nullptr,
                                                 cache != nullptr ? cache->hn : nullptr, ys});
        for (std::int64_t t = 0; t < d.T && !fused; ++t) {
            T* hp = h.at(t);
            T* hn = h.at(t + 1);
            const T* gx_t = gx + t * B * GH;
            T* gates = cache != nullptr ? cache->gates + t * B * GH : gate_scratch;
            T* hn_cache = cache != nullptr ? cache->hn + t * B * H : rh_scratch;
            if (lbr) {
                mm_nt(ex, B, GH, H, hp, H, w.w_hh, H, T(0), rec, GH);
                ex.for_each(B * H, GruForwardStep<T>{H, t, lengths, gx_t, rec, b_hn, hp, clip,
                                                     gates, hn_cache, hn, ys + t * B * H});
            } else {
                mm_nt(ex, B, 2 * H, H, hp, H, w.w_hh, H, T(0), rec, GH);
                ex.for_each(B * H,
                            GruResetStep<T>{H, t, lengths, gx_t, rec, hp, clip, gates, hn_cache});
                mm_nt(ex, B, H, H, hn_cache, H, w.w_hh + 2 * H * H, H, T(0), rec + 2 * H, GH);
                ex.for_each(B * H, GruNewStep<T>{H, t, lengths, gx_t, rec, hp, clip, gates, hn,
                                                 ys + t * B * H});
            }
        }
        if (o.reverse) ex.for_each(d.T * B * H, ReverseRows<T>{d.T, B, H, lengths, ys, y});
    }
    copy_or_zero<Exec, T>(ex, h_n, h.at(d.T), B * H);
}

template <class Exec, typename T>
void gru_backward(Exec& ex, const Dims& d, const std::int32_t* lengths, const Weights<T>& w,
                  const Options& o, const T* x, const Cache<T>& cache, const T* dy, const T* dh_n,
                  T* dx, T* dh0, const Grads<T>& g) {
    const std::int64_t B = d.B, H = d.H, GH = 3 * H, rows = d.T * d.B;
    if (rows == 0) {
        copy_or_zero(ex, dh0, dh_n, B * H);
        zero_weight_grads(ex, Cell::Gru, d, g);
        return;
    }
    const T clip = static_cast<T>(o.clip);
    Workspace<Exec> ws(ex);
    const auto [xs, dys, dh_run] = start_backward(ex, ws, d, lengths, o, x, cache, dy, dh_n, H);
    T* dgx = ws.template get<T>(rows * GH);
    if (o.linear_before_reset) {
        T* dgh = ws.template get<T>(rows * GH);
        const RecurrenceShape rs{d.T, B, H, H, 3};
        const bool fused =
            ex.recurrence_backward(rs, w.w_hh, dh_run,
                                   GruBackStepMaker<T>{H, B, lengths, cache.gates, cache.hn,
                                                       cache.h, clip, dys, dh_run, dgx, dgh});
        for (std::int64_t t = d.T - 1; t >= 0 && !fused; --t) {
            const T* dy_t = dys != nullptr ? dys + t * B * H : nullptr;
            T* dgh_t = dgh + t * B * GH;
            ex.for_each(B * H, GruBackwardStep<T>{H, t, lengths, cache.gates + t * B * GH,
                                                  cache.hn + t * B * H, cache.h + t * B * H, clip,
                                                  dy_t, dh_run, dgx + t * B * GH, dgh_t});
            mm_nn(ex, B, H, GH, dgh_t, GH, w.w_hh, H, T(1), dh_run, H);
        }
        mm_tn(ex, GH, H, rows, dgh, GH, cache.h, H, T(0), g.dw_hh, H);
        if (g.db_hh != nullptr) column_sums<Exec, T>(ex, rows, GH, dgh, GH, nullptr, 0, g.db_hh);
    } else {
        T* drh = ws.template get<T>(B * H);
        for (std::int64_t t = d.T - 1; t >= 0; --t) {
            const T* dy_t = dys != nullptr ? dys + t * B * H : nullptr;
            const T* gates = cache.gates + t * B * GH;
            const T* hp = cache.h + t * B * H;
            T* dgx_t = dgx + t * B * GH;
            ex.for_each(B * H,
                        GruBackwardNewStep<T>{H, t, lengths, gates, hp, clip, dy_t, dh_run, dgx_t});
            mm_nn(ex, B, H, H, dgx_t + 2 * H, GH, w.w_hh + 2 * H * H, H, T(0), drh, H);
            ex.for_each(
                B * H, GruBackwardResetStep<T>{H, t, lengths, gates, hp, clip, drh, dh_run, dgx_t});
            mm_nn(ex, B, H, 2 * H, dgx_t, GH, w.w_hh, H, T(1), dh_run, H);
        }
        // Rows r, z of w_hh multiply h; rows n multiply r * h (cached in hn).
        mm_tn(ex, 2 * H, H, rows, dgx, GH, cache.h, H, T(0), g.dw_hh, H);
        mm_tn(ex, H, H, rows, dgx + 2 * H, GH, cache.hn, H, T(0), g.dw_hh + 2 * H * H, H);
        if (g.db_hh != nullptr) column_sums<Exec, T>(ex, rows, GH, dgx, GH, nullptr, 0, g.db_hh);
    }
    copy_or_zero<Exec, T>(ex, dh0, dh_run, B * H);
    input_side_grads(ex, ws, d, GH, lengths, o.reverse, xs, w, dgx, dx, g);
}

// ----------------------------------------------------------------------------------- RNN
template <class Exec, typename T>
void rnn_forward(Exec& ex, const Dims& d, const std::int32_t* lengths, const Weights<T>& w,
                 const Options& o, const T* x, const T* h0, T* y, T* h_n, const Cache<T>* cache) {
    const std::int64_t B = d.B, H = d.H;
    Workspace<Exec> ws(ex);
    const StateSequence<T> h = state_sequence(ws, cache != nullptr ? cache->h : nullptr, B, H);
    copy_or_zero(ex, h.at(0), h0, B * H);
    if (d.T > 0 && B > 0) {
        const T clip = static_cast<T>(o.clip);
        const T* xs = in_step_order(ex, ws, d, lengths, o.reverse, x, d.I,
                                    cache != nullptr ? cache->x_rev : nullptr);
        T* gx = ws.template get<T>(d.T * B * H);
        input_projection(ex, d, H, xs, w, H, gx);
        T* rec = ws.template get<T>(B * H);
        T* ys = o.reverse ? ws.template get<T>(d.T * B * H) : y;
        const RecurrenceShape rs{d.T, B, H, H, 1};
        const bool fused = ex.recurrence(
            rs, w.w_hh, rec, RnnStepMaker<T>{H, B, lengths, gx, rec, h, o.act, clip, ys});
        for (std::int64_t t = 0; t < d.T && !fused; ++t) {
            T* hp = h.at(t);
            mm_nt(ex, B, H, H, hp, H, w.w_hh, H, T(0), rec, H);
            ex.for_each(B * H, RnnForwardStep<T>{H, t, lengths, gx + t * B * H, rec, hp, o.act,
                                                 clip, h.at(t + 1), ys + t * B * H});
        }
        if (o.reverse) ex.for_each(d.T * B * H, ReverseRows<T>{d.T, B, H, lengths, ys, y});
    }
    copy_or_zero<Exec, T>(ex, h_n, h.at(d.T), B * H);
}

template <class Exec, typename T>
void rnn_backward(Exec& ex, const Dims& d, const std::int32_t* lengths, const Weights<T>& w,
                  const Options& o, const T* x, const Cache<T>& cache, const T* dy, const T* dh_n,
                  T* dx, T* dh0, const Grads<T>& g) {
    const std::int64_t B = d.B, H = d.H, rows = d.T * d.B;
    if (rows == 0) {
        copy_or_zero(ex, dh0, dh_n, B * H);
        zero_weight_grads(ex, Cell::Rnn, d, g);
        return;
    }
    const T clip = static_cast<T>(o.clip);
    Workspace<Exec> ws(ex);
    const auto [xs, dys, dh_run] = start_backward(ex, ws, d, lengths, o, x, cache, dy, dh_n, H);
    T* dgates = ws.template get<T>(rows * H);
    const RecurrenceShape rs{d.T, B, H, H, 1};
    const bool fused = ex.recurrence_backward(
        rs, w.w_hh, dh_run,
        RnnBackStepMaker<T>{H, B, lengths, cache.h, o.act, clip, dys, dh_run, dgates});
    for (std::int64_t t = d.T - 1; t >= 0 && !fused; --t) {
        T* dg = dgates + t * B * H;
        ex.for_each(B * H,
                    RnnBackwardStep<T>{H, t, lengths, cache.h + (t + 1) * B * H, o.act, clip,
                                       dys != nullptr ? dys + t * B * H : nullptr, dh_run, dg});
        mm_nn(ex, B, H, H, dg, H, w.w_hh, H, T(1), dh_run, H);
    }
    copy_or_zero<Exec, T>(ex, dh0, dh_run, B * H);
    input_side_grads(ex, ws, d, H, lengths, o.reverse, xs, w, dgates, dx, g);
    mm_tn(ex, H, H, rows, dgates, H, cache.h, H, T(0), g.dw_hh, H);
    if (g.db_hh != nullptr) {
        if (g.db_ih != nullptr) {
            ex.copy(g.db_hh, g.db_ih, H * sizeof(T));
        } else {
            column_sums<Exec, T>(ex, rows, H, dgates, H, nullptr, 0, g.db_hh);
        }
    }
}

}  // namespace rnnkit::cuda
