// GRU time loops, PyTorch/cuDNN formulation (reset applied after the recurrent matmul):
//   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//   hn = W_hn h + b_hn,  n = tanh(W_in x + b_in + r * hn),  h' = (1 - z) * n + z * h
// The cache keeps the activated r, z, n and hn; backward needs nothing else.
#include "bptt/engine.hpp"
#include "rnn/gru_cell.hpp"

namespace rnnkit::bptt {

namespace {
constexpr std::int64_t G = 3;
}

template <typename T>
void gru_sequence_forward(const SeqShape& s, const CellWeights<T>& w, const T* x, const T* h0, T* y,
                          T* h_n, const GruCache<T>* cache) {
    using namespace detail;
    const std::int64_t B = s.B, H = s.H, GH = G * H, BH = B * H;
    const bool training = cache != nullptr;
    if (training) copy_or_zero(cache->h, h0, BH);
    if (s.T == 0 || B == 0) {
        copy_or_zero(h_n, h0, BH);
        return;
    }
    const UnitBlocks blocks(H);
    // b_hh folds into the projection for r and z only; b_hn stays inside r * (W_hn h + b_hn).
    const PackedWeights<T> pw(s, G, blocks, w, 2);
    const T* b_hn = w.b_hh ? w.b_hh + 2 * H : nullptr;
    const std::int64_t chunk = chunk_steps(s, training);
    Buffer<T> pre_work(training ? 0 : chunk * B * GH);
    Buffer<T> zeros(h0 ? 0 : BH);
    if (!h0) zeros.fill(T(0), BH);
    const T* h_init = h0 ? h0 : zeros.get();
    const int threads = threads_for(forward_flops(s, G));
    const std::int64_t scratch_size = B * G * blocks.size;
    Buffer<T> scratch(static_cast<std::int64_t>(threads) * scratch_size);

    parallel_region(threads, [&](int tid, int nthreads) {
        T* gh = scratch.get() + tid * scratch_size;
        for (std::int64_t t0 = 0; t0 < s.T; t0 += chunk) {
            const std::int64_t steps = std::min(chunk, s.T - t0);
            T* pre_chunk = training ? cache->gates + t0 * B * GH : pre_work.get();
            for_each_owned(blocks.count, tid, nthreads, [&](std::int64_t k) {
                input_projection_block(steps * B, s.I, G, blocks, k, x + t0 * B * s.I, pw,
                                       pre_chunk);
            });
            for (std::int64_t t = t0; t < t0 + steps; ++t) {
                T* pre = pre_chunk + (t - t0) * B * GH;
                const T* h_prev =
                    training ? cache->h + t * BH : (t == 0 ? h_init : y + (t - 1) * BH);
                T* h_cache = training ? cache->h + (t + 1) * BH : nullptr;
                T* hn_cache = training ? cache->hn + t * BH : nullptr;
                T* y_t = y + t * BH;
                for_each_owned(blocks.count, tid, nthreads, [&](std::int64_t k) {
                    const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                    const std::int64_t nc = G * nb;
                    blas::gemm<T>(false, true, B, nc, H, T(1), h_prev, H,
                                  pw.w_hh.get() + G * j0 * H, H, T(0), gh, nc);
                    for (std::int64_t b = 0; b < B; ++b) {
                        T* yo = y_t + b * H + j0;
                        rnn::gru_cell_forward_row(nb, pre + b * GH + G * j0, gh + b * nc,
                                                  b_hn ? b_hn + j0 : nullptr, h_prev + b * H + j0,
                                                  yo, hn_cache ? hn_cache + b * H + j0 : nullptr);
                        if (h_cache) std::memcpy(h_cache + b * H + j0, yo, nb * sizeof(T));
                    }
                });
                barrier();
            }
        }
    });
    std::memcpy(h_n, y + (s.T - 1) * BH, BH * sizeof(T));
}

template <typename T>
void gru_sequence_backward(const SeqShape& s, const CellWeights<T>& w, const T* x,
                           const GruCache<T>& cache, const T* dy, const T* dh_n, T* dx, T* dh0,
                           const WeightGrads<T>& dw) {
    using namespace detail;
    const std::int64_t B = s.B, H = s.H, GH = G * H, BH = B * H, rows = s.T * B;
    const UnitBlocks blocks(H);
    if (s.T == 0 || B == 0) {
        copy_or_zero(dh0, dh_n, BH);
        std::fill(dw.dw_ih, dw.dw_ih + GH * s.I, T(0));
        std::fill(dw.dw_hh, dw.dw_hh + GH * H, T(0));
        if (dw.db_ih) std::fill(dw.db_ih, dw.db_ih + GH, T(0));
        if (dw.db_hh) std::fill(dw.db_hh, dw.db_hh + GH, T(0));
        return;
    }
    const PackedWeights<T> pw(s, G, blocks, w, 2);
    // Input side: d(pre-activation) of r, z, n for all steps. Recurrent side differs only in
    // n (d hn = dn_pre * r), kept in its own [T, B, H]; each step's full recurrent-side row
    // for the dh GEMM lives in dgh_step.
    Buffer<T> dgx(rows * GH);
    Buffer<T> dhn(rows * H);
    Buffer<T> dgh_step(B * GH);
    copy_or_zero(dh0, dh_n, BH);  // running dh
    const int threads = threads_for(2.0 * forward_flops(s, G));

    parallel_region(threads, [&](int tid, int nthreads) {
        for (std::int64_t t = s.T - 1; t >= 0; --t) {
            const T* gates = cache.gates + t * B * GH;
            const T* hn_t = cache.hn + t * BH;
            const T* h_prev = cache.h + t * BH;
            const T* dy_t = dy ? dy + t * BH : nullptr;
            T* dg = dgx.get() + t * B * GH;
            T* dhn_t = dhn.get() + t * BH;
            for_each_owned(blocks.count, tid, nthreads, [&](std::int64_t k) {
                const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                for (std::int64_t b = 0; b < B; ++b) {
                    const std::int64_t o = b * H + j0;
                    T* dh = dh0 + o;
                    if (dy_t) add_into(nb, dy_t + o, dh);
                    rnn::gru_cell_backward_row(nb, gates + b * GH + G * j0, hn_t + o, h_prev + o,
                                               dh, dg + b * GH + G * j0,
                                               dgh_step.get() + b * GH + G * j0, dhn_t + o);
                }
            });
            barrier();  // the recurrent GEMM reads every block of dgh_step
            for_each_owned(blocks.count, tid, nthreads, [&](std::int64_t k) {
                const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                blas::gemm<T>(false, false, B, nb, GH, T(1), dgh_step.get(), GH, pw.w_hh.get() + j0,
                              H, T(1), dh0 + j0, H);
            });
            // dgh_step is rewritten at the next step only after every GEMM of this step
            // has read it.
            barrier();
        }
        for_each_owned(blocks.count, tid, nthreads, [&](std::int64_t k) {
            weight_grads_block(
                s, G, blocks, k, dgx.get(),
                [&](std::int64_t g, std::int64_t j0, std::int64_t nb) {
                    if (g == 2) return std::pair<const T*, std::int64_t>(dhn.get() + j0, H);
                    return std::pair<const T*, std::int64_t>(dgx.get() + G * j0 + g * nb, GH);
                },
                x, cache.h, dw);
        });
        input_grad_blocks(rows, s.I, GH, dgx.get(), pw.w_ih.get(), dx, tid, nthreads);
    });
}

#define RNNKIT_INSTANTIATE(T)                                                                \
    template void gru_sequence_forward<T>(const SeqShape&, const CellWeights<T>&, const T*,  \
                                          const T*, T*, T*, const GruCache<T>*);             \
    template void gru_sequence_backward<T>(const SeqShape&, const CellWeights<T>&, const T*, \
                                           const GruCache<T>&, const T*, const T*, T*, T*,   \
                                           const WeightGrads<T>&);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit::bptt
