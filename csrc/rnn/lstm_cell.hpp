// The LSTM cell's pointwise step, forward next to backward, for one batch row of one block of
// nb hidden units. Shared by the sequence loops (and, later, mirrored by the CUDA kernels).
//
// Gate layout of a block row (see bptt/engine.hpp): [i | f | g | o], nb values each, with
//   i = sigmoid(.), f = sigmoid(.), g = tanh(.), o = sigmoid(.)
//   c' = f * c + i * g,   h' = o * tanh(c')
// Pre-activations are pre[k] + rec[k] (input projection with folded biases, and W_hh h).
#pragma once

#include <cstdint>

#include "rnn/gates.hpp"

namespace rnnkit::rnn {

// Writes c' and h'. When keep_gates, the activated gates overwrite `pre` (the training cache).
template <typename T>
inline void lstm_cell_forward_row(std::int64_t nb, T* __restrict pre, const T* __restrict rec,
                                  const T* __restrict c_prev, T* __restrict c_out,
                                  T* __restrict h_out, bool keep_gates) {
    for (std::int64_t u = 0; u < nb; ++u) {
        const T i = sigmoid(pre[u] + rec[u]);
        const T f = sigmoid(pre[nb + u] + rec[nb + u]);
        const T g = tanh(pre[2 * nb + u] + rec[2 * nb + u]);
        const T o = sigmoid(pre[3 * nb + u] + rec[3 * nb + u]);
        const T c = f * c_prev[u] + i * g;
        c_out[u] = c;
        h_out[u] = o * tanh(c);
        if (keep_gates) {
            pre[u] = i;
            pre[nb + u] = f;
            pre[2 * nb + u] = g;
            pre[3 * nb + u] = o;
        }
    }
}

// From the activated gates and c', c: the pre-activation gradients `dgates` (same layout).
// dh is the gradient reaching h' (through y and the next step), dc the one reaching c' from
// the next step; on return dc holds the gradient for c (the previous step's cell state).
template <typename T>
inline void lstm_cell_backward_row(std::int64_t nb, const T* __restrict gates,
                                   const T* __restrict c, const T* __restrict c_prev,
                                   const T* __restrict dh, T* __restrict dc, T* __restrict dgates) {
    for (std::int64_t u = 0; u < nb; ++u) {
        const T i = gates[u], f = gates[nb + u], g = gates[2 * nb + u], o = gates[3 * nb + u];
        const T tc = tanh(c[u]);  // recomputed: cheaper than caching another [T, B, H]
        const T c_grad = dc[u] + dh[u] * o * dtanh_from_output(tc);
        dgates[u] = c_grad * g * dsigmoid_from_output(i);
        dgates[nb + u] = c_grad * c_prev[u] * dsigmoid_from_output(f);
        dgates[2 * nb + u] = c_grad * i * dtanh_from_output(g);
        dgates[3 * nb + u] = dh[u] * tc * dsigmoid_from_output(o);
        dc[u] = c_grad * f;
    }
}

}  // namespace rnnkit::rnn
