// LSTM time loops (forward over the steps of the schedule, backward in reverse) over one
// layer-direction, with the variants of rnn/lstm_cell.hpp and an optional projection
// h = W_hr m (LSTMP, torch's proj_size).
//
// Per forward step s over its n running rows: the recurrent GEMM and the fused pointwise
// pass per unit block (one barrier); with a projection, a barrier, then h = m W_hr^T per
// block of the P outputs. Backward reads the activated gates and c from the cache; tanh(c')
// is recomputed rather than stored.
#include "bptt/engine.hpp"
#include "bptt/kernels.hpp"
#include "rnn/lstm_cell.hpp"

// Compiled once per instruction set (common/isa.hpp); dispatch.cpp picks one.
namespace rnnkit::bptt::RNNKIT_ISA_NS {

namespace {
constexpr std::int64_t G = 4;

template <typename T>
rnn::LstmRowParams<T> row_params(const CellWeights<T>& w, std::int64_t H, std::int64_t j0,
                                 const rnn::ClipBounds<T>& bounds) {
    if (!w.peepholes) return {nullptr, nullptr, nullptr, &bounds};
    return {w.peepholes + j0, w.peepholes + H + j0, w.peepholes + 2 * H + j0, &bounds};
}

// Peephole gradients of unit block k from the chunk of packed rows [base, base + rows) (its
// pre-activation gradients dgates, [rows, 4H]): dp_i += sum da_i c_prev, dp_f += sum da_f c_prev,
// dp_o += sum da_o c' (from zero for the first chunk done).
template <typename T>
void peephole_grads(const Schedule& sc, std::int64_t base, std::int64_t rows,
                    const detail::UnitBlocks& blocks, std::int64_t k, const T* dgates,
                    const detail::StateTrack<T>& cs, T* dpeepholes, std::int64_t H, bool first) {
    const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
    T* dp_i = dpeepholes + j0;
    T* dp_f = dpeepholes + H + j0;
    T* dp_o = dpeepholes + 2 * H + j0;
    if (first) {
        std::fill(dp_i, dp_i + nb, T(0));
        std::fill(dp_f, dp_f + nb, T(0));
        std::fill(dp_o, dp_o + nb, T(0));
    }
    for (std::int64_t st = 0; st < sc.steps(); ++st) {
        const std::int64_t row0 = sc.offset(st);
        if (row0 < base || row0 >= base + rows) continue;
        for (std::int64_t i = 0; i < sc.active(st); ++i) {
            const T* d = dgates + (row0 - base + i) * G * H + G * j0;
            const T* cp = cs.prev(st) + i * H + j0;
            const T* cn = cs.next(st, i) + j0;
            for (std::int64_t u = 0; u < nb; ++u) {
                dp_i[u] += d[u] * cp[u];
                dp_f[u] += d[nb + u] * cp[u];
                dp_o[u] += d[3 * nb + u] * cn[u];
            }
        }
    }
}

// Calls fn(peep, cifg, clip) with the variant's flags as compile-time constants.
template <typename T, typename Fn>
void with_variant(const CellWeights<T>& w, const LstmOptions<T>& opt, Fn&& fn) {
    rnn::with_flags(fn, w.peepholes != nullptr, opt.input_forget, std::isfinite(opt.clip));
}
}  // namespace

template <typename T>
void lstm_sequence_forward(const SeqShape& s, const Schedule& sc, const CellWeights<T>& w,
                           const LstmOptions<T>& opt, const T* x, const T* h0, const T* c0, T* y,
                           T* h_n, T* c_n, const LstmCache<T>* cache) {
    using namespace detail;
    const std::int64_t B = s.B, H = s.H, R = s.R, GH = G * H;
    const bool training = cache != nullptr;
    const bool projected = w.w_hr != nullptr;
    const std::int64_t S = sc.steps();
    if (sc.rows() < sc.caller_rows()) std::fill(y, y + sc.caller_rows() * R, T(0));  // padding
    const StateTrack<T> hs(sc, R, training ? cache->h : nullptr);
    const StateTrack<T> cs(sc, H, training ? cache->c : nullptr);
    hs.start(h0);
    cs.start(c0);
    if (S > 0) {
        const UnitBlocks blocks = unit_blocks(H, B);
        const UnitBlocks out_blocks = unit_blocks(R, B);  // the P outputs of the projection
        // Fused: each step's GEMM takes [x_t | h_prev] and writes whole pre-activations
        // (into the cache when training, scratch otherwise); else the input is projected a
        // chunk of steps at a time and each step adds its recurrent GEMM.
        const bool direct = direct_weights<T>(sc, s, G);
        const bool fused = fuse_input<T>(s, G) && !direct;
        const PackedWeights<T> pw(s, G, blocks, w, G, fused ? Pass::ForwardFused : Pass::Forward,
                                  direct);
        const rnn::ClipBounds<T> bounds(opt.clip);
        const std::int64_t chunk = chunk_steps(sc);
        const PackedInput<T> xin(sc, x, s.I, chunk);
        Buffer<T> pre_work(training || fused ? 0 : chunk * B * GH);
        Buffer<T> m_work(projected && !training ? B * H : 0);
        Buffer<T> h_work(projected ? B * R : 0);
        const int threads = threads_for(step_flops(s, G));
        // Batch 1: steps whose recurrent GEMM is cut in halves (HalvedSteps).
        const ReductionHalves halves(blocks);
        const bool split =
            split_steps(B) && !fused && !projected && pw.panelled() && halves.active();
        const std::int64_t block_scratch = B * G * blocks.size;
        const std::int64_t scratch_size = HalvedSteps<T>::scratch(split, block_scratch, blocks);
        Buffer<T> scratch(static_cast<std::int64_t>(threads) * scratch_size);
        // One unit block (H <= 16) would leave every thread but its owner waiting at each
        // step's barrier. With the input fused and no projection a row's step reads only its
        // own row, so the threads split the rows instead (the same whole tiles of the
        // micro-kernel at every step) and meet only between chunks of steps. A row's numbers
        // do not depend on which thread or tile computes it.
        const bool row_split = fused && !projected && OwnedRows::pays(blocks, B);

        parallel_region(threads, [&](int tid, int nthreads) {
            pw.pack(tid, nthreads);
            HalvedSteps<T> steps(split, pw, G, R, block_scratch, blocks, tid, nthreads,
                                 scratch.get() + tid * scratch_size);
            const OwnedRows own(row_split, B, tid, nthreads);
            for (std::int64_t s0 = 0; s0 < S; s0 += chunk) {
                const std::int64_t s1 = std::min(S, s0 + chunk);
                const std::int64_t chunk_rows = sc.offset(s1) - sc.offset(s0);
                T* pre_chunk = training ? cache->gates + sc.offset(s0) * GH : pre_work.get();
                const T* x_chunk = xin.rows(s0, s1, tid, nthreads);
                if (!fused) {
                    for_each_owned_block(blocks.count, tid, nthreads, [&](std::int64_t k) {
                        input_projection_block(chunk_rows, G, blocks, k, x_chunk, pw, pre_chunk);
                    });
                }
                for (std::int64_t st = s0; st < s1; ++st) {
                    const std::int64_t n = sc.active(st);
                    // This thread's rows of the step (all of them unless row_split).
                    const std::int64_t i0 = own.first(n), i1 = own.last(n);
                    T* pre = pre_chunk ? pre_chunk + (sc.offset(st) - sc.offset(s0)) * GH : nullptr;
                    const T* h_prev = hs.prev(st);
                    const T* c_prev = cs.prev(st);
                    T* m = projected ? (training ? cache->m + sc.offset(st) * H : m_work.get())
                                     : nullptr;
                    const T* x_t = x_chunk + (sc.offset(st) - sc.offset(s0)) * s.I;
                    steps.begin_step(n, h_prev);
                    for_each_owned_block(
                        blocks.count, own.block_tid, own.block_threads, [&](std::int64_t k) {
                            const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                            const std::int64_t nc = G * nb;
                            // The recurrent GEMM's output, or the fused GEMM's without a cache,
                            // [n, G*nb].
                            T* gh = steps.gh(k);
                            // Pre-activations of row i: a_pre[i * ld] (+ gh[i * nc] unless fused).
                            T* a_pre = fused && !training ? gh : pre + G * j0;
                            const std::int64_t ld = fused && !training ? nc : GH;
                            if (fused) {
                                pw.fused_forward(i1 - i0, G, blocks, k, s.I, R, x_t + i0 * s.I,
                                                 h_prev + i0 * R, a_pre + i0 * ld, ld);
                            } else {
                                steps.recurrent(k, n, h_prev);
                            }
                            const auto params = row_params(w, H, j0, bounds);
                            with_variant(w, opt, [&](auto peep, auto cifg, auto clip) {
                                const auto row = [&](auto split_pre) {
                                    for (std::int64_t i = i0; i < i1; ++i) {
                                        T* out = projected ? m + i * H + j0 : hs.next(st, i) + j0;
                                        rnn::lstm_cell_forward_row<
                                            T, decltype(peep)::value, decltype(cifg)::value,
                                            decltype(clip)::value, decltype(split_pre)::value>(
                                            nb, a_pre + i * ld, gh + i * nc, c_prev + i * H + j0,
                                            params, cs.next(st, i) + j0, out);
                                        if (!projected) write_output(sc, st, i, R, j0, nb, out, y);
                                    }
                                };
                                if (fused) {
                                    row(std::false_type{});
                                } else {
                                    row(std::true_type{});
                                }
                            });
                        });
                    if (projected) {
                        barrier();  // the projection reads every unit of m
                        for_each_owned_block(out_blocks.count, tid, nthreads, [&](std::int64_t k) {
                            const std::int64_t p0 = out_blocks.begin(k), np = out_blocks.width(k);
                            blas::gemm<T>(false, true, n, np, H, T(1), m, H, w.w_hr + p0 * H, H,
                                          T(0), h_work.get() + p0, R);
                            for (std::int64_t i = 0; i < n; ++i) {
                                const T* value = h_work.get() + i * R + p0;
                                std::memcpy(hs.next(st, i) + p0, value, np * sizeof(T));
                                write_output(sc, st, i, R, p0, np, value, y);
                            }
                        });
                    }
                    if (!row_split) steps.end_step();
                }
                // (the next chunk's input rows may be gathered together)
                if (row_split) {
                    barrier();
                } else {
                    steps.wait();
                }
            }
        });
    }
    hs.finish(h_n);
    cs.finish(c_n);
}

template <typename T>
void lstm_sequence_backward(const SeqShape& s, const Schedule& sc, const CellWeights<T>& w,
                            const LstmOptions<T>& opt, const T* x, const LstmCache<T>& cache,
                            const T* dy, const T* dh_n, const T* dc_n, T* dx, T* dh0, T* dc0,
                            const WeightGrads<T>& dw) {
    using namespace detail;
    const std::int64_t B = s.B, H = s.H, R = s.R, GH = G * H, N = sc.rows();
    const bool projected = w.w_hr != nullptr;
    // Running gradients of the states: rows start at dh_n / dc_n and pick up each step's
    // contributions once they run.
    const RunningGradient<T> dh(sc, R, dh_n), dc(sc, H, dc_n);
    if (N == 0) {
        zero_weight_grads(s, G, dw);
        std::fill(dx, dx + sc.caller_rows() * s.I, T(0));
    } else {
        const StateTrack<T> hs(sc, R, cache.h);
        const StateTrack<T> cs(sc, H, cache.c);
        const UnitBlocks blocks = unit_blocks(H, B);
        const UnitBlocks out_blocks = unit_blocks(R, B);
        const PackedWeights<T> pw(s, G, blocks, w, G, Pass::Backward, direct_backward_weights(sc));
        const rnn::ClipBounds<T> bounds(opt.clip);
        // [chunk rows, 4H] pre-activation gradients of the chunk of steps being run.
        const Buffer<T> dgates(backward_chunk_rows(sc) * GH);
        Buffer<T> dh_rows(projected ? N * R : 0);  // [N, P] gradient reaching each h'
        Buffer<T> dm(projected ? B * H : 0);       // [B, H] gradient reaching m at this step
        const PackedGradientRows<T> rows(sc, x, dx, s.I);
        const int threads = threads_for(2.0 * step_flops(s, G));
        BackwardBulk<T> bulk(s, sc, G, blocks, threads);

        // Steps whose recurrent GEMM is cut in halves of dg's columns (ReductionHalves).
        const ReductionHalves halves(blocks);
        const bool split = split_steps(B) && !projected && pw.panelled() && halves.active();
        Buffer<T> second_halves(split ? threads * B * R : 0);
        // One unit block: the threads split the rows, as the forward does (row_split there).
        const bool row_split =
            !projected && !split && out_blocks.count == 1 && OwnedRows::pays(blocks, B);

        parallel_region(threads, [&](int tid, int nthreads) {
            SharedTasks::Cursor bulk_cursor;
            pw.pack(tid, nthreads);
            const OwnedRows own(row_split, B, tid, nthreads);
            const auto step = [&](std::int64_t st, std::int64_t base) {
                const std::int64_t n = sc.active(st), row0 = sc.offset(st);
                // This thread's rows of the step (all of them unless row_split).
                const std::int64_t i0 = own.first(n), i1 = own.last(n);
                const T* gates = cache.gates + row0 * GH;
                const T* c_prev = cs.prev(st);
                T* dg = dgates.get() + (row0 - base) * GH;
                if (projected) {
                    // dh (P columns) += dy; keep it for dw_hr; then dm = dh W_hr for all units.
                    for_each_owned_block(out_blocks.count, tid, nthreads, [&](std::int64_t k) {
                        const std::int64_t p0 = out_blocks.begin(k), np = out_blocks.width(k);
                        for (std::int64_t i = 0; i < n; ++i) {
                            T* d = dh.get() + i * R + p0;
                            if (dy) add_into(np, dy + sc.source_row(st, i) * R + p0, d);
                            std::memcpy(dh_rows.get() + (row0 + i) * R + p0, d, np * sizeof(T));
                        }
                    });
                    barrier();
                }
                for_each_owned_block(
                    blocks.count, own.block_tid, own.block_threads, [&](std::int64_t k) {
                        const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                        if (projected) {
                            blas::gemm<T>(false, false, n, nb, R, T(1), dh.get(), R, w.w_hr + j0, H,
                                          T(0), dm.get() + j0, H);
                        }
                        const auto params = row_params(w, H, j0, bounds);
                        with_variant(w, opt, [&](auto peep, auto cifg, auto clip) {
                            for (std::int64_t i = i0; i < i1; ++i) {
                                T* dmi;
                                if (projected) {
                                    dmi = dm.get() + i * H + j0;
                                } else {
                                    dmi = dh.get() + i * H + j0;
                                    if (dy) add_into(nb, dy + sc.source_row(st, i) * H + j0, dmi);
                                }
                                rnn::lstm_cell_backward_row<T, decltype(peep)::value,
                                                            decltype(cifg)::value,
                                                            decltype(clip)::value>(
                                    nb, gates + i * GH + G * j0, cs.next(st, i) + j0,
                                    c_prev + i * H + j0, params, dmi, dc.get() + i * H + j0,
                                    dg + i * GH + G * j0);
                            }
                        });
                    });
                // dh of the previous step's state, for the running rows (the others keep dh_n),
                // from every block of dg.
                if (row_split) {  // this thread's rows of dg are all of their columns
                    pw.recurrent_grad(i1 - i0, GH, out_blocks, 0, R, dg + i0 * GH, GH,
                                      dh.get() + i0 * R, false);
                    return;
                }
                backward_recurrent_step(pw, split, halves, n, G, H, out_blocks, dg, dh.get(),
                                        split ? second_halves.get() + tid * B * R : nullptr, tid,
                                        nthreads);
                // Without a projection the next step's pointwise pass reads only this thread's
                // own blocks of dh; with one, its first phase does, then a barrier.
            };
            const auto chunk_done = [&](std::int64_t base, std::int64_t chunk_rows, bool first) {
                if (dw.dpeepholes) {
                    for_each_owned_block(blocks.count, tid, nthreads, [&](std::int64_t k) {
                        peephole_grads(sc, base, chunk_rows, blocks, k, dgates.get(), cs,
                                       dw.dpeepholes, H, first);
                    });
                }
                bulk.run(
                    chunk_rows, dgates.get(),
                    [&](std::int64_t g, std::int64_t j0, std::int64_t nb) {
                        return RecurrentSource<T>{dgates.get() + G * j0 + g * nb, GH,
                                                  cache.h + base * R};
                    },
                    dgates.get(), rows.x() + base * s.I, dw, pw, rows.dx() + base * s.I, first,
                    bulk_cursor, tid, nthreads);
            };
            backward_chunks(sc, step, chunk_done);
            if (projected) {
                // dw_hr [P, H] = dh_rows^T m over all rows.
                for_each_owned_block(out_blocks.count, tid, nthreads, [&](std::int64_t k) {
                    const std::int64_t p0 = out_blocks.begin(k), np = out_blocks.width(k);
                    blas::gemm<T>(true, false, np, H, N, T(1), dh_rows.get() + p0, R, cache.m, H,
                                  T(0), dw.dw_hr + p0 * H, H);
                });
            }
        });
        rows.finish();
    }
    dh.finish(dh0);
    dc.finish(dc0);
}

#define RNNKIT_INSTANTIATE(T)                                                                      \
    template void lstm_sequence_forward<T>(const SeqShape&, const Schedule&,                       \
                                           const CellWeights<T>&, const LstmOptions<T>&, const T*, \
                                           const T*, const T*, T*, T*, T*, const LstmCache<T>*);   \
    template void lstm_sequence_backward<T>(                                                       \
        const SeqShape&, const Schedule&, const CellWeights<T>&, const LstmOptions<T>&, const T*,  \
        const LstmCache<T>&, const T*, const T*, const T*, T*, T*, T*, const WeightGrads<T>&);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit::bptt::RNNKIT_ISA_NS
