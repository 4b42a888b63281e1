// The vanilla RNN cell's pointwise steps on the CUDA backend: the device mirror of
// rnn/rnn_cell.hpp. h' = act(clip(gx + W_hh h)), act = tanh or relu; backward needs only h'.
// Grid and activity as in lstm_cell.hpp.
#pragma once

#include <cstdint>

#include "cuda/lstm_cell.hpp"

namespace rnnkit::cuda {

template <typename T>
struct RnnForwardStep {
    std::int64_t H, t;
    const std::int32_t* lengths;
    const T* gx;   // [B, H], both biases folded in
    const T* rec;  // [B, H]
    const T* h_prev;
    Activation act;
    T clip;
    T* h_out;
    T* y;

    RNNKIT_HD void operator()(std::int64_t idx) const {
        const std::int64_t b = idx / H;
        if (!row_active(lengths, t, b)) {
            h_out[idx] = h_prev[idx];
            y[idx] = T(0);
            return;
        }
        const T h = activate(act, clamp_pre(gx[idx] + rec[idx], clip));
        h_out[idx] = h;
        y[idx] = h;
    }
};

template <typename T>
struct RnnBackwardStep {
    std::int64_t H, t;
    const std::int32_t* lengths;
    const T* h;  // [B, H] h' of step t
    Activation act;
    T clip;
    const T* dy;  // [B, H] dy[t] or null
    T* dh_run;    // [B, H]: restarts from zero in active rows (the recurrent GEMM refills it)
    T* dgates;    // [B, H]

    RNNKIT_HD void operator()(std::int64_t idx) const {
        const std::int64_t b = idx / H;
        if (!row_active(lengths, t, b)) {
            dgates[idx] = T(0);
            return;
        }
        const ClipBounds<T> cb(clip);
        const T dh = dh_run[idx] + (dy != nullptr ? dy[idx] : T(0));
        dgates[idx] = cb.activation_grad(act, h[idx], dh * dactivate_from_output(act, h[idx]));
        dh_run[idx] = T(0);
    }
};

}  // namespace rnnkit::cuda
