#include "ngram/nltk_scores.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "common/parallel.hpp"

namespace rnnkit::ngram {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// a / b, NaN where nltk.lm would raise ZeroDivisionError.
double divide(double a, double b) {
    return b == 0 ? kNaN : a / b;
}

}  // namespace

NltkScorer::NltkScorer(const NgramCounts& counts, NltkMethod method, int order, double param,
                       double vocab_size, int threads)
    : counts_(counts), method_(method), order_(order), param_(param), vocab_size_(vocab_size) {
    const int N = counts.order();
    if (order < 1 || order > N) {
        throw std::invalid_argument("the model's order must be in [1, " + std::to_string(N) +
                                    "], got " + std::to_string(order));
    }
    const auto& parts = counts.parts_;
    base_.assign(static_cast<std::size_t>(N) + 1, {});
    std::vector<std::int64_t> sizes(static_cast<std::size_t>(N) + 1, 0);
    sizes[0] = 1;
    sizes[1] = static_cast<std::int64_t>(counts.unigram_.size());
    for (int n = 2; n <= N; ++n) {
        std::int64_t next = 0;
        for (const auto& part : parts) {
            base_[static_cast<std::size_t>(n)].push_back(next);
            next += static_cast<std::int64_t>(part.at(n).size());
        }
        sizes[static_cast<std::size_t>(n)] = next;
    }
    const auto sized = [&](int top) {
        std::vector<std::vector<std::uint64_t>> v(static_cast<std::size_t>(N) + 1);
        for (int n = 0; n <= top; ++n) {
            v[static_cast<std::size_t>(n)].assign(
                static_cast<std::size_t>(sizes[static_cast<std::size_t>(n)]), 0);
        }
        return v;
    };
    // The context of an entry of order n >= 2: its prefix, of order n - 1.
    const auto prefix_flat = [&](int n, std::size_t p, std::uint32_t prefix) {
        return n == 2 ? static_cast<std::int64_t>(prefix)
                      : flat(n - 1, {static_cast<std::int32_t>(p), prefix});
    };

    total_ = sized(N - 1);
    distinct_ = sized(N - 1);
    for (std::uint64_t c : counts.unigram_) {
        total_[0][0] += c;
        distinct_[0][0] += c > 0 ? 1 : 0;
    }
    for (int n = 2; n <= N; ++n) {
        auto& total = total_[static_cast<std::size_t>(n - 1)];
        auto& distinct = distinct_[static_cast<std::size_t>(n - 1)];
        for (std::size_t p = 0; p < parts.size(); ++p) {
            const auto& o = parts[p].at(n);
            for (std::size_t e = 0; e < o.size(); ++e) {
                if (o.count[e] == 0) continue;
                const auto h = static_cast<std::size_t>(prefix_flat(n, p, o.prefix[e]));
                total[h] += o.count[e];
                ++distinct[h];
            }
        }
    }
    if (method != NltkMethod::KneserNey) return;

    // cont(g) for g of orders 1..N-1: one per (n+1)-gram with a count, at its suffix.
    cont_ = sized(N - 1);
    cont_total_ = sized(N - 1);
    const NgramCounts::SuffixLinks links = counts.suffix_links(threads);
    for (int n = 2; n <= N; ++n) {
        auto& cont = cont_[static_cast<std::size_t>(n - 1)];
        for (std::size_t p = 0; p < parts.size(); ++p) {
            const auto& o = parts[p].at(n);
            const auto& part_links = links[static_cast<std::size_t>(n - 2)][p];
            for (std::size_t e = 0; e < o.size(); ++e) {
                if (o.count[e] > 0) ++cont[static_cast<std::size_t>(flat(n - 1, part_links[e]))];
            }
        }
    }
    // cont_total(h) = sum of cont(h w) over the stored h w.
    for (std::uint64_t c : cont_[1]) cont_total_[0][0] += c;
    for (int n = 2; n <= N - 1; ++n) {
        const auto& cont = cont_[static_cast<std::size_t>(n)];
        auto& cont_total = cont_total_[static_cast<std::size_t>(n - 1)];
        for (std::size_t p = 0; p < parts.size(); ++p) {
            const auto& o = parts[p].at(n);
            for (std::size_t e = 0; e < o.size(); ++e) {
                const auto g =
                    flat(n, {static_cast<std::int32_t>(p), static_cast<std::uint32_t>(e)});
                cont_total[static_cast<std::size_t>(prefix_flat(n, p, o.prefix[e]))] +=
                    cont[static_cast<std::size_t>(g)];
            }
        }
    }
}

std::int64_t NltkScorer::flat(int n, const EntryRef& ref) const {
    if (n == 0) return 0;
    if (n == 1) return ref.index;
    return base_[static_cast<std::size_t>(n)][static_cast<std::size_t>(ref.partition)] + ref.index;
}

NltkScorer::Context NltkScorer::find_context(const std::int32_t* words, int m) const {
    Context h{0, 0, {-1, 0}};
    // (a context as long as the store's order has no statistics: nothing can follow it)
    if (m >= counts_.order()) return {m, -1, {-1, 0}};
    for (int k = 0; k < m; ++k) {
        h = extend(h, words[k]);
        if (h.index < 0) return {m, -1, {-1, 0}};
    }
    return h;
}

