// The GRU cell's pointwise steps, forward next to backward, for one batch row of one block of
// nb hidden units. Gate layout of a block row: [r | z | n], nb values each.
//
// linear_before_reset (PyTorch, cuDNN): one recurrent GEMM gives rec = W_hh h for all gates:
//   r = sigmoid(clip(pre_r + rec_r)),  z = sigmoid(clip(pre_z + rec_z))
//   hn = rec_n + b_hn,  n = tanh(clip(pre_n + r * hn)),  h' = (1 - z) n + z h
// reset before the matmul (ONNX default, Keras reset_after=False), two phases per step:
//   phase 1: r, z as above from rec = W_h{r,z} h, and rh = r * h
//   phase 2: n = tanh(clip(pre_n + W_hn rh))  (b_hn folded into pre_n),  h' as above
// pre holds the input projection with b_ih and the foldable part of b_hh.
#pragma once

#include <cstdint>

#include "rnn/gates.hpp"

namespace rnnkit::rnn {
inline namespace RNNKIT_ISA_NS {

// linear_before_reset forward. Writes h', the activated r, z, n over `pre` and hn to hn_out
// (the training cache, or scratch in inference: unconditional stores keep the loop free of
// branches, so it vectorises). b_hn is zeros when the cell has no b_hh. kSplitPre: rec holds
// W_hh h for all three gates ([r | z | n]); else (a fused step, PackedWeights::fused_forward)
// pre_r and pre_z hold the whole pre-activations already and rec only W_hn h.
template <typename T, bool kClip, bool kSplitPre = true>
inline void gru_cell_forward_row_units(std::int64_t nb, T* __restrict pre, const T* __restrict rec,
                                       const T* __restrict b_hn, const T* __restrict h_prev, T clip,
                                       T* __restrict h_out, T* __restrict hn_out) {
    const T* rec_n = kSplitPre ? rec + 2 * nb : rec;
    for (std::int64_t u = 0; u < nb; ++u) {
        const T a_r = kSplitPre ? pre[u] + rec[u] : pre[u];
        const T a_z = kSplitPre ? pre[nb + u] + rec[nb + u] : pre[nb + u];
        const T r = sigmoid(clamp_pre<kClip>(a_r, clip));
        const T z = sigmoid(clamp_pre<kClip>(a_z, clip));
        const T hn = rec_n[u] + b_hn[u];
        const T n = tanh(clamp_pre<kClip>(pre[2 * nb + u] + r * hn, clip));
        h_out[u] = (T(1) - z) * n + z * h_prev[u];
        pre[u] = r;
        pre[nb + u] = z;
        pre[2 * nb + u] = n;
        hn_out[u] = hn;
    }
}

template <typename T, bool kClip, bool kSplitPre = true>
inline void gru_cell_forward_row(std::int64_t nb, T* pre, const T* rec, const T* b_hn,
                                 const T* h_prev, T clip, T* h_out, T* hn_out) {
    if (!needs_padding(nb)) {
        gru_cell_forward_row_units<T, kClip, kSplitPre>(nb, pre, rec, b_hn, h_prev, clip, h_out,
                                                        hn_out);
        return;
    }
    const RowArray<T> arrays[] = {{pre, 3, Slice::InOut}, {rec, kSplitPre ? 3 : 1, Slice::In},
                                  {b_hn, 1, Slice::In},   {h_prev, 1, Slice::In},
                                  {h_out, 1, Slice::Out}, {hn_out, 1, Slice::Out}};
    on_padded_copies<T>(nb, arrays, [&](std::int64_t n, T* const* a) {
        gru_cell_forward_row_units<T, kClip, kSplitPre>(n, a[0], a[1], a[2], a[3], clip, a[4],
                                                        a[5]);
    });
}

// Reset before the matmul, phase 1: r and z (written over `pre`) and rh = r * h. rec_rz holds
// W_hr h and W_hz h as [r | z], nb each.
template <typename T, bool kClip>
inline void gru_cell_forward_reset_row_units(std::int64_t nb, T* __restrict pre,
                                             const T* __restrict rec_rz, const T* __restrict h_prev,
                                             T clip, T* __restrict rh) {
    for (std::int64_t u = 0; u < nb; ++u) {
        const T r = sigmoid(clamp_pre<kClip>(pre[u] + rec_rz[u], clip));
        const T z = sigmoid(clamp_pre<kClip>(pre[nb + u] + rec_rz[nb + u], clip));
        pre[u] = r;
        pre[nb + u] = z;
        rh[u] = r * h_prev[u];
    }
}

template <typename T, bool kClip>
inline void gru_cell_forward_reset_row(std::int64_t nb, T* pre, const T* rec_rz, const T* h_prev,
                                       T clip, T* rh) {
    if (!needs_padding(nb)) {
        gru_cell_forward_reset_row_units<T, kClip>(nb, pre, rec_rz, h_prev, clip, rh);
        return;
    }
    const RowArray<T> arrays[] = {{pre, 2, Slice::InOut},
                                  {rec_rz, 2, Slice::In},
                                  {h_prev, 1, Slice::In},
                                  {rh, 1, Slice::Out}};
    on_padded_copies<T>(nb, arrays, [&](std::int64_t n, T* const* a) {
        gru_cell_forward_reset_row_units<T, kClip>(n, a[0], a[1], a[2], clip, a[3]);
    });
}

// Reset before the matmul, phase 2: n from rec_n = W_hn rh, and h'; n overwrites pre_n (r
// and z are there already).
template <typename T, bool kClip>
inline void gru_cell_forward_new_row_units(std::int64_t nb, T* __restrict pre,
                                           const T* __restrict rec_n, const T* __restrict h_prev,
                                           T clip, T* __restrict h_out) {
    for (std::int64_t u = 0; u < nb; ++u) {
        const T z = pre[nb + u];
        const T n = tanh(clamp_pre<kClip>(pre[2 * nb + u] + rec_n[u], clip));
        h_out[u] = (T(1) - z) * n + z * h_prev[u];
        pre[2 * nb + u] = n;
    }
}

template <typename T, bool kClip>
inline void gru_cell_forward_new_row(std::int64_t nb, T* pre, const T* rec_n, const T* h_prev,
                                     T clip, T* h_out) {
    if (!needs_padding(nb)) {
        gru_cell_forward_new_row_units<T, kClip>(nb, pre, rec_n, h_prev, clip, h_out);
        return;
    }
    const RowArray<T> arrays[] = {{pre, 3, Slice::InOut},
                                  {rec_n, 1, Slice::In},
                                  {h_prev, 1, Slice::In},
                                  {h_out, 1, Slice::Out}};
    on_padded_copies<T>(nb, arrays, [&](std::int64_t n, T* const* a) {
        gru_cell_forward_new_row_units<T, kClip>(n, a[0], a[1], a[2], clip, a[3]);
    });
}

// linear_before_reset backward. From the activated gates, hn and h: the input-side
// pre-activation gradients dgx [r|z|n] and the recurrent-side ones dgh [r|z|n] (they differ
// in n: d hn = da_n * r). dh holds the gradient reaching h' on entry and,
// on return, the part of the gradient of h that flows directly through h' = ... + z h (the
// recurrent GEMM adds the rest).
template <typename T, bool kClip>
inline void gru_cell_backward_row_units(std::int64_t nb, const T* __restrict gates,
                                        const T* __restrict hn, const T* __restrict h_prev,
                                        const ClipBounds<T>& cb, T* __restrict dh,
                                        T* __restrict dgx, T* __restrict dgh) {
    for (std::int64_t u = 0; u < nb; ++u) {
        const T r = gates[u], z = gates[nb + u], n = gates[2 * nb + u];
        const T a_n = unless_clipped<kClip>(n, cb.tanh_lo, cb.tanh_hi,
                                            dh[u] * (T(1) - z) * dtanh_from_output(n));
        const T a_r = unless_clipped<kClip>(r, cb.sigmoid_lo, cb.sigmoid_hi,
                                            a_n * hn[u] * dsigmoid_from_output(r));
        const T a_z = unless_clipped<kClip>(z, cb.sigmoid_lo, cb.sigmoid_hi,
                                            dh[u] * (h_prev[u] - n) * dsigmoid_from_output(z));
        dgx[u] = a_r;
        dgx[nb + u] = a_z;
        dgx[2 * nb + u] = a_n;
        dgh[u] = a_r;
        dgh[nb + u] = a_z;
        dgh[2 * nb + u] = a_n * r;
        dh[u] = dh[u] * z;
    }
}

template <typename T, bool kClip>
inline void gru_cell_backward_row(std::int64_t nb, const T* gates, const T* hn, const T* h_prev,
                                  const ClipBounds<T>& cb, T* dh, T* dgx, T* dgh) {
    if (!needs_padding(nb)) {
        gru_cell_backward_row_units<T, kClip>(nb, gates, hn, h_prev, cb, dh, dgx, dgh);
        return;
    }
    const RowArray<T> arrays[] = {{gates, 3, Slice::In},  {hn, 1, Slice::In},
                                  {h_prev, 1, Slice::In}, {dh, 1, Slice::InOut},
                                  {dgx, 3, Slice::Out},   {dgh, 3, Slice::Out}};
    on_padded_copies<T>(nb, arrays, [&](std::int64_t n, T* const* a) {
        gru_cell_backward_row_units<T, kClip>(n, a[0], a[1], a[2], cb, a[3], a[4], a[5]);
    });
}

// Reset before the matmul, backward phase A: da_n and da_z from dh (the gradient reaching
// h'). Writes them to dgx, da_n also to dn (the input of the W_hn GEMM) and da_z to drz_z.
template <typename T, bool kClip>
inline void gru_cell_backward_new_row_units(std::int64_t nb, const T* __restrict gates,
                                            const T* __restrict h_prev, const ClipBounds<T>& cb,
                                            const T* __restrict dh, T* __restrict dgx,
                                            T* __restrict dn, T* __restrict drz_z) {
    for (std::int64_t u = 0; u < nb; ++u) {
        const T z = gates[nb + u], n = gates[2 * nb + u];
        const T a_n = unless_clipped<kClip>(n, cb.tanh_lo, cb.tanh_hi,
                                            dh[u] * (T(1) - z) * dtanh_from_output(n));
        const T a_z = unless_clipped<kClip>(z, cb.sigmoid_lo, cb.sigmoid_hi,
                                            dh[u] * (h_prev[u] - n) * dsigmoid_from_output(z));
        dgx[nb + u] = a_z;
        dgx[2 * nb + u] = a_n;
        dn[u] = a_n;
        drz_z[u] = a_z;
    }
}

template <typename T, bool kClip>
inline void gru_cell_backward_new_row(std::int64_t nb, const T* gates, const T* h_prev,
                                      const ClipBounds<T>& cb, const T* dh, T* dgx, T* dn,
                                      T* drz_z) {
    if (!needs_padding(nb)) {
        gru_cell_backward_new_row_units<T, kClip>(nb, gates, h_prev, cb, dh, dgx, dn, drz_z);
        return;
    }
    const RowArray<T> arrays[] = {{gates, 3, Slice::In}, {h_prev, 1, Slice::In},
                                  {dh, 1, Slice::In},    {dgx, 3, Slice::InOut},
                                  {dn, 1, Slice::Out},   {drz_z, 1, Slice::Out}};
    on_padded_copies<T>(nb, arrays, [&](std::int64_t n, T* const* a) {
        gru_cell_backward_new_row_units<T, kClip>(n, a[0], a[1], cb, a[2], a[3], a[4], a[5]);
    });
}

// Reset before the matmul, backward phase B: from drh = W_hn^T da_n, da_r (to dgx and
// drz_r), and dh becomes the direct part of the gradient of h: dh z + drh r.
template <typename T, bool kClip>
inline void gru_cell_backward_reset_row_units(std::int64_t nb, const T* __restrict gates,
                                              const T* __restrict h_prev, const ClipBounds<T>& cb,
                                              const T* __restrict drh, T* __restrict dh,
                                              T* __restrict dgx, T* __restrict drz_r) {
    for (std::int64_t u = 0; u < nb; ++u) {
        const T r = gates[u], z = gates[nb + u];
        const T a_r = unless_clipped<kClip>(r, cb.sigmoid_lo, cb.sigmoid_hi,
                                            drh[u] * h_prev[u] * dsigmoid_from_output(r));
        dgx[u] = a_r;
        drz_r[u] = a_r;
        dh[u] = dh[u] * z + drh[u] * r;
    }
}

template <typename T, bool kClip>
inline void gru_cell_backward_reset_row(std::int64_t nb, const T* gates, const T* h_prev,
                                        const ClipBounds<T>& cb, const T* drh, T* dh, T* dgx,
                                        T* drz_r) {
    if (!needs_padding(nb)) {
        gru_cell_backward_reset_row_units<T, kClip>(nb, gates, h_prev, cb, drh, dh, dgx, drz_r);
        return;
    }
    const RowArray<T> arrays[] = {{gates, 2, Slice::In},  {h_prev, 1, Slice::In},
                                  {drh, 1, Slice::In},    {dh, 1, Slice::InOut},
                                  {dgx, 1, Slice::InOut}, {drz_r, 1, Slice::Out}};
    on_padded_copies<T>(nb, arrays, [&](std::int64_t n, T* const* a) {
        gru_cell_backward_reset_row_units<T, kClip>(n, a[0], a[1], cb, a[2], a[3], a[4], a[5]);
    });
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit::rnn
