// The GRU cell's pointwise steps on the CUDA backend, forward next to backward: the device
// mirror of rnn/gru_cell.hpp, both reset placements. Grid and activity as in lstm_cell.hpp;
// rows in PyTorch's layout [r | z | n], H values each.
//
// linear_before_reset (PyTorch, cuDNN): rec = W_hh h for all three gates in one GEMM;
//   r = sigmoid(clip(gx_r + rec_r)), z = sigmoid(clip(gx_z + rec_z)),
//   hn = rec_n + b_hn, n = tanh(clip(gx_n + r * hn)), h' = (1 - z) n + z h.
// reset before the matmul (ONNX default, Keras reset_after=False), two phases per step:
//   phase 1: r, z from rec = W_h{r,z} h, and rh = r * h;  phase 2: n = tanh(clip(gx_n + W_hn rh)).
#pragma once

#include <cstdint>

#include "cuda/lstm_cell.hpp"

namespace rnnkit::cuda {

template <typename T>
struct GruForwardStep {
    std::int64_t H, t;
    const std::int32_t* lengths;
    const T* gx;      // [B, 3H] input projection, b_ih and b_h{r,z} folded in
    const T* rec;     // [B, 3H] W_hh h_prev
    const T* b_hn;    // [H] or null
    const T* h_prev;  // [B, H]
    T clip;
    T* gates;   // [B, 3H] activated r, z, n (training) or null
    T* hn_out;  // [B, H] W_hn h + b_hn (training) or null
    T* h_out;   // [B, H]
    T* y;       // [B, H] y[t]

    RNNKIT_HD void operator()(std::int64_t idx) const {
        const std::int64_t b = idx / H, u = idx % H;
        if (!row_active(lengths, t, b)) {
            h_out[idx] = h_prev[idx];
            y[idx] = T(0);
            if (gates != nullptr) {
                for (int g = 0; g < 3; ++g) gates[b * 3 * H + g * H + u] = T(0);
                hn_out[idx] = T(0);
            }
            return;
        }
        const T* a = gx + b * 3 * H;
        const T* rc = rec + b * 3 * H;
        const T r = sigmoid_of(clamp_pre(a[u] + rc[u], clip));
        const T z = sigmoid_of(clamp_pre(a[H + u] + rc[H + u], clip));
        const T hn = rc[2 * H + u] + (b_hn != nullptr ? b_hn[u] : T(0));
        const T n = tanh_of(clamp_pre(a[2 * H + u] + r * hn, clip));
        const T h = (T(1) - z) * n + z * h_prev[idx];
        h_out[idx] = h;
        y[idx] = h;
        if (gates != nullptr) {
            T* out = gates + b * 3 * H;
            out[u] = r;
            out[H + u] = z;
            out[2 * H + u] = n;
            hn_out[idx] = hn;
        }
    }
};

// Reset before the matmul, phase 1: r and z into gates[:, 0:2H], rh = r * h.
template <typename T>
struct GruResetStep {
    std::int64_t H, t;
    const std::int32_t* lengths;
    const T* gx;      // [B, 3H], every bias folded in
    const T* rec;     // [B, 3H] whose r, z parts hold W_h{r,z} h_prev
    const T* h_prev;  // [B, H]
    T clip;
    T* gates;  // [B, 3H] (training cache or scratch)
    T* rh;     // [B, H]

    RNNKIT_HD void operator()(std::int64_t idx) const {
        const std::int64_t b = idx / H, u = idx % H;
        T* out = gates + b * 3 * H;
        if (!row_active(lengths, t, b)) {
            out[u] = out[H + u] = out[2 * H + u] = T(0);
            rh[idx] = T(0);
            return;
        }
        const T* a = gx + b * 3 * H;
        const T* rc = rec + b * 3 * H;
        const T r = sigmoid_of(clamp_pre(a[u] + rc[u], clip));
        const T z = sigmoid_of(clamp_pre(a[H + u] + rc[H + u], clip));
        out[u] = r;
        out[H + u] = z;
        rh[idx] = r * h_prev[idx];
    }
};

// Reset before the matmul, phase 2: n from rec_n = W_hn rh, and h'.
template <typename T>
struct GruNewStep {
    std::int64_t H, t;
    const std::int32_t* lengths;
    const T* gx;
    const T* rec;  // [B, 3H] whose n part holds W_hn rh
    const T* h_prev;
    T clip;
    T* gates;
    T* h_out;
    T* y;

