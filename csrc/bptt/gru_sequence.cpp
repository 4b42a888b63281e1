// GRU time loops over one layer-direction, in both placements of the reset gate
// (rnn/gru_cell.hpp):
// - linear_before_reset (PyTorch, cuDNN): one recurrent GEMM per step, as the LSTM. b_hh folds
//   into the projection for r and z only; b_hn stays inside r * (W_hn h + b_hn).
// - reset before the matmul (ONNX default, Keras reset_after=False): per step, the GEMM for r
//   and z, a barrier (W_hn (r*h) reads every unit of r*h), then the GEMM for n. All of b_hh
//   folds into the projection.
// The cache keeps the activated r, z, n and hn (W_hn h + b_hn, or r * h); backward needs
// nothing else.
#include "bptt/engine.hpp"
#include "bptt/kernels.hpp"
#include "rnn/gru_cell.hpp"

// Compiled once per instruction set (common/isa.hpp); dispatch.cpp picks one.
namespace rnnkit::bptt::RNNKIT_ISA_NS {

namespace {
constexpr std::int64_t G = 3;
}

template <typename T>
void gru_sequence_forward(const SeqShape& s, const Schedule& sc, const CellWeights<T>& w,
                          const GruOptions<T>& opt, const T* x, const T* h0, T* y, T* h_n,
                          const GruCache<T>* cache) {
    using namespace detail;
    const std::int64_t B = s.B, H = s.H, GH = G * H;
    const bool training = cache != nullptr;
    const bool lbr = opt.linear_before_reset;
    const std::int64_t S = sc.steps();
    if (sc.rows() < sc.caller_rows()) std::fill(y, y + sc.caller_rows() * H, T(0));  // padding
    const StateTrack<T> hs(sc, H, training ? cache->h : nullptr);
    hs.start(h0);
    if (S > 0) {
        const UnitBlocks blocks = unit_blocks(H, B);
        // One step (direct_weights) reads its weights where they are, W_h{r,z} and W_hn too.
        const bool direct = direct_weights<T>(sc, s, G);
        // Fused (reset after the matmul, as the LSTM): each step's GEMMs take x_t too, r and z
        // over [x_t | h_prev], n's input and recurrent products apart
        // (PackedWeights::fused_forward), so no input projection runs apart.
        const bool fused = lbr && fuse_input<T>(s, G) && !direct;
        const PackedWeights<T> pw(s, G, blocks, w, lbr ? 2 : 3,
                                  !lbr    ? Pass::InputOnly
                                  : fused ? Pass::ForwardFused
                                          : Pass::Forward,
                                  direct);
        // Reset before the matmul: two recurrent GEMMs per step, W_h{r,z} h and W_hn (r*h), on
        // panels per unit block for batches up to kPanelRows rows (packed by the block's
        // owner in the region), else by OpenBLAS on block-interleaved rows.
        const bool reset_panels = !lbr && !direct && B <= kPanelRows;
        const bool rz_rows = !lbr && !reset_panels && !direct;
        Buffer<T> w_rz(rz_rows ? 2 * H * H : 0);  // [2H, H] r, z rows interleaved
        if (rz_rows) pack_gate_rows(w.w_hh, 0, 2, blocks, H, w_rz.get());
        const T* w_n = w.w_hh + 2 * H * H;  // [H, H] PyTorch rows of the n gate
        const BlockPanels<T> rz_panels(reset_panels, blocks, 2, H);
        const BlockPanels<T> n_panels(reset_panels, blocks, 1, H);
        const auto pack_reset_block = [&](std::int64_t k) {
            const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
            // (column c of the r, z panels: gate c / nb of unit j0 + c % nb)
            const auto rz_row = [&](std::int64_t c) {
                return w.w_hh + ((c / nb) * H + j0 + c % nb) * H;
            };
            const auto n_row = [&](std::int64_t u) {
                return w_n + (j0 + u) * H;
            };
            pack_panels_of_rows(2 * nb, H, rz_row, 0, rz_row, rz_panels.block(k));
            pack_panels_of_rows(nb, H, n_row, 0, n_row, n_panels.block(k));
        };
        Buffer<T> no_bias(lbr && !w.b_hh ? H : 0);
        if (lbr && !w.b_hh) no_bias.fill(T(0), H);
        const T* b_hn = w.b_hh ? w.b_hh + 2 * H : no_bias.get();
        const bool clipping = std::isfinite(opt.clip);
        const std::int64_t chunk = chunk_steps(sc);
        const PackedInput<T> xin(sc, x, s.I, chunk);
        Buffer<T> pre_work(training || fused ? 0 : chunk * B * GH);
        Buffer<T> hn_work(training ? 0 : B * H);  // hn (or r*h): scratch in inference
        const int threads = threads_for(step_flops(s, G));
        // Batch 1, reset after the matmul, two unit blocks: steps whose recurrent GEMM is cut
        // in halves (HalvedSteps). Measured (200, 1, 128, 128): 9% faster when the cores are
        // far apart (a 500 ns round trip between them), unchanged when near (90 ns); but
        // (100, 1, 256, 256) 3-4% slower in both.
        const bool split = lbr && split_steps(B) && blocks.count == 2 && pw.panelled();
        const std::int64_t block_scratch = B * G * blocks.size;
        const std::int64_t scratch_size = HalvedSteps<T>::scratch(split, block_scratch, blocks);
        Buffer<T> scratch(static_cast<std::int64_t>(threads) * scratch_size);
        // Fused: W_hn h_prev of a block's rows, [B, nb], per thread.
        Buffer<T> recurrent_n(fused ? threads * B * blocks.size : 0);

        parallel_region(threads, [&](int tid, int nthreads) {
            if (reset_panels) for_each_owned_block(blocks.count, tid, nthreads, pack_reset_block);
            pw.pack(tid, nthreads);  // (ends with a barrier)
            HalvedSteps<T> steps(split, pw, G, H, block_scratch, blocks, tid, nthreads,
                                 scratch.get() + tid * scratch_size);
            T* const gh = scratch.get() + tid * scratch_size;  // (reset first)
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
                    const std::int64_t n = sc.active(st), row0 = sc.offset(st);
                    T* pre = pre_chunk ? pre_chunk + (row0 - sc.offset(s0)) * GH : nullptr;
                    const T* h_prev = hs.prev(st);
                    T* hn = training ? cache->hn + row0 * H : hn_work.get();
                    if (lbr) {
                        steps.begin_step(n, h_prev);
                        for_each_owned_block(blocks.count, tid, nthreads, [&](std::int64_t k) {
                            const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                            const std::int64_t nc = G * nb;
                            // Pre-activations of row i: a_pre[i * ld]; the recurrent products
                            // rec[i * ld_rec] (fused: W_hn h alone).
                            T* a_pre = fused && !training ? steps.gh(k) : pre + G * j0;
                            const std::int64_t ld = fused && !training ? nc : GH;
                            std::int64_t ld_rec = nc;
                            const T* rec;
                            if (fused) {
                                const T* x_t = x_chunk + (row0 - sc.offset(s0)) * s.I;
                                T* rec_n = recurrent_n.get() + tid * B * blocks.size;
                                pw.fused_forward(n, G, blocks, k, s.I, H, x_t, h_prev, a_pre, ld,
                                                 rec_n, nb);
                                rec = rec_n;
                                ld_rec = nb;
                            } else {
                                rec = steps.recurrent(k, n, h_prev);
                            }
                            rnn::with_flags(
                                [&](auto clip, auto split_pre) {
                                    for (std::int64_t i = 0; i < n; ++i) {
                                        T* out = hs.next(st, i) + j0;
                                        rnn::gru_cell_forward_row<T, decltype(clip)::value,
                                                                  decltype(split_pre)::value>(
                                            nb, a_pre + i * ld, rec + i * ld_rec, b_hn + j0,
                                            h_prev + i * H + j0, opt.clip, out, hn + i * H + j0);
                                        write_output(sc, st, i, H, j0, nb, out, y);
                                    }
                                },
                                clipping, !fused);
                        });
                    } else {
                        T* rh = hn;
                        for_each_owned_block(blocks.count, tid, nthreads, [&](std::int64_t k) {
                            const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                            if (reset_panels) {
                                panel_gemm<T>(n, 2 * nb, H, h_prev, H, rz_panels.block(k), gh,
                                              2 * nb);
                            } else if (direct) {
                                for (std::int64_t g = 0; g < 2; ++g) {
                                    times_rows_transposed(n, nb, H, h_prev,
                                                          w.w_hh + (g * H + j0) * H, T(0),
                                                          gh + g * nb, 2 * nb);
                                }
                            } else {
                                blas::gemm<T>(false, true, n, 2 * nb, H, T(1), h_prev, H,
                                              w_rz.get() + 2 * j0 * H, H, T(0), gh, 2 * nb);
                            }
                            rnn::with_flags(
                                [&](auto clip) {
                                    for (std::int64_t i = 0; i < n; ++i) {
                                        rnn::gru_cell_forward_reset_row<T, decltype(clip)::value>(
                                            nb, pre + i * GH + G * j0, gh + i * 2 * nb,
                                            h_prev + i * H + j0, opt.clip, rh + i * H + j0);
                                    }
                                },
                                clipping);
                        });
                        barrier();  // W_hn (r*h) reads every unit of r*h
                        for_each_owned_block(blocks.count, tid, nthreads, [&](std::int64_t k) {
                            const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                            if (reset_panels) {
                                panel_gemm<T>(n, nb, H, rh, H, n_panels.block(k), gh, nb);
                            } else {
                                times_rows_transposed(n, nb, H, rh, w_n + j0 * H, T(0), gh, nb);
                            }
                            rnn::with_flags(
                                [&](auto clip) {
                                    for (std::int64_t i = 0; i < n; ++i) {
                                        T* out = hs.next(st, i) + j0;
                                        rnn::gru_cell_forward_new_row<T, decltype(clip)::value>(
                                            nb, pre + i * GH + G * j0, gh + i * nb,
                                            h_prev + i * H + j0, opt.clip, out);
                                        write_output(sc, st, i, H, j0, nb, out, y);
                                    }
                                },
                                clipping);
                        });
                    }
                    if (lbr) {
                        steps.end_step();
                    } else {
                        barrier();
                    }
                }
                steps.wait();
            }
        });
    }
    hs.finish(h_n);
}

