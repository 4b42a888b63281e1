// The arithmetic of the interpolated estimators (model.cpp, "modified Kneser-Ney"), shared by
// the in-memory estimation (NgramModel::interpolated) and the streamed build
// (stream_build.cpp), so that both give the same float32 numbers.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "ngram/model.hpp"

namespace rnnkit::ngram {

// Count-of-counts of one order: h[j] = the n-grams with adjusted count j, j = 0..4.
using CountOfCounts = std::array<std::uint64_t, 5>;

inline void tally(CountOfCounts& h, std::uint64_t value, int delta) {
    if (value <= 4)
        h[value] = static_cast<std::uint64_t>(static_cast<std::int64_t>(h[value]) + delta);
}

// The statistics of a context h from the adjusted counts of its extensions hx: their sum and
// how many are 1, 2 and >= 3.
struct Context {
    std::uint64_t den = 0, n1 = 0, n2 = 0, n3 = 0;
    void add(std::uint64_t v) {
        den += v;
        if (v == 1) ++n1;
        if (v == 2) ++n2;
        if (v >= 3) ++n3;
    }
};

class Smoother {
public:
    // Discounts per order k = 1..stats.size() from its count-of-counts; `discounts` gets D1,
    // D2, D3+ per order, `fallback` the orders that needed lmplz's fallback values.
    Smoother(NgramModel::Smoothing method, const std::vector<CountOfCounts>& stats,
             std::vector<float>* discounts, std::vector<int>* fallback);

    // u(hw)'s denominator: sum of the counts after h (Witten-Bell: plus T).
    float denominator(const Context& c) const {
        return static_cast<float>(witten_bell_ ? c.den + c.n1 + c.n2 + c.n3 : c.den);
    }
    // a(hw) - D(a(hw)) at order k.
    float discounted(int k, std::uint64_t value) const {
        if (witten_bell_) return static_cast<float>(value);
        const auto& d = D_[static_cast<std::size_t>(k - 1)];
        return static_cast<float>(value) - d[value < 3 ? value : 3];
    }
    // The weight of the lower order in a context of order k: gamma = (D1 N1 + D2 N2 + D3 N3+) /
    // den; Witten-Bell: T / (den + T), T = N1+(h .) the number of distinct words seen after h.
    float weight(int k, const Context& c) const {
        if (witten_bell_) {
            const float types = static_cast<float>(c.n1 + c.n2 + c.n3);
            return types / (static_cast<float>(c.den) + types);
        }
        const auto& d = D_[static_cast<std::size_t>(k - 1)];
        const float numerator =
            ((0.0f + d[1] * static_cast<float>(c.n1)) + d[2] * static_cast<float>(c.n2)) +
            d[3] * static_cast<float>(c.n3);
        return numerator / static_cast<float>(c.den);
    }

    // u(hw) and gamma(h) as the estimators use them. A context whose extensions all have
    // adjusted count 0 has no mass of its own: u = 0, gamma = 1 (everything from the lower
    // order; its backoff is log10 1 = 0). Only pruning makes one: the continuation counts of
    // n-grams whose every left extension was pruned (0 / 0 made every such probability 1).
    float own_mass(int k, std::uint64_t value, const Context& c) const {
        return c.den == 0 ? 0.0f : discounted(k, value) / denominator(c);
    }
    float lower_weight(int k, const Context& c) const { return c.den == 0 ? 1.0f : weight(k, c); }

    // p(hw) = u(hw) + gamma(h) p(h'w), one expression for both estimators (the same bits).
    static float interpolate(float u, float gamma, float lower) { return u + gamma * lower; }

private:
    bool witten_bell_;
    std::vector<std::array<float, 4>> D_;
};

}  // namespace rnnkit::ngram
