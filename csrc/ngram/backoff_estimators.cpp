// MLE, add-k and stupid backoff as backoff models (model.hpp): probabilities of the counted
// n-grams from raw counts, in double precision, stored as float32 log10 values.
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/parallel.hpp"
#include "ngram/model.hpp"

namespace rnnkit::ngram {

NgramModel NgramModel::backed_off(const NgramCounts& counts, std::int64_t vocab_size,
                                  Backoff method, double param) {
    if (method == Backoff::AddK && !(param > 0.0 && std::isfinite(param))) {
        throw std::invalid_argument("k must be a finite number > 0, got " + std::to_string(param));
    }
    if (method == Backoff::StupidBackoff && !(param > 0.0 && param <= 1.0)) {
        throw std::invalid_argument("alpha must be in (0, 1], got " + std::to_string(param));
    }
    NgramModel model = with_structure(counts, vocab_size);
    const int N = counts.order();
    const auto V_ids = static_cast<std::size_t>(vocab_size);
    const double k = method == Backoff::AddK ? param : 0.0;
    const double predicted = static_cast<double>(vocab_size - 1);  // every word but <s>
    // log10 of probability 0, as ARPA files write it (SRILM; lmplz for <s>): KenLM refuses an
    // infinite backoff.
    const float log_zero = -99.0f;
    const float context_backoff =
        method == Backoff::StupidBackoff ? static_cast<float>(std::log10(param)) : 0.0f;
    const int threads = get_num_threads();
    const NgramCounts::SuffixLinks suffix = counts.suffix_links(threads);
    const auto count1 = [&](std::size_t w) {
        return w < counts.unigram_.size() ? counts.unigram_[w] : std::uint64_t{0};
    };
    const auto log10f = [](double p) {
        return static_cast<float>(std::log10(p));
    };

    // Unigrams: the empty context's distribution over every word but <s>.
    double total = 0;
    for (std::size_t w = 0; w < V_ids; ++w) {
        if (w != kBos) total += static_cast<double>(count1(w));
    }
    std::vector<double> p1(V_ids, 0.0);
    for (std::size_t w = 0; w < V_ids; ++w) {
        const std::uint64_t c = count1(w);
        if (!(c > 0 || w == kUnk || method == Backoff::AddK)) continue;
        model.unigram_present_[w] = 1;
        if (w == kBos) {
            p1[w] = 1.0;  // <s> is never predicted; written as lmplz writes it
        } else {
            p1[w] = (static_cast<double>(c) + k) / (total + k * predicted);
        }
        model.unigram_prob_[w] = p1[w] == 0.0 ? log_zero : std::min(0.0f, log10f(p1[w]));
        model.unigram_backoff_[w] = context_backoff;
    }

    // Order by order: the contexts' sums (from their extensions), then probabilities, then
    // (add-k, MLE) the contexts' backoffs, which need the extensions' lower-order probabilities.
    std::vector<std::vector<double>> below;  // probabilities of order n-1, by partition
    for (int n = 2; n <= N; ++n) {
        struct Context {
            double den = 0, types = 0, lower_mass = 0;
        };
        std::vector<Context> ctx1;
        std::vector<std::vector<Context>> ctx(model.parts_.size());
        if (n == 2) {
            ctx1.resize(V_ids);
        } else {
            for (std::size_t p = 0; p < model.parts_.size(); ++p)
                ctx[p].resize(counts.parts_[p].at(n - 1).size());
        }
        const auto context_of = [&](std::size_t p, std::uint32_t prefix) -> Context& {
            return n == 2 ? ctx1[prefix] : ctx[p][prefix];
        };
        counts.each_partition(threads, [&](std::size_t p) {
            const NgramCounts::Order& o = counts.parts_[p].at(n);
            const auto& links = suffix[static_cast<std::size_t>(n - 2)][p];
            for (std::size_t e = 0; e < o.size(); ++e) {
                Context& c = context_of(p, o.prefix[e]);
                c.den += static_cast<double>(o.count[e]);
                c.types += 1;
                const EntryRef s = links[e];
                c.lower_mass += s.partition < 0
                                    ? p1[s.index]
                                    : below[static_cast<std::size_t>(s.partition)][s.index];
            }
        });
        std::vector<std::vector<double>> probs(model.parts_.size());
        counts.each_partition(threads, [&](std::size_t p) {
            const NgramCounts::Order& o = counts.parts_[p].at(n);
            Order& out = model.parts_[p].at(n);
            probs[p].resize(o.size());
            for (std::size_t e = 0; e < o.size(); ++e) {
                const Context& c = context_of(p, o.prefix[e]);
                const double prob = (static_cast<double>(o.count[e]) + k) / (c.den + k * predicted);
                probs[p][e] = prob;
                out.entries[e].log_prob = std::min(0.0f, log10f(prob));
                if (n < N) out.entries[e].log_backoff = context_backoff;
            }
        });
        // Backoffs of the order n-1 contexts that have extensions.
        const auto backoff = [&](const Context& c) -> float {
            if (c.types == 0 || method == Backoff::StupidBackoff) return context_backoff;
            if (method == Backoff::Mle) return log_zero;  // a seen context keeps all its mass
            const double left = k * (predicted - c.types) / (c.den + k * predicted);
            const double unseen_lower = 1.0 - c.lower_mass;
            if (left <= 0.0 || unseen_lower <= 0.0) return 0.0f;  // every word seen: never used
            return log10f(left / unseen_lower);
        };
        if (n == 2) {
            for (std::size_t w = 0; w < V_ids; ++w) {
                if (model.unigram_present_[w]) model.unigram_backoff_[w] = backoff(ctx1[w]);
            }
        } else {
            counts.each_partition(threads, [&](std::size_t p) {
                Order& lower = model.parts_[p].at(n - 1);
                for (std::size_t e = 0; e < lower.size(); ++e) {
                    lower.entries[e].log_backoff = backoff(ctx[p][e]);
                }
            });
        }
        below = std::move(probs);
    }
    return model;
}

}  // namespace rnnkit::ngram