    RNNKIT_HD void operator()(std::int64_t idx) const {
        const std::int64_t b = idx / H, u = idx % H;
        if (!row_active(lengths, t, b)) {
            h_out[idx] = h_prev[idx];
            y[idx] = T(0);
            return;
        }
        T* g = gates + b * 3 * H;
        const T z = g[H + u];
        const T n =
            tanh_of(clamp_pre(gx[b * 3 * H + 2 * H + u] + rec[b * 3 * H + 2 * H + u], clip));
        const T h = (T(1) - z) * n + z * h_prev[idx];
        g[2 * H + u] = n;
        h_out[idx] = h;
        y[idx] = h;
    }
};

// linear_before_reset backward: the input-side gradients dgx [r|z|n] and the recurrent-side
// dgh [r|z|n] (n differs: d hn = da_n * r); the running dh of an active row becomes the part
// that flows straight through h' = ... + z h (the recurrent GEMM adds the rest).
template <typename T>
struct GruBackwardStep {
    std::int64_t H, t;
    const std::int32_t* lengths;
    const T* gates;   // [B, 3H]
    const T* hn;      // [B, H]
    const T* h_prev;  // [B, H]
    T clip;
    const T* dy;  // [B, H] dy[t] or null
    T* dh_run;    // [B, H]
    T* dgx;       // [B, 3H]
    T* dgh;       // [B, 3H]

    RNNKIT_HD void operator()(std::int64_t idx) const {
        const std::int64_t b = idx / H, u = idx % H;
        T* gx_out = dgx + b * 3 * H;
        T* gh_out = dgh + b * 3 * H;
        if (!row_active(lengths, t, b)) {
            for (int g = 0; g < 3; ++g) gx_out[g * H + u] = gh_out[g * H + u] = T(0);
            return;
        }
        const ClipBounds<T> cb(clip);
        const T* gr = gates + b * 3 * H;
        const T r = gr[u], z = gr[H + u], n = gr[2 * H + u];
        const T dh = dh_run[idx] + (dy != nullptr ? dy[idx] : T(0));
        const T a_n = cb.tanh_grad(n, dh * (T(1) - z) * dtanh_from_output(n));
        const T a_r = cb.sigmoid_grad(r, a_n * hn[idx] * dsigmoid_from_output(r));
        const T a_z = cb.sigmoid_grad(z, dh * (h_prev[idx] - n) * dsigmoid_from_output(z));
        gx_out[u] = gh_out[u] = a_r;
        gx_out[H + u] = gh_out[H + u] = a_z;
        gx_out[2 * H + u] = a_n;
        gh_out[2 * H + u] = a_n * r;
        dh_run[idx] = dh * z;
    }
};

// Reset before the matmul, backward phase A: da_n and da_z into dgx; the running dh of an
// active row becomes the whole gradient reaching h' (phase B needs it).
template <typename T>
struct GruBackwardNewStep {
    std::int64_t H, t;
    const std::int32_t* lengths;
    const T* gates;
    const T* h_prev;
    T clip;
    const T* dy;
    T* dh_run;
    T* dgx;

    RNNKIT_HD void operator()(std::int64_t idx) const {
        const std::int64_t b = idx / H, u = idx % H;
        T* out = dgx + b * 3 * H;
        if (!row_active(lengths, t, b)) {
            out[u] = out[H + u] = out[2 * H + u] = T(0);
            return;
        }
        const ClipBounds<T> cb(clip);
        const T* gr = gates + b * 3 * H;
        const T z = gr[H + u], n = gr[2 * H + u];
        const T dh = dh_run[idx] + (dy != nullptr ? dy[idx] : T(0));
        out[H + u] = cb.sigmoid_grad(z, dh * (h_prev[idx] - n) * dsigmoid_from_output(z));
        out[2 * H + u] = cb.tanh_grad(n, dh * (T(1) - z) * dtanh_from_output(n));
        dh_run[idx] = dh;
    }
};

// Reset before the matmul, backward phase B: from drh = W_hn^T da_n, da_r into dgx, and the
// running dh becomes the direct part dh z + drh r.
template <typename T>
struct GruBackwardResetStep {
    std::int64_t H, t;
    const std::int32_t* lengths;
    const T* gates;
    const T* h_prev;
    T clip;
    const T* drh;  // [B, H]
    T* dh_run;
    T* dgx;

    RNNKIT_HD void operator()(std::int64_t idx) const {
        const std::int64_t b = idx / H, u = idx % H;
        if (!row_active(lengths, t, b)) return;  // phase A zeroed the row's gradients
        const ClipBounds<T> cb(clip);
        const T* gr = gates + b * 3 * H;
        const T r = gr[u], z = gr[H + u];
        dgx[b * 3 * H + u] = cb.sigmoid_grad(r, drh[idx] * h_prev[idx] * dsigmoid_from_output(r));
        dh_run[idx] = dh_run[idx] * z + drh[idx] * r;
    }
};

}  // namespace rnnkit::cuda