template <typename T>
void gru_sequence_backward(const SeqShape& s, const Schedule& sc, const CellWeights<T>& w,
                           const GruOptions<T>& opt, const T* x, const GruCache<T>& cache,
                           const T* dy, const T* dh_n, T* dx, T* dh0, const WeightGrads<T>& dw) {
    using namespace detail;
    const std::int64_t B = s.B, H = s.H, GH = G * H, BH = B * H, N = sc.rows();
    const bool lbr = opt.linear_before_reset;
    const RunningGradient<T> dh(sc, H, dh_n);  // rows start at dh_n
    if (N == 0) {
        zero_weight_grads(s, G, dw);
        std::fill(dx, dx + sc.caller_rows() * s.I, T(0));
    } else {
        const StateTrack<T> hs(sc, H, cache.h);
        const UnitBlocks blocks = unit_blocks(H, B);
        const PackedWeights<T> pw(s, G, blocks, w, lbr ? 2 : 3,
                                  lbr ? Pass::Backward : Pass::InputOnly,
                                  direct_backward_weights(sc));
        // Reset before the matmul: d(r*h) = da_n W_hn and dh += d(r, z) W_h{r,z} per step, on
        // panels of those weights' columns per unit block for batches up to kPanelRows rows,
        // else by OpenBLAS on W_hn and the r, z rows block-interleaved (as drz's columns).
        // One step over few rows (direct_backward_weights) reads W_h{r,z} and W_hn in place.
        const bool direct = direct_backward_weights(sc);
        const bool reset_panels = !lbr && !direct && B <= kPanelRows;
        const bool rz_rows = !lbr && !reset_panels && !direct;
        Buffer<T> w_rz(rz_rows ? 2 * H * H : 0);
        if (rz_rows) pack_gate_rows(w.w_hh, 0, 2, blocks, H, w_rz.get());
        const T* w_n = w.w_hh + 2 * H * H;
        const BlockPanels<T> rz_panels(reset_panels, blocks, 1, 2 * H);
        const BlockPanels<T> n_panels(reset_panels, blocks, 1, H);
        const auto pack_reset_block = [&](std::int64_t k) {
            const std::int64_t j0 = blocks.begin(k);
            // (row c of the r, z panels: drz's column c, gate (c - 2 j0') / nb' of unit
            // j0' + (c - 2 j0') % nb' in the block k' that holds it)
            const auto rz_column = [&](std::int64_t c) {
                const std::int64_t kc = c / (2 * blocks.size);
                const std::int64_t r = c - 2 * blocks.begin(kc), nbc = blocks.width(kc);
                return w.w_hh + ((r / nbc) * H + blocks.begin(kc) + r % nbc) * H + j0;
            };
            const auto n_column = [&](std::int64_t u) {
                return w_n + u * H + j0;
            };
            pack_panels_of_columns(blocks.width(k), 2 * H, rz_column, rz_panels.block(k));
            pack_panels_of_columns(blocks.width(k), H, n_column, n_panels.block(k));
        };
        const rnn::ClipBounds<T> bounds(opt.clip);
        const bool clipping = std::isfinite(opt.clip);
        // Input side: d(pre-activation) of r, z, n, per chunk of steps (backward_chunks),
        // [chunk rows, 3H]. linear_before_reset: the recurrent side differs in n (d hn =
        // da_n * r), so it has its own [chunk rows, 3H], dgh: each step's dh GEMM reads its
        // rows, and after the chunk dw_hh is one GEMM per chunk of blocks, as dw_ih (one per
        // gate and block would pack h again for each). Otherwise: da_n goes through W_hn to
        // d(r*h) (dn_step, drh), and r, z through W_h{r,z} (drz_step).
        const std::int64_t chunk_rows_max = backward_chunk_rows(sc);
        const Buffer<T> dgx(chunk_rows_max * GH);
        const Buffer<T> dgh(lbr ? chunk_rows_max * GH : 0);
        Buffer<T> dn_step(lbr ? 0 : 2 * BH), drz_step(lbr ? 0 : 4 * BH), drh(lbr ? 0 : BH);
        const PackedGradientRows<T> rows(sc, x, dx, s.I);
        const int threads = threads_for(2.0 * step_flops(s, G));
        BackwardBulk<T> bulk(s, sc, G, blocks, threads);

        parallel_region(threads, [&](int tid, int nthreads) {
            SharedTasks::Cursor bulk_cursor;
            if (reset_panels) for_each_owned_block(blocks.count, tid, nthreads, pack_reset_block);
            pw.pack(tid, nthreads);  // (ends with a barrier)
            const auto step = [&](std::int64_t st, std::int64_t base) {
                const std::int64_t n = sc.active(st), row0 = sc.offset(st);
                const T* gates = cache.gates + row0 * GH;
                const T* h_prev = hs.prev(st);
                T* dg = dgx.get() + (row0 - base) * GH;
                if (lbr) {
                    const T* hn = cache.hn + row0 * H;
                    T* dg_h = dgh.get() + (row0 - base) * GH;
                    for_each_owned_block(blocks.count, tid, nthreads, [&](std::int64_t k) {
                        const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                        rnn::with_flags(
                            [&](auto clip) {
                                for (std::int64_t i = 0; i < n; ++i) {
                                    const std::int64_t o = i * H + j0;
                                    if (dy)
                                        add_into(nb, dy + sc.source_row(st, i) * H + j0,
                                                 dh.get() + o);
                                    rnn::gru_cell_backward_row<T, decltype(clip)::value>(
                                        nb, gates + i * GH + G * j0, hn + o, h_prev + o, bounds,
                                        dh.get() + o, dg + i * GH + G * j0, dg_h + i * GH + G * j0);
                                }
                            },
                            clipping);
                    });
                    barrier();  // the recurrent GEMM reads every block of dgh
                    for_each_owned_block(blocks.count, tid, nthreads, [&](std::int64_t k) {
                        pw.recurrent_grad(n, GH, blocks, k, H, dg_h, GH, dh.get(), true);
                    });
                } else {
                    T* dn = dn_step.get() + (st & 1) * BH;
                    T* drz = drz_step.get() + (st & 1) * 2 * BH;
                    for_each_owned_block(blocks.count, tid, nthreads, [&](std::int64_t k) {
                        const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                        rnn::with_flags(
                            [&](auto clip) {
                                for (std::int64_t i = 0; i < n; ++i) {
                                    const std::int64_t o = i * H + j0;
                                    if (dy)
                                        add_into(nb, dy + sc.source_row(st, i) * H + j0,
                                                 dh.get() + o);
                                    rnn::gru_cell_backward_new_row<T, decltype(clip)::value>(
                                        nb, gates + i * GH + G * j0, h_prev + o, bounds,
                                        dh.get() + o, dg + i * GH + G * j0, dn + o,
                                        drz + i * 2 * H + 2 * j0 + nb);
                                }
                            },
                            clipping);
                    });
                    barrier();  // d(r*h) = da_n W_hn reads every unit of da_n
                    for_each_owned_block(blocks.count, tid, nthreads, [&](std::int64_t k) {
                        const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                        if (reset_panels) {
                            panel_gemm<T>(n, nb, H, dn, H, n_panels.block(k), drh.get() + j0, H);
                        } else if (n == 1) {  // (a one-row GEMM would copy W_hn's columns)
                            blas::gemv<T>(true, H, nb, T(1), w_n + j0, H, dn, 1, T(0),
                                          drh.get() + j0, 1);
                        } else {
                            blas::gemm<T>(false, false, n, nb, H, T(1), dn, H, w_n + j0, H, T(0),
                                          drh.get() + j0, H);
                        }
                        rnn::with_flags(
                            [&](auto clip) {
                                for (std::int64_t i = 0; i < n; ++i) {
                                    const std::int64_t o = i * H + j0;
                                    rnn::gru_cell_backward_reset_row<T, decltype(clip)::value>(
                                        nb, gates + i * GH + G * j0, h_prev + o, bounds,
                                        drh.get() + o, dh.get() + o, dg + i * GH + G * j0,
                                        drz + i * 2 * H + 2 * j0);
                                }
                            },
                            clipping);
                    });
                    barrier();  // the r, z GEMM reads every block of drz
                    for_each_owned_block(blocks.count, tid, nthreads, [&](std::int64_t k) {
                        const std::int64_t j0 = blocks.begin(k), nb = blocks.width(k);
                        if (reset_panels) {
                            panel_gemm<T, true>(n, nb, 2 * H, drz, 2 * H, rz_panels.block(k),
                                                dh.get() + j0, H);
                        } else if (direct) {
                            by_packed_rows(n, 2, blocks, drz, 2 * H, w.w_hh, H, j0, nb,
                                           dh.get() + j0, H, true);
                        } else {
                            blas::gemm<T>(false, false, n, nb, 2 * H, T(1), drz, 2 * H,
                                          w_rz.get() + j0, H, T(1), dh.get() + j0, H);
                        }
                    });
                }
                // The next step's first pass reads only this thread's own blocks of dh.
            };
            const auto chunk_done = [&](std::int64_t base, std::int64_t chunk_rows, bool first) {
                bulk.run(
                    chunk_rows, dgx.get(),
                    [&](std::int64_t g, std::int64_t j0, std::int64_t nb) {
                        if (lbr) {
                            return RecurrentSource<T>{dgh.get() + G * j0 + g * nb, GH,
                                                      cache.h + base * H};
                        }
                        if (g == 2) {
                            return RecurrentSource<T>{dgx.get() + G * j0 + g * nb, GH,
                                                      cache.hn + base * H};
                        }
                        return RecurrentSource<T>{dgx.get() + G * j0 + g * nb, GH,
                                                  cache.h + base * H};
                    },
                    lbr ? dgh.get() : nullptr, rows.x() + base * s.I, dw, pw,
                    rows.dx() + base * s.I, first, bulk_cursor, tid, nthreads);
            };
            backward_chunks(sc, step, chunk_done);
        });
        rows.finish();
    }
    dh.finish(dh0);
}

#define RNNKIT_INSTANTIATE(T)                                                                      \
    template void gru_sequence_forward<T>(const SeqShape&, const Schedule&, const CellWeights<T>&, \
                                          const GruOptions<T>&, const T*, const T*, T*, T*,        \
                                          const GruCache<T>*);                                     \
    template void gru_sequence_backward<T>(                                                        \
        const SeqShape&, const Schedule&, const CellWeights<T>&, const GruOptions<T>&, const T*,   \
        const GruCache<T>&, const T*, const T*, T*, T*, const WeightGrads<T>&);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit::bptt::RNNKIT_ISA_NS
