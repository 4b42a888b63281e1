// LSTM time loops (forward t = 0..T-1, backward t = T-1..0) over one layer-direction.
//   i = sigmoid(.), f = sigmoid(.), g = tanh(.), o = sigmoid(.)  from  W_ih x + b_ih + W_hh h +
//   b_hh c' = f * c + i * g,   h' = o * tanh(c')
// Backward reads the activated gates and c from the cache; tanh(c') is recomputed rather
// than stored.
#include "bptt/engine.hpp"
#include "rnn/lstm_cell.hpp"

namespace rnnkit::bptt {

namespace {
constexpr std::int64_t G = 4;
}

template <typename T>
void lstm_sequence_forward(const SeqShape& s, const CellWeights<T>& w, const T* x, const T* h0,
                           const T* c0, T* y, T* h_n, T* c_n, const LstmCache<T>* cache) {
    using namespace detail;
    const std::int64_t B = s.B, H = s.H, GH = G * H, BH = B * H;
    const bool training = cache != nullptr;
    if (training) {
        copy_or_zero(cache->h, h0, BH);
        copy_or_zero(cache->c, c0, BH);
    }
    if (s.T == 0 || B == 0) {
        copy_or_zero(h_n, h0, BH);
        copy_or_zero(c_n, c0, BH);
        return;
    }
    const UnitBlocks blocks(H);
    const PackedWeights<T> pw(s, G, blocks, w, G);
    const std::int64_t chunk = chunk_steps(s, training);
    Buffer<T> pre_work(training ? 0 : chunk * B * GH);
    Buffer<T> zeros(h0 && c0 ? 0 : BH);
    if (!h0 || !c0) zeros.fill(T(0), BH);
    const T* h_init = h0 ? h0 : zeros.get();
    const T* c_init = c0 ? c0 : zeros.get();
    Buffer<T> c_work(training ? 0 : 2 * BH);  // inference: c ping-pong
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
                const T* c_prev = training ? cache->c + t * BH
                                           : (t == 0 ? c_init : c_work.get() + ((t - 1) & 1) * BH);
                T* c_out = training ? cache->c + (t + 1) * BH : c_work.get() + (t & 1) * BH;
                T* h_cache = training ? cache->h + (t + 1) * BH : nullptr;
                T* y_t = y + t * BH;
                for_each_owned(blocks.count, tid, nthreads, [&](std::int64_t k) {
                    const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                    const std::int64_t nc = G * nb;
                    blas::gemm<T>(false, true, B, nc, H, T(1), h_prev, H,
                                  pw.w_hh.get() + G * j0 * H, H, T(0), gh, nc);
                    for (std::int64_t b = 0; b < B; ++b) {
                        T* yo = y_t + b * H + j0;
                        rnn::lstm_cell_forward_row(nb, pre + b * GH + G * j0, gh + b * nc,
                                                   c_prev + b * H + j0, c_out + b * H + j0, yo,
                                                   training);
                        if (h_cache) std::memcpy(h_cache + b * H + j0, yo, nb * sizeof(T));
                    }
                });
                barrier();
            }
        }
    });
    std::memcpy(h_n, y + (s.T - 1) * BH, BH * sizeof(T));
    std::memcpy(c_n, training ? cache->c + s.T * BH : c_work.get() + ((s.T - 1) & 1) * BH,
                BH * sizeof(T));
}

template <typename T>
void lstm_sequence_backward(const SeqShape& s, const CellWeights<T>& w, const T* x,
                            const LstmCache<T>& cache, const T* dy, const T* dh_n, const T* dc_n,
                            T* dx, T* dh0, T* dc0, const WeightGrads<T>& dw) {
    using namespace detail;
    const std::int64_t B = s.B, H = s.H, GH = G * H, BH = B * H, rows = s.T * B;
    const UnitBlocks blocks(H);
    if (s.T == 0 || B == 0) {
        copy_or_zero(dh0, dh_n, BH);
        copy_or_zero(dc0, dc_n, BH);
        std::fill(dw.dw_ih, dw.dw_ih + GH * s.I, T(0));
        std::fill(dw.dw_hh, dw.dw_hh + GH * H, T(0));
        if (dw.db_ih) std::fill(dw.db_ih, dw.db_ih + GH, T(0));
        if (dw.db_hh) std::fill(dw.db_hh, dw.db_hh + GH, T(0));
        return;
    }
    const PackedWeights<T> pw(s, G, blocks, w, G);
    Buffer<T> dgates(rows * GH);  // [T, B, 4H] packed pre-activation gradients
    // dh0 doubles as the running dh (from step t+1's recurrent GEMM), dc0 as the running dc.
    copy_or_zero(dh0, dh_n, BH);
    copy_or_zero(dc0, dc_n, BH);
    const int threads = threads_for(2.0 * forward_flops(s, G));

    parallel_region(threads, [&](int tid, int nthreads) {
        for (std::int64_t t = s.T - 1; t >= 0; --t) {
            const T* gates = cache.gates + t * B * GH;
            const T* c_now = cache.c + (t + 1) * BH;
            const T* c_prev = cache.c + t * BH;
            const T* dy_t = dy ? dy + t * BH : nullptr;
            T* dg = dgates.get() + t * B * GH;
            for_each_owned(blocks.count, tid, nthreads, [&](std::int64_t k) {
                const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                for (std::int64_t b = 0; b < B; ++b) {
                    const std::int64_t o = b * H + j0;
                    T* dh = dh0 + o;
                    if (dy_t) add_into(nb, dy_t + o, dh);
                    rnn::lstm_cell_backward_row(nb, gates + b * GH + G * j0, c_now + o, c_prev + o,
                                                dh, dc0 + o, dg + b * GH + G * j0);
                }
            });
            barrier();  // the recurrent GEMM reads every block of dg
            for_each_owned(blocks.count, tid, nthreads, [&](std::int64_t k) {
                const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                blas::gemm<T>(false, false, B, nb, GH, T(1), dg, GH, pw.w_hh.get() + j0, H, T(0),
                              dh0 + j0, H);
            });
            // The next step's pointwise pass reads only this thread's own blocks of dh0.
        }
        barrier();
        for_each_owned(blocks.count, tid, nthreads, [&](std::int64_t k) {
            weight_grads_block(
                s, G, blocks, k, dgates.get(),
                [&](std::int64_t g, std::int64_t j0, std::int64_t nb) {
                    return std::pair<const T*, std::int64_t>(dgates.get() + G * j0 + g * nb, GH);
                },
                x, cache.h, dw);
        });
        input_grad_blocks(rows, s.I, GH, dgates.get(), pw.w_ih.get(), dx, tid, nthreads);
    });
}

#define RNNKIT_INSTANTIATE(T)                                                                      \
    template void lstm_sequence_forward<T>(const SeqShape&, const CellWeights<T>&, const T*,       \
                                           const T*, const T*, T*, T*, T*, const LstmCache<T>*);   \
    template void lstm_sequence_backward<T>(const SeqShape&, const CellWeights<T>&, const T*,      \
                                            const LstmCache<T>&, const T*, const T*, const T*, T*, \
                                            T*, T*, const WeightGrads<T>&);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit::bptt
