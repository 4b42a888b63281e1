// Vanilla RNN time loops: h' = act(W_ih x + b_ih + W_hh h + b_hh), act = tanh or relu.
// With one gate the packed layout is PyTorch's own, so in training the input projection is
// written straight into h[1..T] of the cache and each step activates it in place.
#include "bptt/engine.hpp"
#include "rnn/rnn_cell.hpp"

namespace rnnkit::bptt {

namespace {
constexpr std::int64_t G = 1;
}  // namespace

template <typename T>
void rnn_sequence_forward(const SeqShape& s, const CellWeights<T>& w, rnn::Nonlinearity act,
                          const T* x, const T* h0, T* y, T* h_n, const RnnCache<T>* cache) {
    using namespace detail;
    const std::int64_t B = s.B, H = s.H, BH = B * H;
    const bool training = cache != nullptr;
    if (training) copy_or_zero(cache->h, h0, BH);
    if (s.T == 0 || B == 0) {
        copy_or_zero(h_n, h0, BH);
        return;
    }
    const UnitBlocks blocks(H);
    const PackedWeights<T> pw(s, G, blocks, w, G);
    const std::int64_t chunk = chunk_steps(s, training);
    Buffer<T> pre_work(training ? 0 : chunk * BH);
    Buffer<T> zeros(h0 ? 0 : BH);
    if (!h0) zeros.fill(T(0), BH);
    const T* h_init = h0 ? h0 : zeros.get();
    const int threads = threads_for(forward_flops(s, G));
    const std::int64_t scratch_size = B * blocks.size;
    Buffer<T> scratch(static_cast<std::int64_t>(threads) * scratch_size);

    parallel_region(threads, [&](int tid, int nthreads) {
        T* gh = scratch.get() + tid * scratch_size;
        for (std::int64_t t0 = 0; t0 < s.T; t0 += chunk) {
            const std::int64_t steps = std::min(chunk, s.T - t0);
            T* pre_chunk = training ? cache->h + (t0 + 1) * BH : pre_work.get();
            for_each_owned(blocks.count, tid, nthreads, [&](std::int64_t k) {
                input_projection_block(steps * B, s.I, G, blocks, k, x + t0 * B * s.I, pw,
                                       pre_chunk);
            });
            for (std::int64_t t = t0; t < t0 + steps; ++t) {
                T* pre = pre_chunk + (t - t0) * BH;
                const T* h_prev =
                    training ? cache->h + t * BH : (t == 0 ? h_init : y + (t - 1) * BH);
                T* y_t = y + t * BH;
                for_each_owned(blocks.count, tid, nthreads, [&](std::int64_t k) {
                    const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                    blas::gemm<T>(false, true, B, nb, H, T(1), h_prev, H, pw.w_hh.get() + j0 * H, H,
                                  T(0), gh, nb);
                    for (std::int64_t b = 0; b < B; ++b) {
                        T* out = training ? pre + b * H + j0 : y_t + b * H + j0;
                        rnn::with_nonlinearity(act, [&](auto a) {
                            rnn::rnn_cell_forward_row<T, decltype(a)::value>(nb, pre + b * H + j0,
                                                                             gh + b * nb, out);
                        });
                        if (training) std::memcpy(y_t + b * H + j0, out, nb * sizeof(T));
                    }
                });
                barrier();
            }
        }
    });
    std::memcpy(h_n, y + (s.T - 1) * BH, BH * sizeof(T));
}

template <typename T>
void rnn_sequence_backward(const SeqShape& s, const CellWeights<T>& w, rnn::Nonlinearity act,
                           const T* x, const RnnCache<T>& cache, const T* dy, const T* dh_n, T* dx,
                           T* dh0, const WeightGrads<T>& dw) {
    using namespace detail;
    const std::int64_t B = s.B, H = s.H, BH = B * H, rows = s.T * B;
    const UnitBlocks blocks(H);
    if (s.T == 0 || B == 0) {
        copy_or_zero(dh0, dh_n, BH);
        std::fill(dw.dw_ih, dw.dw_ih + H * s.I, T(0));
        std::fill(dw.dw_hh, dw.dw_hh + H * H, T(0));
        if (dw.db_ih) std::fill(dw.db_ih, dw.db_ih + H, T(0));
        if (dw.db_hh) std::fill(dw.db_hh, dw.db_hh + H, T(0));
        return;
    }
    const PackedWeights<T> pw(s, G, blocks, w, G);
    Buffer<T> dgates(rows * H);  // [T, B, H] pre-activation gradients
    copy_or_zero(dh0, dh_n, BH);
    const int threads = threads_for(2.0 * forward_flops(s, G));

    parallel_region(threads, [&](int tid, int nthreads) {
        for (std::int64_t t = s.T - 1; t >= 0; --t) {
            const T* h_t = cache.h + (t + 1) * BH;
            const T* dy_t = dy ? dy + t * BH : nullptr;
            T* dg = dgates.get() + t * BH;
            for_each_owned(blocks.count, tid, nthreads, [&](std::int64_t k) {
                const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                for (std::int64_t b = 0; b < B; ++b) {
                    const std::int64_t o = b * H + j0;
                    if (dy_t) add_into(nb, dy_t + o, dh0 + o);
                    rnn::with_nonlinearity(act, [&](auto a) {
                        rnn::rnn_cell_backward_row<T, decltype(a)::value>(nb, h_t + o, dh0 + o,
                                                                          dg + o);
                    });
                }
            });
            barrier();
            for_each_owned(blocks.count, tid, nthreads, [&](std::int64_t k) {
                const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                blas::gemm<T>(false, false, B, nb, H, T(1), dg, H, pw.w_hh.get() + j0, H, T(0),
                              dh0 + j0, H);
            });
        }
        barrier();
        for_each_owned(blocks.count, tid, nthreads, [&](std::int64_t k) {
            weight_grads_block(
                s, G, blocks, k, dgates.get(),
                [&](std::int64_t, std::int64_t j0, std::int64_t) {
                    return std::pair<const T*, std::int64_t>(dgates.get() + j0, H);
                },
                x, cache.h, dw);
        });
        input_grad_blocks(rows, s.I, H, dgates.get(), pw.w_ih.get(), dx, tid, nthreads);
    });
}

#define RNNKIT_INSTANTIATE(T)                                                               \
    template void rnn_sequence_forward<T>(const SeqShape&, const CellWeights<T>&,           \
                                          rnn::Nonlinearity, const T*, const T*, T*, T*,    \
                                          const RnnCache<T>*);                              \
    template void rnn_sequence_backward<T>(const SeqShape&, const CellWeights<T>&,          \
                                           rnn::Nonlinearity, const T*, const RnnCache<T>&, \
                                           const T*, const T*, T*, T*, const WeightGrads<T>&);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit::bptt
