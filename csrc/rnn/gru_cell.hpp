// The GRU cell's pointwise step (PyTorch/cuDNN formulation, reset after the recurrent matmul),
// forward next to backward, for one batch row of one block of nb hidden units.
//
// Gate layout of a block row: [r | z | n], nb values each:
//   r = sigmoid(pre_r + rec_r),  z = sigmoid(pre_z + rec_z)
//   hn = rec_n + b_hn,  n = tanh(pre_n + r * hn),  h' = (1 - z) * n + z * h
// pre holds the input projection with b_ih (and b_hh for r, z) folded in; rec is W_hh h.
#pragma once

#include <cstdint>

#include "rnn/gates.hpp"

namespace rnnkit::rnn {

// Writes h'. When keep (training), the activated r, z, n overwrite `pre` and hn goes to hn_out.
template <typename T>
inline void gru_cell_forward_row(std::int64_t nb, T* __restrict pre, const T* __restrict rec,
                                 const T* __restrict b_hn, const T* __restrict h_prev,
                                 T* __restrict h_out, T* __restrict hn_out) {
    for (std::int64_t u = 0; u < nb; ++u) {
        const T r = sigmoid(pre[u] + rec[u]);
        const T z = sigmoid(pre[nb + u] + rec[nb + u]);
        const T hn = rec[2 * nb + u] + (b_hn ? b_hn[u] : T(0));
        const T n = tanh(pre[2 * nb + u] + r * hn);
        h_out[u] = (T(1) - z) * n + z * h_prev[u];
        if (hn_out) {
            pre[u] = r;
            pre[nb + u] = z;
            pre[2 * nb + u] = n;
            hn_out[u] = hn;
        }
    }
}

// From the activated gates, hn and h: the input-side pre-activation gradients dgx [r|z|n], the
// recurrent-side ones dgh [r|z|n] (they differ in n: d hn = dn_pre * r, also written to
// dhn). dh holds the gradient reaching h' on entry and, on return, the part of the gradient
// of h that flows directly through h' = ... + z * h (the recurrent GEMM adds the rest).
template <typename T>
inline void gru_cell_backward_row(std::int64_t nb, const T* __restrict gates,
                                  const T* __restrict hn, const T* __restrict h_prev,
                                  T* __restrict dh, T* __restrict dgx, T* __restrict dgh,
                                  T* __restrict dhn) {
    for (std::int64_t u = 0; u < nb; ++u) {
        const T r = gates[u], z = gates[nb + u], n = gates[2 * nb + u];
        const T n_pre = dh[u] * (T(1) - z) * dtanh_from_output(n);
        const T r_pre = n_pre * hn[u] * dsigmoid_from_output(r);
        const T z_pre = dh[u] * (h_prev[u] - n) * dsigmoid_from_output(z);
        dgx[u] = r_pre;
        dgx[nb + u] = z_pre;
        dgx[2 * nb + u] = n_pre;
        dgh[u] = r_pre;
        dgh[nb + u] = z_pre;
        dgh[2 * nb + u] = n_pre * r;
        dhn[u] = n_pre * r;
        dh[u] = dh[u] * z;
    }
}

}  // namespace rnnkit::rnn
