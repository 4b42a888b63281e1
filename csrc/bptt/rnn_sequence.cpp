// Vanilla RNN time loops: h' = act(clip(W_ih x + b_ih + W_hh h + b_hh)), act = tanh or relu.
// The activation's output is the new state, so the cache is the states alone; the input
// projection runs in chunks of steps, or inside each step's GEMM (fuse_input), alike in
// training and in inference.
#include "bptt/engine.hpp"
#include "bptt/kernels.hpp"
#include "rnn/rnn_cell.hpp"

// Compiled once per instruction set (common/isa.hpp); dispatch.cpp picks one.
namespace rnnkit::bptt::RNNKIT_ISA_NS {

namespace {
constexpr std::int64_t G = 1;

// Calls fn(act, clip, extra...) with all as compile-time constants.
template <typename T, typename Fn, typename... Extra>
void with_variant(const RnnOptions<T>& opt, Fn&& fn, Extra... extra) {
    rnn::with_nonlinearity(opt.act, [&](auto act) {
        rnn::with_flags([&](auto clip, auto... e) { fn(act, clip, e...); }, std::isfinite(opt.clip),
                        extra...);
    });
}
}  // namespace

template <typename T>
void rnn_sequence_forward(const SeqShape& s, const Schedule& sc, const CellWeights<T>& w,
                          const RnnOptions<T>& opt, const T* x, const T* h0, T* y, T* h_n,
                          const RnnCache<T>* cache) {
    using namespace detail;
    const std::int64_t B = s.B, H = s.H;
    const bool training = cache != nullptr;
    const std::int64_t S = sc.steps();
    if (sc.rows() < sc.caller_rows()) std::fill(y, y + sc.caller_rows() * H, T(0));  // padding
    const StateTrack<T> hs(sc, H, training ? cache->h : nullptr);
    hs.start(h0);
    if (S > 0) {
        const UnitBlocks blocks = unit_blocks(H, B);
        // Fused (as the LSTM): each step's GEMM takes [x_t | h_prev], so no input projection
        // runs apart.
        const bool direct = direct_weights<T>(sc, s, G);
        const bool fused = fuse_input<T>(s, G) && !direct;
        const PackedWeights<T> pw(s, G, blocks, w, G, fused ? Pass::ForwardFused : Pass::Forward,
                                  direct);
        const std::int64_t chunk = chunk_steps(sc);
        const PackedInput<T> xin(sc, x, s.I, chunk);
        Buffer<T> pre_work(fused ? 0 : chunk * B * H);
        const int threads = threads_for(step_flops(s, G));
        // Batch 1: steps whose recurrent GEMM is cut in halves (HalvedSteps).
        const ReductionHalves halves(blocks);
        const bool split = split_steps(B) && !fused && pw.panelled() && halves.active();
        const std::int64_t block_scratch = B * blocks.size;
        const std::int64_t scratch_size = HalvedSteps<T>::scratch(split, block_scratch, blocks);
        Buffer<T> scratch(static_cast<std::int64_t>(threads) * scratch_size);

        parallel_region(threads, [&](int tid, int nthreads) {
            pw.pack(tid, nthreads);
            HalvedSteps<T> steps(split, pw, G, H, block_scratch, blocks, tid, nthreads,
                                 scratch.get() + tid * scratch_size);
            for (std::int64_t s0 = 0; s0 < S; s0 += chunk) {
                const std::int64_t s1 = std::min(S, s0 + chunk);
                const std::int64_t chunk_rows = sc.offset(s1) - sc.offset(s0);
                const T* x_chunk = xin.rows(s0, s1, tid, nthreads);
                if (!fused) {
                    for_each_owned_block(blocks.count, tid, nthreads, [&](std::int64_t k) {
                        input_projection_block(chunk_rows, G, blocks, k, x_chunk, pw,
                                               pre_work.get());
                    });
                }
                for (std::int64_t st = s0; st < s1; ++st) {
                    const std::int64_t n = sc.active(st), row = sc.offset(st) - sc.offset(s0);
                    const T* h_prev = hs.prev(st);
                    steps.begin_step(n, h_prev);
                    for_each_owned_block(blocks.count, tid, nthreads, [&](std::int64_t k) {
                        const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                        // Pre-activations of row i: pre[i * ld] (+ gh[i * nb] unless fused).
                        const T* pre;
                        const T* gh = nullptr;
                        std::int64_t ld = H;
                        if (fused) {
                            T* a = steps.gh(k);
                            pw.fused_forward(n, G, blocks, k, s.I, H, x_chunk + row * s.I, h_prev,
                                             a, nb);
                            pre = a;
                            ld = nb;
                        } else {
                            pre = pre_work.get() + row * H + j0;
                            gh = steps.recurrent(k, n, h_prev);
                        }
                        with_variant(
                            opt,
                            [&](auto act, auto clip, auto split_pre) {
                                for (std::int64_t i = 0; i < n; ++i) {
                                    T* out = hs.next(st, i) + j0;
                                    rnn::rnn_cell_forward_row<T, decltype(act)::value,
                                                              decltype(clip)::value,
                                                              decltype(split_pre)::value>(
                                        nb, pre + i * ld, gh ? gh + i * nb : nullptr, opt.clip,
                                        out);
                                    write_output(sc, st, i, H, j0, nb, out, y);
                                }
                            },
                            !fused);
                    });
                    steps.end_step();
                }
                steps.wait();  // (the next chunk's input rows may be gathered together)
            }
        });
    }
    hs.finish(h_n);
}

template <typename T>
void rnn_sequence_backward(const SeqShape& s, const Schedule& sc, const CellWeights<T>& w,
                           const RnnOptions<T>& opt, const T* x, const RnnCache<T>& cache,
                           const T* dy, const T* dh_n, T* dx, T* dh0, const WeightGrads<T>& dw) {
    using namespace detail;
    const std::int64_t B = s.B, H = s.H, N = sc.rows();
    const RunningGradient<T> dh(sc, H, dh_n);  // rows start at dh_n
    if (N == 0) {
        zero_weight_grads(s, G, dw);
        std::fill(dx, dx + sc.caller_rows() * s.I, T(0));
    } else {
        const StateTrack<T> hs(sc, H, cache.h);
        const UnitBlocks blocks = unit_blocks(H, B);
        const PackedWeights<T> pw(s, G, blocks, w, G, Pass::Backward, direct_backward_weights(sc));
        const rnn::ClipBounds<T> bounds(opt.clip);
        // [chunk rows, H] pre-activation gradients of the chunk of steps being run.
        const Buffer<T> dgates(backward_chunk_rows(sc) * H);
        const PackedGradientRows<T> rows(sc, x, dx, s.I);
        const int threads = threads_for(2.0 * step_flops(s, G));
        BackwardBulk<T> bulk(s, sc, G, blocks, threads);
        // Batch 1: steps whose recurrent GEMM is cut in halves of dg's columns.
        const ReductionHalves halves(blocks);
        const bool split = split_steps(B) && pw.panelled() && halves.active();
        Buffer<T> second_halves(split ? threads * B * H : 0);

        parallel_region(threads, [&](int tid, int nthreads) {
            SharedTasks::Cursor bulk_cursor;
            pw.pack(tid, nthreads);
            const auto step = [&](std::int64_t st, std::int64_t base) {
                const std::int64_t n = sc.active(st);
                T* dg = dgates.get() + (sc.offset(st) - base) * H;
                for_each_owned_block(blocks.count, tid, nthreads, [&](std::int64_t k) {
                    const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                    with_variant(opt, [&](auto act, auto clip) {
                        for (std::int64_t i = 0; i < n; ++i) {
                            T* d = dh.get() + i * H + j0;
                            if (dy) add_into(nb, dy + sc.source_row(st, i) * H + j0, d);
                            rnn::rnn_cell_backward_row<T, decltype(act)::value,
                                                       decltype(clip)::value>(
                                nb, hs.next(st, i) + j0, d, bounds, dg + i * H + j0);
                        }
                    });
                });
                // (the recurrent GEMM reads every block of dg)
                backward_recurrent_step(pw, split, halves, n, G, H, blocks, dg, dh.get(),
                                        split ? second_halves.get() + tid * B * H : nullptr, tid,
                                        nthreads);
            };
            const auto chunk_done = [&](std::int64_t base, std::int64_t chunk_rows, bool first) {
                bulk.run(
                    chunk_rows, dgates.get(),
                    [&](std::int64_t, std::int64_t j0, std::int64_t) {
                        return RecurrentSource<T>{dgates.get() + j0, H, cache.h + base * H};
                    },
                    dgates.get(), rows.x() + base * s.I, dw, pw, rows.dx() + base * s.I, first,
                    bulk_cursor, tid, nthreads);
            };
            backward_chunks(sc, step, chunk_done);
        });
        rows.finish();
    }
    dh.finish(dh0);
}

#define RNNKIT_INSTANTIATE(T)                                                                      \
    template void rnn_sequence_forward<T>(const SeqShape&, const Schedule&, const CellWeights<T>&, \
                                          const RnnOptions<T>&, const T*, const T*, T*, T*,        \
                                          const RnnCache<T>*);                                     \
    template void rnn_sequence_backward<T>(                                                        \
        const SeqShape&, const Schedule&, const CellWeights<T>&, const RnnOptions<T>&, const T*,   \
        const RnnCache<T>&, const T*, const T*, T*, T*, const WeightGrads<T>&);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit::bptt::RNNKIT_ISA_NS
