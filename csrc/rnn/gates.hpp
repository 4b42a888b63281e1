// Activation functions and their derivatives, written in terms of the activation's *output*
// (sigmoid' = y(1-y), tanh' = 1-y^2, relu' = [y > 0]) so that backward needs only the
// activations cached by forward.
//
// Both dtypes use branch-free approximations that the compiler vectorises (libm's calls would
// keep the pointwise loops scalar): float32 Cephes's expf/tanhf polynomials (~1-2 ulp),
// float64 Cephes's exp/tanh rational forms (~1 ulp: float64 is the accuracy path that
// gradient checks run on; tests/test_numerics.py measures both against libm). NaN propagates
// through every function; +-Inf saturate as the math says.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common/isa.hpp"

#if defined(__GNUC__)
#define RNNKIT_INLINE inline __attribute__((always_inline))
#define RNNKIT_NOINLINE __attribute__((noinline))
#else
#define RNNKIT_INLINE inline
#define RNNKIT_NOINLINE
#endif

namespace rnnkit::rnn {

enum class Nonlinearity { Tanh, Relu };

inline namespace RNNKIT_ISA_NS {
namespace detail {

// e where !(x < lowest), else 0 (NaN x keeps e): where an exp below has saturated and the
// true result is under the smallest normal number. A bit mask, not a select: GCC leaves such
// a select in the activation loops unvectorised (2x slower).
template <typename T, typename Bits>
RNNKIT_INLINE T zero_below(T e, T x, T lowest) {
    static_assert(sizeof(T) == sizeof(Bits));
    Bits bits;
    std::memcpy(&bits, &e, sizeof(bits));
    bits &= Bits{0} - static_cast<Bits>(!(x < lowest));
    T result;
    std::memcpy(&result, &bits, sizeof(result));
    return result;
}

// exp(x) for float: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, a degree-6 minimax
// polynomial for e^r, then scaling by 2^n through the exponent bits.
RNNKIT_INLINE float exp_poly(float x) {
    // Clamp into the range where 2^n is a normal float; comparisons keep NaN as NaN.
    x = x > 88.0f ? 88.0f : x;  // keeps n <= 127: 2^n stays a finite float
    x = x < -87.3365447505531f ? -87.3365447505531f : x;
    // n = floor(x log2(e) + 1/2) by truncation and a step down for negatives: std::floor
    // would be a libm call (no SSE4.1 in the baseline ISA) and stop vectorisation.
    float fx = x * 1.44269504088896341f + 0.5f;
    fx = fx == fx ? fx : 0.0f;  // NaN: any n will do, p below is NaN anyway
    const std::int32_t truncated = static_cast<std::int32_t>(fx);
    const std::int32_t ni = truncated - (fx < static_cast<float>(truncated) ? 1 : 0);
    const float n = static_cast<float>(ni);
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    const float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    // n is in [-126, 127]: 2^n is built from its exponent bits.
    const std::int32_t bits = (ni + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

// exp(x) for double (Cephes exp): x = n ln2 + r with ln2 in two parts, e^r from a (3, 3)
// Pade form 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2)), then scaling by 2^n through the exponent
// bits. n comes from adding 1.5 * 2^52, which rounds x log2(e) to an integer in the low bits
// of the sum: no double -> int64 conversion, which AVX2 lacks and which would keep the loop
// scalar.
RNNKIT_INLINE double exp_pade(double x) {
    // Clamp into the range where 2^n is a normal double; comparisons keep NaN as NaN.
    x = x > 709.0 ? 709.0 : x;
    x = x < -708.0 ? -708.0 : x;
    constexpr double kShifter = 6755399441055744.0;  // 1.5 * 2^52
    const double shifted = x * 1.4426950408889634073599 + kShifter;
    const double n = shifted - kShifter;
    std::int64_t n_bits;
    std::memcpy(&n_bits, &shifted, sizeof(n_bits));  // low bits: n, two's complement
    double r = x - n * 6.93145751953125E-1;
    r = r - n * 1.42860682030941723212E-6;
    const double rr = r * r;
    const double p = r * ((1.26177193074810590878E-4 * rr + 3.02994407707441961300E-2) * rr +
                          9.99999999999999999910E-1);
    const double q = ((3.00198505138664455042E-6 * rr + 2.52448340349684104192E-3) * rr +
                      2.27265548208155028766E-1) *
                         rr +
                     2.00000000000000000009E0;
    const double e_r = 1.0 + 2.0 * (p / (q - p));
    // n is in [-1022, 1023]: its 11 low bits plus the bias make the exponent field.
    const std::uint64_t bits = static_cast<std::uint64_t>(n_bits + 1023) << 52;
    double scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    return e_r * scale;
}

}  // namespace detail

RNNKIT_INLINE float sigmoid(float x) {
    // exp_poly saturates at e^88, which would leave sigmoid(-inf) at 6e-39 instead of 0 (and
    // 0 * inf downstream finite where the math and the peers give NaN): below -88, where the
    // true value is under FLT_MIN anyway, the result is 0. (NaN compares false: kept.)
    return detail::zero_below<float, std::uint32_t>(1.0f / (1.0f + detail::exp_poly(-x)), x,
                                                    -88.0f);
}
RNNKIT_INLINE double sigmoid(double x) {
    // Below -708 the true value is under DBL_MIN (subnormal or 0): 0, as sigmoid(-inf) must
    // be (exp_pade saturates at e^709).
    return detail::zero_below<double, std::uint64_t>(1.0 / (1.0 + detail::exp_pade(-x)), x, -708.0);
}

RNNKIT_INLINE float tanh(float x) {
    const float ax = std::fabs(x);
    // Small |x|: odd polynomial keeps full relative accuracy near 0 (Cephes tanhf).
    const float s = x * x;
    float small = -5.70498872745e-3f;
    small = small * s + 2.06390887954e-2f;
    small = small * s - 5.37397155531e-2f;
    small = small * s + 1.33314422036e-1f;
    small = small * s - 3.33332819422e-1f;
    small = small * s * x + x;
    // Large |x|: 1 - 2 / (e^{2|x|} + 1), with the sign restored.
    const float big = 1.0f - 2.0f / (detail::exp_poly(2.0f * ax) + 1.0f);
    // The sign and the choice by bit masks: GCC does not if-convert a select between two
    // float expressions this costly for AVX2/AVX-512, and the loop would stay scalar.
    // NaN: ax < 0.625 is false, and big is NaN.
    std::uint32_t x_bits, small_bits, big_bits;
    std::memcpy(&x_bits, &x, sizeof(x));
    std::memcpy(&small_bits, &small, sizeof(small));
    std::memcpy(&big_bits, &big, sizeof(big));
    big_bits |= x_bits & 0x80000000u;
    const std::uint32_t use_small = 0u - static_cast<std::uint32_t>(ax < 0.625f);
    const std::uint32_t bits = (small_bits & use_small) | (big_bits & ~use_small);
    float result;
    std::memcpy(&result, &bits, sizeof(result));
    return result;
}
RNNKIT_INLINE double tanh(double x) {
    const double ax = std::fabs(x);
    // Small |x|: Cephes's rational form in x^2 keeps full relative accuracy near 0.
    const double s = ax * ax;
    const double p =
        (-9.64399179425052238628E-1 * s - 9.92877231001918586564E1) * s - 1.61468768441708447952E3;
    const double q = ((s + 1.12811678491632931402E2) * s + 2.23548839060100448583E3) * s +
                     4.84406305325125486048E3;
    const double small = ax + ax * s * (p / q);
    // Large |x|: 1 - 2 / (e^{2|x|} + 1). Both on |x|, then x's sign (so tanh(-0) is -0).
    const double big = 1.0 - 2.0 / (detail::exp_pade(2.0 * ax) + 1.0);
    // NaN: ax < 0.625 is false, and big is NaN.
    std::uint64_t x_bits, small_bits, big_bits;
    std::memcpy(&x_bits, &x, sizeof(x));
    std::memcpy(&small_bits, &small, sizeof(small));
    std::memcpy(&big_bits, &big, sizeof(big));
    const std::uint64_t use_small = std::uint64_t{0} - static_cast<std::uint64_t>(ax < 0.625);
    const std::uint64_t bits =
        ((small_bits & use_small) | (big_bits & ~use_small)) | (x_bits & 0x8000000000000000u);
    double result;
    std::memcpy(&result, &bits, sizeof(result));
    return result;
}

template <typename T>
RNNKIT_INLINE T relu(T x) {
    return x > T(0) ? x : (x == x ? T(0) : x);  // keeps NaN
}

// Derivatives from outputs y.
template <typename T>
RNNKIT_INLINE T dsigmoid_from_output(T y) {
    return y * (T(1) - y);
}
template <typename T>
RNNKIT_INLINE T dtanh_from_output(T y) {
    return T(1) - y * y;
}
template <typename T>
RNNKIT_INLINE T drelu_from_output(T y) {
    return y > T(0) ? T(1) : T(0);
}

// Gate pre-activation clipping (ONNX `clip`): a is clamped to [-clip, clip] before its
// activation and the gradient passes only where -clip < a < clip. Backward sees only the
// activation y, and a clamped pre-activation gives exactly act(+-clip) (the same function on
// the same value), so `passes(y)` is y != act(-clip) && y != act(clip) && y is not NaN (a
// NaN pre-activation is not inside the bounds: its gradient is 0, as in the reference and
// torch's clamp).
template <typename T>
struct ClipBounds {
    T clip;
    T sigmoid_lo, sigmoid_hi, tanh_lo, tanh_hi, relu_hi;

    explicit ClipBounds(T c)
        : clip(c),
          sigmoid_lo(sigmoid(-c)),
          sigmoid_hi(sigmoid(c)),
          tanh_lo(tanh(-c)),
          tanh_hi(tanh(c)),
          relu_hi(c) {}
};

template <bool kClip, typename T>
RNNKIT_INLINE T clamp_pre(T a, T clip) {
    if constexpr (kClip) {
        return a < -clip ? -clip : (a > clip ? clip : a);  // NaN compares false: kept
    } else {
        (void)clip;
        return a;
    }
}

// g if the activation y was not clipped, else 0.
template <bool kClip, typename T>
RNNKIT_INLINE T unless_clipped(T y, T lo, T hi, T g) {
    if constexpr (kClip) {
        return (y != lo && y != hi && y == y) ? g : T(0);
    } else {
        (void)lo;
        (void)hi;
        return g;
    }
}

// Calls fn with each flag as a compile-time std::bool_constant, so the pointwise loops are
// specialised (and vectorised) per variant.
template <typename Fn>
inline void with_flags(Fn&& fn) {
    fn();
}
template <typename Fn, typename... Rest>
inline void with_flags(Fn&& fn, bool flag, Rest... rest) {
    if (flag) {
        with_flags([&](auto... b) { fn(std::true_type{}, b...); }, rest...);
    } else {
        with_flags([&](auto... b) { fn(std::false_type{}, b...); }, rest...);
    }
}

// The pointwise loops of a block row run over units [0, nb), each array holding `gates`
// slices of nb values. The compiler vectorises them with a scalar remainder, and a scalar
// sigmoid or tanh costs about a vector one: a block of 15 units ran 6x slower than one of 16.
// So a row whose nb is not a whole number of kPadUnits runs on zero-padded copies of its
// arrays, slices of nb rounded up to kPadUnits (a whole number of vectors on every ISA),
// whose results are copied back. (A split into the vector part in place and a padded rest
// made the common rows slower: a loop whose count differs from its slices' stride
// vectorises worse.)
constexpr std::int64_t kPadUnits = 16;
constexpr std::int64_t kMaxPaddedUnits = 64;  // the engine's unit blocks (kUnitBlock)

enum class Slice { In, Out, InOut };
template <typename T>
struct RowArray {
    const T* data;  // null: unused by this variant
    int gates;      // slices of nb values
    Slice use;
};

// Whether a row of nb units runs on padded copies (on_padded_copies) rather than in place.
RNNKIT_INLINE bool needs_padding(std::int64_t nb) {
    return nb % kPadUnits != 0 && nb <= kMaxPaddedUnits;
}

// Calls body(n, ptrs) with n = nb rounded up to kPadUnits and ptrs[k] zero-padded local
// copies of arrays[k] (null stays null); arrays marked In are copied in, Out copied back,
// InOut both (an array a body writes only in part must be InOut). Out of line, and rows that
// need no padding call their loop directly: the buffers (up to 18 KiB) enlarged, and probed,
// the stack frame of every row, and building the array list cost 10% at 16 units a row.
template <typename T, std::size_t N, typename Body>
RNNKIT_NOINLINE void on_padded_copies(std::int64_t nb, const RowArray<T> (&arrays)[N],
                                      Body&& body) {
    T* ptrs[N];
    const std::int64_t padded = nb + kPadUnits - nb % kPadUnits;
    constexpr int kMaxGates = 4;
    alignas(64) T local[N][kMaxGates * kMaxPaddedUnits];
    for (std::size_t k = 0; k < N; ++k) {
        const RowArray<T>& a = arrays[k];
        ptrs[k] = a.data ? local[k] : nullptr;
        if (!a.data) continue;
        for (int g = 0; g < a.gates; ++g) {
            T* dst = local[k] + g * padded;
            if (a.use == Slice::Out) {
                std::fill(dst, dst + padded, T(0));
            } else {
                std::copy(a.data + g * nb, a.data + (g + 1) * nb, dst);
                std::fill(dst + nb, dst + padded, T(0));
            }
        }
    }
    body(padded, ptrs);
    for (std::size_t k = 0; k < N; ++k) {
        const RowArray<T>& a = arrays[k];
        if (!a.data || a.use == Slice::In) continue;
        T* out = const_cast<T*>(a.data);
        for (int g = 0; g < a.gates; ++g) {
            std::copy(local[k] + g * padded, local[k] + g * padded + nb, out + g * nb);
        }
    }
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit::rnn
