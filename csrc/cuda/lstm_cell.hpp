// The LSTM cell's pointwise steps on the CUDA backend, forward next to backward: the device
// mirror of rnn/lstm_cell.hpp, with the same formulas (peepholes, CIFG, clipping).
//
// Each functor is one step of one layer-direction, applied to every (b, u) of a [B, H] grid
// (idx = b * H + u) by the executor's for_each: one CUDA thread per element on a GPU, a loop
// on the host. Rows are in PyTorch's gate layout, [i | f | g | o] with H values each, so that
// the cuBLAS GEMMs write and read them directly. A row b is active at step t when
// t < lengths[b] (every row when lengths is null); an inactive row keeps its state, has zero
// output and zero gate gradients.
#pragma once

#include <cstdint>

#include "cuda/gates.hpp"

namespace rnnkit::cuda {

RNNKIT_HD bool row_active(const std::int32_t* lengths, std::int64_t t, std::int64_t b) {
    return lengths == nullptr || t < lengths[b];
}

template <typename T>
struct LstmForwardStep {
    std::int64_t H, t;
    const std::int32_t* lengths;
    const T* gx;         // [B, 4H] input projection of step t, biases folded in
    const T* rec;        // [B, 4H] W_hh h_prev
    const T* c_prev;     // [B, H]
    const T* h_prev;     // [B, H] (no projection: carried by inactive rows)
    const T* peepholes;  // [3, H] (i, f, o) or null
    bool cifg;
    T clip;
    T* gates;  // [B, 4H] activated gates (training) or null
    T* c_out;  // [B, H]
    T* m_out;  // [B, H] o * tanh(c'): the projection's input, or null without projection
    T* h_out;  // [B, H] the new state without projection, else null
    T* y;      // [B, H] y[t] without projection, else null

    RNNKIT_HD void operator()(std::int64_t idx) const {
        const std::int64_t b = idx / H, u = idx % H;
        const T* a = gx + b * 4 * H;
        const T* r = rec + b * 4 * H;
        const T c0 = c_prev[idx];
        if (!row_active(lengths, t, b)) {
            c_out[idx] = c0;
            if (gates != nullptr) {
                for (int g = 0; g < 4; ++g) gates[b * 4 * H + g * H + u] = T(0);
            }
            if (m_out != nullptr) m_out[idx] = T(0);
            if (h_out != nullptr) {
                h_out[idx] = h_prev[idx];
                y[idx] = T(0);
            }
            return;
        }
        T a_i = a[u] + r[u];
        T a_f = a[H + u] + r[H + u];
        const T a_g = a[2 * H + u] + r[2 * H + u];
        T a_o = a[3 * H + u] + r[3 * H + u];
        if (peepholes != nullptr) {
            a_i += peepholes[u] * c0;
            a_f += peepholes[H + u] * c0;
        }
        const T i = sigmoid_of(clamp_pre(a_i, clip));
        const T f = cifg ? T(1) - i : sigmoid_of(clamp_pre(a_f, clip));
        const T g = tanh_of(clamp_pre(a_g, clip));
        const T c = f * c0 + i * g;
        if (peepholes != nullptr) a_o += peepholes[2 * H + u] * c;
        const T o = sigmoid_of(clamp_pre(a_o, clip));
        const T m = o * tanh_of(c);
        c_out[idx] = c;
        if (gates != nullptr) {
            T* out = gates + b * 4 * H;
            out[u] = i;
            out[H + u] = f;
            out[2 * H + u] = g;
            out[3 * H + u] = o;
        }
        if (m_out != nullptr) m_out[idx] = m;
        if (h_out != nullptr) {
            h_out[idx] = m;
            y[idx] = m;
        }
    }
};

// With a projection, after h' = W_hr m: inactive rows keep h and output zero; y[t] = h'.
template <typename T>
struct CarryProjectedState {
    std::int64_t P, t;
    const std::int32_t* lengths;
    const T* h_prev;  // [B, P]
    T* h_out;         // [B, P] W_hr m on entry
    T* y;             // [B, P] y[t]

