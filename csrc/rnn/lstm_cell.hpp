// The LSTM cell's pointwise step, forward next to backward, for one batch row of one block of
// nb hidden units. Shared by the sequence loops (and, later, mirrored by the CUDA kernels).
//
// Gate layout of a block row (see bptt/engine.hpp): [i | f | g | o], nb values each. With
// a_* = pre_* + rec_* (input projection with folded biases, plus W_hh h):
//   i = sigmoid(clip(a_i + p_i c)),  f = sigmoid(clip(a_f + p_f c))  (CIFG: f = 1 - i)
//   g = tanh(clip(a_g)),  c' = f c + i g,  o = sigmoid(clip(a_o + p_o c')),  m = o tanh(c')
// The peephole terms p_* (ONNX semantics) and clip are compile-time options (kPeep, kClip,
// kCifg), so the plain LSTM runs the plain loop. m is h' itself, or the input of the
// projection h' = W_hr m when there is one.
#pragma once

#include <cstdint>

#include "rnn/gates.hpp"

namespace rnnkit::rnn {
inline namespace RNNKIT_ISA_NS {

// Per-unit parameters of a block: the peephole vectors (offset to the block's first unit;
// null without peepholes) and the clip bounds.
template <typename T>
struct LstmRowParams {
    const T* p_i;
    const T* p_f;
    const T* p_o;
    const ClipBounds<T>* bounds;
};

// rec[idx], or 0 when the pre-activations have no separate recurrent part (kRec false).
template <bool kRec, typename T>
RNNKIT_INLINE T rec_part(const T* __restrict rec, std::int64_t idx) {
    if constexpr (kRec) {
        return rec[idx];
    } else {
        (void)rec;
        (void)idx;
        return T(0);
    }
}

// Writes c' and m, and the activated gates over `pre` (the training cache, or scratch in
// inference: writing them unconditionally keeps the loop free of branches, so it vectorises).
// The pre-activations are pre + rec, or pre alone when kRec is false (rec is then unused: the
// step's GEMM summed both sides already; adding 0 costs an add and leaves every value but -0
// unchanged, which no activation tells from +0).
//
// Never inlined: compiled on its own, with the __restrict of its parameters, the loop always
// vectorises. Inlined into the time loop it vectorised or not depending on unrelated code in
// that function (one change elsewhere left it scalar, and the LSTM forward 2x slower).
template <typename T, bool kPeep, bool kCifg, bool kClip, bool kRec = true>
RNNKIT_NOINLINE void lstm_cell_forward_row_units(std::int64_t nb, T* __restrict pre,
                                                 const T* __restrict rec,
                                                 const T* __restrict c_prev,
                                                 const LstmRowParams<T>& p, T* __restrict c_out,
                                                 T* __restrict m_out) {
    const T clip = p.bounds->clip;
    for (std::int64_t u = 0; u < nb; ++u) {
        T a_i = pre[u] + rec_part<kRec>(rec, u);
        T a_f = pre[nb + u] + rec_part<kRec>(rec, nb + u);
        T a_o = pre[3 * nb + u] + rec_part<kRec>(rec, 3 * nb + u);
        if constexpr (kPeep) {
            a_i += p.p_i[u] * c_prev[u];
            a_f += p.p_f[u] * c_prev[u];
        }
        const T i = sigmoid(clamp_pre<kClip>(a_i, clip));
        const T f = kCifg ? T(1) - i : sigmoid(clamp_pre<kClip>(a_f, clip));
        const T g = tanh(clamp_pre<kClip>(pre[2 * nb + u] + rec_part<kRec>(rec, 2 * nb + u), clip));
        const T c = f * c_prev[u] + i * g;
        if constexpr (kPeep) a_o += p.p_o[u] * c;
        const T o = sigmoid(clamp_pre<kClip>(a_o, clip));
        c_out[u] = c;
        m_out[u] = o * tanh(c);
        pre[u] = i;
        pre[nb + u] = f;
        pre[2 * nb + u] = g;
        pre[3 * nb + u] = o;
    }
}

template <typename T, bool kPeep, bool kCifg, bool kClip, bool kRec = true>
inline void lstm_cell_forward_row(std::int64_t nb, T* pre, const T* rec, const T* c_prev,
                                  const LstmRowParams<T>& p, T* c_out, T* m_out) {
    if (!needs_padding(nb)) {
        lstm_cell_forward_row_units<T, kPeep, kCifg, kClip, kRec>(
            nb, pre, kRec ? rec : nullptr, c_prev, LstmRowParams<T>{p.p_i, p.p_f, p.p_o, p.bounds},
            c_out, m_out);
        return;
    }
    const RowArray<T> arrays[] = {{pre, 4, Slice::InOut}, {kRec ? rec : nullptr, 4, Slice::In},
                                  {c_prev, 1, Slice::In}, {p.p_i, 1, Slice::In},
                                  {p.p_f, 1, Slice::In},  {p.p_o, 1, Slice::In},
                                  {c_out, 1, Slice::Out}, {m_out, 1, Slice::Out}};
    on_padded_copies<T>(nb, arrays, [&](std::int64_t n, T* const* a) {
        lstm_cell_forward_row_units<T, kPeep, kCifg, kClip, kRec>(
            n, a[0], a[1], a[2], LstmRowParams<T>{a[3], a[4], a[5], p.bounds}, a[6], a[7]);
    });
}

// From the activated gates and c', c: the pre-activation gradients `dgates` (same layout).
// dm is the gradient reaching m (h', or the projection's input), dc the one reaching c' from
// the next step; on return dc holds the gradient for c (the previous step's cell state).
template <typename T, bool kPeep, bool kCifg, bool kClip>
inline void lstm_cell_backward_row_units(std::int64_t nb, const T* __restrict gates,
                                         const T* __restrict c, const T* __restrict c_prev,
                                         const LstmRowParams<T>& p, const T* __restrict dm,
                                         T* __restrict dc, T* __restrict dgates) {
    const ClipBounds<T>& cb = *p.bounds;
    for (std::int64_t u = 0; u < nb; ++u) {
        const T i = gates[u], f = gates[nb + u], g = gates[2 * nb + u], o = gates[3 * nb + u];
        const T tc = tanh(c[u]);  // recomputed: cheaper than caching another [N, H]
        const T da_o = unless_clipped<kClip>(o, cb.sigmoid_lo, cb.sigmoid_hi,
                                             dm[u] * tc * dsigmoid_from_output(o));
        T c_grad = dc[u] + dm[u] * o * dtanh_from_output(tc);
        if constexpr (kPeep) c_grad += da_o * p.p_o[u];
        // CIFG (f = 1 - i): the gradient through i plus the one through f, each path on its
        // own as autograd (and the reference) sums them: c_grad * (g - c_prev) would turn an
        // infinite c_grad into +-inf where they give inf - inf = NaN.
        const T di = kCifg ? c_grad * g - c_grad * c_prev[u] : c_grad * g;
        const T da_i =
            unless_clipped<kClip>(i, cb.sigmoid_lo, cb.sigmoid_hi, di * dsigmoid_from_output(i));
        const T da_f = kCifg ? T(0)
                             : unless_clipped<kClip>(f, cb.sigmoid_lo, cb.sigmoid_hi,
                                                     c_grad * c_prev[u] * dsigmoid_from_output(f));
        const T da_g =
            unless_clipped<kClip>(g, cb.tanh_lo, cb.tanh_hi, c_grad * i * dtanh_from_output(g));
        dgates[u] = da_i;
        dgates[nb + u] = da_f;
        dgates[2 * nb + u] = da_g;
        dgates[3 * nb + u] = da_o;
        T dc_prev = c_grad * f;
        if constexpr (kPeep) dc_prev += da_i * p.p_i[u] + da_f * p.p_f[u];
        dc[u] = dc_prev;
    }
}

template <typename T, bool kPeep, bool kCifg, bool kClip>
inline void lstm_cell_backward_row(std::int64_t nb, const T* gates, const T* c, const T* c_prev,
                                   const LstmRowParams<T>& p, const T* dm, T* dc, T* dgates) {
    if (!needs_padding(nb)) {
        lstm_cell_backward_row_units<T, kPeep, kCifg, kClip>(
            nb, gates, c, c_prev, LstmRowParams<T>{p.p_i, p.p_f, p.p_o, p.bounds}, dm, dc, dgates);
        return;
    }
    const RowArray<T> arrays[] = {
        {gates, 4, Slice::In}, {c, 1, Slice::In},     {c_prev, 1, Slice::In},
        {p.p_i, 1, Slice::In}, {p.p_f, 1, Slice::In}, {p.p_o, 1, Slice::In},
        {dm, 1, Slice::In},    {dc, 1, Slice::InOut}, {dgates, 4, Slice::Out}};
    on_padded_copies<T>(nb, arrays, [&](std::int64_t n, T* const* a) {
        lstm_cell_backward_row_units<T, kPeep, kCifg, kClip>(
            n, a[0], a[1], a[2], LstmRowParams<T>{a[3], a[4], a[5], p.bounds}, a[6], a[7], a[8]);
    });
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit::rnn