NltkScorer::Context NltkScorer::extend(const Context& h, std::int32_t word) const {
    const Context none{h.length + 1, -1, {-1, 0}};
    if (h.index < 0 || word < 0 || h.length + 1 > counts_.order()) return none;
    const auto w = static_cast<std::uint32_t>(word);
    if (h.length == 0) {
        if (w >= counts_.unigram_.size()) return none;
        return {1, word, {-1, w}};
    }
    const int n = h.length + 1;
    const int p = h.length == 1 ? NgramCounts::partition_of(h.ref.index) : h.ref.partition;
    const std::int64_t found =
        NgramCounts::find(counts_.parts_[static_cast<std::size_t>(p)].at(n), h.ref.index, w);
    if (found < 0) return none;
    const EntryRef ref{p, static_cast<std::uint32_t>(found)};
    return {n, flat(n, ref), ref};
}

std::uint64_t NltkScorer::count_of(const Context& g) const {
    if (g.index < 0) return 0;
    if (g.length == 1) return counts_.unigram_[g.ref.index];
    return counts_.parts_[static_cast<std::size_t>(g.ref.partition)]
        .at(g.length)
        .count[g.ref.index];
}

double NltkScorer::freq(const Context& h, std::int32_t word) const {
    if (h.index < 0) return 0;
    const std::uint64_t total = total_[static_cast<std::size_t>(h.length)][h.index];
    if (total == 0) return 0;
    return static_cast<double>(count_of(extend(h, word))) / static_cast<double>(total);
}

double NltkScorer::unigram_score(std::int32_t word) const {
    const Context root{0, 0, {-1, 0}};
    if (method_ != NltkMethod::KneserNey) return freq(root, word);
    const Context g = extend(root, word);
    // (a store of unigrams alone has no continuation counts: nltk divides 0 by 0 there)
    const bool stored = g.index >= 0 && static_cast<std::size_t>(g.index) < cont_[1].size();
    const double cont = stored ? static_cast<double>(cont_[1][g.index]) : 0.0;
    return divide(cont, static_cast<double>(cont_total_[0][0]));
}

double NltkScorer::interpolated(std::int32_t word, const std::int32_t* context, int m) const {
    if (m == 0) return unigram_score(word);
    const Context h = find_context(context, m);
    double alpha = 0, gamma = 1;  // nothing follows the context: defer to the lower order
    if (h.index >= 0 && distinct_[static_cast<std::size_t>(m)][h.index] > 0) {
        const double total = static_cast<double>(total_[static_cast<std::size_t>(m)][h.index]);
        const double distinct =
            static_cast<double>(distinct_[static_cast<std::size_t>(m)][h.index]);
        const Context g = extend(h, word);
        const double c = static_cast<double>(count_of(g));
        switch (method_) {
            case NltkMethod::WittenBell:
                gamma = distinct / (distinct + total);
                alpha = (1.0 - gamma) * (c / total);
                break;
            case NltkMethod::AbsoluteDiscounting:
                alpha = std::max(c - param_, 0.0) / total;
                gamma = param_ * distinct / total;
                break;
            default: {  // Kneser-Ney
                double word_count = c, norm = total;
                if (m + 1 != order_) {
                    word_count =
                        g.index < 0
                            ? 0.0
                            : static_cast<double>(cont_[static_cast<std::size_t>(m + 1)][g.index]);
                    norm = static_cast<double>(cont_total_[static_cast<std::size_t>(m)][h.index]);
                }
                alpha = divide(std::max(word_count - param_, 0.0), norm);
                gamma = divide(param_ * distinct, norm);
            }
        }
    }
    return alpha + gamma * interpolated(word, context + 1, m - 1);
}

double NltkScorer::stupid_backoff(std::int32_t word, const std::int32_t* context, int m) const {
    if (m == 0) return freq({0, 0, {-1, 0}}, word);
    const Context h = find_context(context, m);
    const std::uint64_t c = count_of(extend(h, word));
    if (c > 0) {
        return static_cast<double>(c) /
               static_cast<double>(total_[static_cast<std::size_t>(m)][h.index]);
    }
    return param_ * stupid_backoff(word, context + 1, m - 1);
}

double NltkScorer::score(std::int32_t word, const std::int32_t* context, int m) const {
    switch (method_) {
        case NltkMethod::Mle:
            return freq(find_context(context, m), word);
        case NltkMethod::Lidstone: {
            const Context h = find_context(context, m);
            const double total =
                h.index < 0 ? 0.0
                            : static_cast<double>(total_[static_cast<std::size_t>(m)][h.index]);
            return divide(static_cast<double>(count_of(extend(h, word))) + param_,
                          total + vocab_size_ * param_);
        }
        default:
            break;
    }
    // The interpolated models and stupid backoff see the last order - 1 words at most.
    const int kept = std::min(m, order_ - 1);
    context += m - kept;
    if (method_ == NltkMethod::StupidBackoff) return stupid_backoff(word, context, kept);
    return interpolated(word, context, kept);
}

}  // namespace rnnkit::ngram