    RNNKIT_HD void operator()(std::int64_t idx) const {
        const std::int64_t b = idx / P;
        if (row_active(lengths, t, b)) {
            y[idx] = h_out[idx];
        } else {
            h_out[idx] = h_prev[idx];
            y[idx] = T(0);
        }
    }
};

// With a projection, before the step's backward: the gradient reaching h' (the running dh
// plus dy[t]) goes to dh_total[t] for active rows, whose running dh restarts from zero (the
// recurrent GEMM refills it); an inactive row passes its running dh on unchanged.
template <typename T>
struct SplitProjectedGrad {
    std::int64_t P, t;
    const std::int32_t* lengths;
    const T* dy;  // [B, P] dy[t] or null
    T* dh_run;    // [B, P]
    T* dh_total;  // [B, P] of step t

    RNNKIT_HD void operator()(std::int64_t idx) const {
        const std::int64_t b = idx / P;
        if (row_active(lengths, t, b)) {
            dh_total[idx] = dh_run[idx] + (dy != nullptr ? dy[idx] : T(0));
            dh_run[idx] = T(0);
        } else {
            dh_total[idx] = T(0);
        }
    }
};

// Backward of one step. dm is the gradient reaching m: from `dm` (projection) or the running
// dh plus dy[t] (no projection, in which case the running dh of an active row restarts from
// zero, as above). dc_run carries the gradient of the cell state from step t+1 to step t.
template <typename T>
struct LstmBackwardStep {
    std::int64_t H, t;
    const std::int32_t* lengths;
    const T* gates;   // [B, 4H] of step t
    const T* c;       // [B, H] c' of step t
    const T* c_prev;  // [B, H]
    const T* peepholes;
    bool cifg;
    T clip;
    const T* dm;  // [B, H] (projection) or null
    const T* dy;  // [B, H] dy[t] or null (no projection)
    T* dh_run;    // [B, H] (no projection)
    T* dc_run;    // [B, H]
    T* dgates;    // [B, 4H] pre-activation gradients of step t

    RNNKIT_HD void operator()(std::int64_t idx) const {
        const std::int64_t b = idx / H, u = idx % H;
        T* dg = dgates + b * 4 * H;
        if (!row_active(lengths, t, b)) {
            for (int g = 0; g < 4; ++g) dg[g * H + u] = T(0);
            return;
        }
        T dmv;
        if (dm != nullptr) {
            dmv = dm[idx];
        } else {
            dmv = dh_run[idx] + (dy != nullptr ? dy[idx] : T(0));
            dh_run[idx] = T(0);
        }
        const ClipBounds<T> cb(clip);
        const T* gr = gates + b * 4 * H;
        const T i = gr[u], f = gr[H + u], g = gr[2 * H + u], o = gr[3 * H + u];
        const T cp = c_prev[idx];
        const T tc = tanh_of(c[idx]);
        const T da_o = cb.sigmoid_grad(o, dmv * tc * dsigmoid_from_output(o));
        T c_grad = dc_run[idx] + dmv * o * dtanh_from_output(tc);
        if (peepholes != nullptr) c_grad += da_o * peepholes[2 * H + u];
        const T di = cifg ? c_grad * g - c_grad * cp : c_grad * g;  // as the CPU's (NaN for inf)
        const T da_i = cb.sigmoid_grad(i, di * dsigmoid_from_output(i));
        const T da_f = cifg ? T(0) : cb.sigmoid_grad(f, c_grad * cp * dsigmoid_from_output(f));
        const T da_g = cb.tanh_grad(g, c_grad * i * dtanh_from_output(g));
        dg[u] = da_i;
        dg[H + u] = da_f;
        dg[2 * H + u] = da_g;
        dg[3 * H + u] = da_o;
        T dc_prev = c_grad * f;
        if (peepholes != nullptr) dc_prev += da_i * peepholes[u] + da_f * peepholes[H + u];
        dc_run[idx] = dc_prev;
    }
};

}  // namespace rnnkit::cuda
