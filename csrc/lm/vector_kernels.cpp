// See vector_kernels.hpp. Compiled once per instruction set (RNNKIT_ISA_NS).
#include "lm/vector_kernels.hpp"

#include <algorithm>

#include "common/isa.hpp"
#include "rnn/gates.hpp"

namespace rnnkit::lm::RNNKIT_ISA_NS {

namespace {
// The kernels' vectorisable exps (libm's call would keep the loop scalar). They saturate at
// e^-87.3 (float) and e^-708 (double); below, the true value is under the smallest normal
// number: 0, so that a logit of -inf has probability 0.
inline float exp_of(float x) {
    return rnn::detail::zero_below<float, std::uint32_t>(rnn::detail::exp_poly(x), x, -87.3f);
}
inline double exp_of(double x) {
    return rnn::detail::zero_below<double, std::uint64_t>(rnn::detail::exp_pade(x), x, -708.0);
}
}  // namespace

template <typename T>
T row_max(const T* x, std::int64_t len) {
    T top = x[0];
    for (std::int64_t v = 1; v < len; ++v) top = std::max(top, x[v]);
    return top;
}

template <typename T>
double exps_and_sum(const T* __restrict x, std::int64_t len, T top, T* __restrict g) {
    for (std::int64_t v = 0; v < len; ++v) g[v] = exp_of(x[v] - top);
    double acc[4] = {0, 0, 0, 0};
    std::int64_t k = 0;
    for (; k + 4 <= len; k += 4) {
        for (int j = 0; j < 4; ++j) acc[j] += static_cast<double>(g[k + j]);
    }
    for (; k < len; ++k) acc[0] += static_cast<double>(g[k]);
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

template <typename T>
void scale(T* g, std::int64_t len, T factor) {
    for (std::int64_t v = 0; v < len; ++v) g[v] *= factor;
}

template float row_max<float>(const float*, std::int64_t);
template double row_max<double>(const double*, std::int64_t);
template double exps_and_sum<float>(const float*, std::int64_t, float, float*);
template double exps_and_sum<double>(const double*, std::int64_t, double, double*);
template void scale<float>(float*, std::int64_t, float);
template void scale<double>(double*, std::int64_t, double);

}  // namespace rnnkit::lm::RNNKIT_ISA_NS
