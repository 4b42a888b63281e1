// The scores of nltk.lm's language models, computed from a store of raw counts (issue 5's
// rnnkit.ngram.nltk_compat).
//
// nltk.lm keeps nested dictionaries of counts and computes every score from them on demand;
// its Kneser-Ney scans every n-gram of the next order for each continuation count, so a
// single score costs O(number of n-grams). Here the statistics its formulas use are computed
// once per store, in one pass per order, and a score is a few hash probes:
//   total(h)      sum of c(h w) over the words w            (FreqDist.N() of the context)
//   distinct(h)   number of words w with c(h w) > 0         (_count_values_gt_zero)
//   cont(g)       number of words v with c(v g) > 0         (Kneser-Ney continuation count)
//   cont_total(h) sum of cont(h w) over the words w         (its denominator)
// The formulas are nltk.lm's (models.py, smoothing.py), in double precision, with its
// conventions: a context longer than order - 1 is cut to its last order - 1 words by the
// interpolated models and stupid backoff, and not by MLE and Lidstone (which then see an
// empty context); a context nothing follows makes an interpolated model defer to the next
// lower order; FreqDist.freq of an empty distribution is 0. Where nltk.lm divides by zero,
// the score is NaN (the Python layer raises ZeroDivisionError, as nltk.lm does).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/exact_sum.hpp"
#include "common/parallel.hpp"
#include "ngram/counts.hpp"

namespace rnnkit::ngram {

// CPython's math.log(score, 2), which nltk.lm's logscore calls: log(score) / log(2) with
// libm's log (not log2, whose last bit can differ), -inf for 0.
inline double log2_score(double score) {
    return score == 0.0 ? -std::numeric_limits<double>::infinity()
                        : std::log(score) / std::log(2.0);
}

enum class NltkMethod { Mle, Lidstone, WittenBell, KneserNey, AbsoluteDiscounting, StupidBackoff };

class NltkScorer {
public:
    // `counts` must outlive the scorer and stay unchanged. `order` is the model's order,
    // `param` Lidstone's gamma, the discount (Kneser-Ney, absolute discounting) or stupid
    // backoff's alpha, `vocab_size` len(vocab) (Lidstone).
    NltkScorer(const NgramCounts& counts, NltkMethod method, int order, double param,
               double vocab_size, int threads);

    // nltk.lm's unmasked_score(word, context[0:m]); ids < 0 stand for words never counted.
    double score(std::int32_t word, const std::int32_t* context, int m) const;
    // The sum, correctly rounded (math.fsum's), of the log2_score of each n-gram's last word
    // given the words before it, for `count` n-grams, ngram_at(i) giving n-gram i as
    // (its first word, its length >= 1); on `threads` threads. NaN where a score is NaN.
    template <typename NgramAt>
    double log2_total(std::int64_t count, int threads, NgramAt&& ngram_at) const;

private:
    // A context: its length and where its statistics are (index < 0: not stored).
    struct Context {
        int length;
        std::int64_t index;
        EntryRef ref;
    };
    Context find_context(const std::int32_t* words, int m) const;
    // The entry of context + word, or index < 0.
    Context extend(const Context& h, std::int32_t word) const;
    std::uint64_t count_of(const Context& g) const;
    double freq(const Context& h, std::int32_t word) const;
    double interpolated(std::int32_t word, const std::int32_t* context, int m) const;
    double stupid_backoff(std::int32_t word, const std::int32_t* context, int m) const;
    double unigram_score(std::int32_t word) const;
    // Flat index of an entry of order n (n = 0: the empty context).
    std::int64_t flat(int n, const EntryRef& ref) const;

    const NgramCounts& counts_;
    NltkMethod method_;
    int order_;
    double param_;
    double vocab_size_;
    // base_[n][p]: flat index of partition p's first entry of order n >= 2.
    std::vector<std::vector<std::int64_t>> base_;
    // Statistics by order (0..N) and flat index.
    std::vector<std::vector<std::uint64_t>> total_, distinct_, cont_, cont_total_;
};

template <typename NgramAt>
double NltkScorer::log2_total(std::int64_t count, int threads, NgramAt&& ngram_at) const {
    const int team = count < 4096 ? 1 : threads;
    std::vector<ExactSum> sums(static_cast<std::size_t>(team));
    parallel_region(team, [&](int tid, int nthreads) {
        const std::int64_t begin = count * tid / nthreads, end = count * (tid + 1) / nthreads;
        ExactSum sum;
        for (std::int64_t i = begin; i < end; ++i) {
            const auto [words, n] = ngram_at(i);
            sum.add(log2_score(score(words[n - 1], words, n - 1)));
        }
        sums[static_cast<std::size_t>(tid)] = std::move(sum);
    });
    // (exact partial sums: the total does not depend on how the n-grams were shared out)
    for (std::size_t t = 1; t < sums.size(); ++t) sums[0].add(sums[t]);
    return sums[0].value();
}

}  // namespace rnnkit::ngram
