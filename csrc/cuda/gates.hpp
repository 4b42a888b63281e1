// The CUDA backend's activations and their derivatives: the device mirror of rnn/gates.hpp.
//
// Every function here is __host__ __device__ (RNNKIT_HD), so the same code runs in the CUDA
// kernels (nvcc) and in the host build of the backend's loops that CI checks without a GPU
// (host_emulation.cpp, g++). float uses the CUDA math library's expf/tanhf (accurate to a
// few ulp, no fast-math intrinsics), double uses exp/tanh.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define RNNKIT_HD __host__ __device__ inline
#else
#define RNNKIT_HD inline
#endif

namespace rnnkit::cuda {

// The activation of the vanilla RNN (rnn::Nonlinearity's values, kept apart so that this
// header does not pull in the CPU kernels' instruction-set namespaces).
enum class Activation { Tanh = 0, Relu = 1 };

RNNKIT_HD float exp_of(float x) {
    return expf(x);
}
RNNKIT_HD double exp_of(double x) {
    return exp(x);
}
RNNKIT_HD float tanh_of(float x) {
    return tanhf(x);
}
RNNKIT_HD double tanh_of(double x) {
    return tanh(x);
}

template <typename T>
RNNKIT_HD T sigmoid_of(T x) {
    return T(1) / (T(1) + exp_of(-x));
}
template <typename T>
RNNKIT_HD T relu_of(T x) {
    return x > T(0) ? x : (x == x ? T(0) : x);  // keeps NaN
}
template <typename T>
RNNKIT_HD T activate(Activation act, T x) {
    return act == Activation::Tanh ? tanh_of(x) : relu_of(x);
}

// Derivatives from the activation's output y.
template <typename T>
RNNKIT_HD T dsigmoid_from_output(T y) {
    return y * (T(1) - y);
}
template <typename T>
RNNKIT_HD T dtanh_from_output(T y) {
    return T(1) - y * y;
}
template <typename T>
RNNKIT_HD T dactivate_from_output(Activation act, T y) {
    return act == Activation::Tanh ? dtanh_from_output(y) : (y > T(0) ? T(1) : T(0));
}

// Gate pre-activation clipping (ONNX `clip`), as in rnn/gates.hpp: a is clamped to
// [-clip, clip]; the gradient passes only where the activation is not act(+-clip), which
// backward tells from the cached output alone. `clip` is +inf when off.
template <typename T>
RNNKIT_HD T clamp_pre(T a, T clip) {
    return a < -clip ? -clip : (a > clip ? clip : a);  // NaN compares false: kept
}

// The activations of the clip bounds, computed where they are compared (the same function on
// the same value gives the same bits, so a clamped gate is recognised exactly). A NaN
// activation (a NaN pre-activation) passes no gradient either, as on the CPU.
template <typename T>
struct ClipBounds {
    bool on;
    T sigmoid_lo, sigmoid_hi, tanh_lo, tanh_hi, relu_hi;

    RNNKIT_HD explicit ClipBounds(T clip)
        : on(clip < T(INFINITY)),
          sigmoid_lo(sigmoid_of(-clip)),
          sigmoid_hi(sigmoid_of(clip)),
          tanh_lo(tanh_of(-clip)),
          tanh_hi(tanh_of(clip)),
          relu_hi(clip) {}

    RNNKIT_HD T sigmoid_grad(T y, T g) const {
        return on && (y == sigmoid_lo || y == sigmoid_hi || y != y) ? T(0) : g;
    }
    RNNKIT_HD T tanh_grad(T y, T g) const {
        return on && (y == tanh_lo || y == tanh_hi || y != y) ? T(0) : g;
    }
    RNNKIT_HD T activation_grad(Activation act, T y, T g) const {
        if (act == Activation::Tanh) return tanh_grad(y, g);
        return on && (y == T(0) || y == relu_hi || y != y) ? T(0) : g;
    }
};

}  // namespace rnnkit::cuda
