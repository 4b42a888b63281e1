// The vanilla RNN cell's pointwise step, forward next to backward, for one batch row of nb
// hidden units: h' = act(pre + rec), act = tanh or relu, pre = W_ih x + b_ih + b_hh,
// rec = W_hh h. The activation's output is the state itself, so backward needs only h'.
#pragma once

#include <cstdint>
#include <type_traits>

#include "rnn/gates.hpp"

namespace rnnkit::rnn {
inline namespace RNNKIT_ISA_NS {

template <typename T, Nonlinearity Act>
inline T rnn_activate(T v) {
    if constexpr (Act == Nonlinearity::Tanh) {
        return tanh(v);
    } else {
        return relu(v);
    }
}

template <typename T, Nonlinearity Act>
inline T rnn_activation_grad(T y) {
    if constexpr (Act == Nonlinearity::Tanh) {
        return dtanh_from_output(y);
    } else {
        return drelu_from_output(y);
    }
}

// h_out may alias pre. kSplitPre: the pre-activation is pre + rec (W_hh h); else (a fused
// step, PackedWeights::fused_forward) pre holds all of it and rec is not read.
template <typename T, Nonlinearity Act, bool kClip, bool kSplitPre = true>
inline void rnn_cell_forward_row(std::int64_t nb, const T* pre, const T* __restrict rec, T clip,
                                 T* h_out) {
    for (std::int64_t u = 0; u < nb; ++u) {
        const T a = kSplitPre ? pre[u] + rec[u] : pre[u];
        h_out[u] = rnn_activate<T, Act>(clamp_pre<kClip>(a, clip));
    }
}

// dgates = dh * act'(h') where the pre-activation was not clipped.
template <typename T, Nonlinearity Act, bool kClip>
inline void rnn_cell_backward_row(std::int64_t nb, const T* __restrict h, const T* __restrict dh,
                                  const ClipBounds<T>& cb, T* __restrict dgates) {
    const T lo = Act == Nonlinearity::Tanh ? cb.tanh_lo : T(0);
    const T hi = Act == Nonlinearity::Tanh ? cb.tanh_hi : cb.relu_hi;
    for (std::int64_t u = 0; u < nb; ++u) {
        dgates[u] = unless_clipped<kClip>(h[u], lo, hi, dh[u] * rnn_activation_grad<T, Act>(h[u]));
    }
}

// Calls fn with the activation as a compile-time constant, so the loops are specialised.
template <typename Fn>
inline void with_nonlinearity(Nonlinearity act, Fn&& fn) {
    if (act == Nonlinearity::Tanh) {
        fn(std::integral_constant<Nonlinearity, Nonlinearity::Tanh>{});
    } else {
        fn(std::integral_constant<Nonlinearity, Nonlinearity::Relu>{});
    }
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit::rnn
