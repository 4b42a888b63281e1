#include "ngram/counts.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>

#include "common/parallel.hpp"
#include "ngram/checksum.hpp"
#include "ngram/table.hpp"

namespace rnnkit::ngram {

namespace {

using table::mix;

void check_order(int n, int order) {
    if (n < 1 || n > order) {
        throw std::invalid_argument("n must be in [1, " + std::to_string(order) + "], got " +
                                    std::to_string(n));
    }
}

}  // namespace

NgramCounts::NgramCounts(int order) : order_(order) {
    if (order < 1 || order > kMaxOrder) {
        throw std::invalid_argument("order must be in [1, " + std::to_string(kMaxOrder) +
                                    "], got " + std::to_string(order));
    }
    totals_.assign(static_cast<std::size_t>(order), 0);
    if (order >= 2) {
        parts_.resize(kPartitions);
        for (Partition& part : parts_) {
            part.orders.resize(static_cast<std::size_t>(order - 1));
            for (Order& o : part.orders) o.slots.assign(table::kInitialSlots, 0);
        }
    }
}

int NgramCounts::partition_of(std::uint32_t word) {
    return static_cast<int>(mix(word) % kPartitions);
}

void NgramCounts::ensure_unigram(std::uint32_t word) {
    if (word >= unigram_.size()) {
        // Exactly word + 1 ids (word_bound() is one past the largest id seen); the capacity
        // doubles so that growing stays amortised O(1).
        if (word >= unigram_.capacity()) {
            unigram_.reserve(std::max<std::size_t>(word + 1, unigram_.capacity() * 2));
        }
        unigram_.resize(static_cast<std::size_t>(word) + 1, 0);
    }
}

std::int64_t NgramCounts::find(const Order& o, std::uint32_t prefix, std::uint32_t word) {
    return table::find(o, prefix, word);
}

std::uint32_t NgramCounts::find_or_add(Order& o, std::uint32_t prefix, std::uint32_t word) {
    bool added = false;
    return table::find_or_add(o, prefix, word, &added);
}

void NgramCounts::presize_owned(std::int64_t tokens, const std::vector<char>& owned) {
    // An empty table grows by doubling from kInitialSlots, placing every entry again at each
    // step; a first count sizes it for its share of the tokens (each order has at most one
    // n-gram per token) up to a bound, so that a small corpus is counted without growing and
    // a large one skips only the first steps. The entry columns are only reserved (untouched
    // pages cost no memory); the slots are written, and bounded by kPresizeTokens.
    if (parts_.empty()) return;  // order 1: unigram counts only
    constexpr std::int64_t kPresizeTokens = std::int64_t{1} << 18;
    const std::size_t share =
        static_cast<std::size_t>(std::min(tokens, kPresizeTokens) / kPartitions + 1);
    std::size_t slots = table::kInitialSlots;
    while (slots < 2 * share) slots *= 2;
    for (int p = 0; p < kPartitions; ++p) {
        if (!owned[static_cast<std::size_t>(p)]) continue;
        for (Order& o : parts_[static_cast<std::size_t>(p)].orders) {
            if (o.size() != 0 || o.slots.size() >= slots) continue;
            o.prefix.reserve(share);
            o.word.reserve(share);
            o.count.reserve(share);
            o.slots.assign(slots, 0);
        }
    }
}

void NgramCounts::count_owned(const std::int32_t* ids, const std::int64_t* offsets,
                              std::int64_t num_sentences, int tid, int nthreads, bool pad) {
    std::vector<char> owned(kPartitions, 0);
    for (int p = tid; p < kPartitions; p += nthreads) owned[static_cast<std::size_t>(p)] = 1;
    presize_owned(offsets[num_sentences] - offsets[0] + (pad ? 2 * num_sentences : 0), owned);
    // A sentence, padded (position 0 is <s>, 1..len the words, len + 1 is </s>) or not (the
    // words at 0..len-1).
    struct Sentence {
        const std::int32_t* words;
        std::int64_t len;
        bool pad;
        std::int64_t size() const { return pad ? len + 2 : len; }
        std::uint32_t operator[](std::int64_t pos) const {
            if (!pad) return static_cast<std::uint32_t>(words[pos]);
            return pos == 0 ? kBos : pos <= len ? static_cast<std::uint32_t>(words[pos - 1]) : kEos;
        }
    };
    struct Start {
        Partition* part;
        Sentence seq;
        std::int64_t at;
        std::int64_t top;
        std::uint32_t entry;
        std::uint32_t word(int n) const { return seq[at + n - 1]; }
    };
    Start batch[kBatchStarts];
    int pending = 0;
    const auto nothing_else = [](const Start&, int) {
    };
    for (std::int64_t s = 0; s < num_sentences; ++s) {
        const Sentence seq{ids + offsets[s], offsets[s + 1] - offsets[s], pad};
        for (std::int64_t start = 0; start < seq.size(); ++start) {
            const std::uint32_t first = seq[start];
            const int p = partition_of(first);
            if (!owned[static_cast<std::size_t>(p)]) continue;
            ++unigram_[first];  // its partition's thread alone writes this word's count
            const std::int64_t top = std::min<std::int64_t>(order_, seq.size() - start);
            if (top < 2) continue;
            batch[pending++] = {&parts_[static_cast<std::size_t>(p)], seq, start, top, first};
            if (pending == kBatchStarts) {
                count_starts(batch, pending, order_, nothing_else);
                pending = 0;
            }
        }
    }
    count_starts(batch, pending, order_, nothing_else);
}

std::uint32_t NgramCounts::check_sentences(const std::int32_t* ids, const std::int64_t* offsets,
                                           std::int64_t num_sentences, bool pad) {
    if (num_sentences < 0) throw std::invalid_argument("the number of sentences is negative");
    if (num_sentences > 0 && offsets[0] < 0) {
        throw std::invalid_argument("offsets[0] must be >= 0, got " + std::to_string(offsets[0]));
    }
    std::uint32_t top_word = kEos;
    for (std::int64_t s = 0; s < num_sentences; ++s) {
        if (offsets[s + 1] < offsets[s]) {
            throw std::invalid_argument("offsets must be non-decreasing, got offsets[" +
                                        std::to_string(s) + "] = " + std::to_string(offsets[s]) +
                                        " > offsets[" + std::to_string(s + 1) +
                                        "] = " + std::to_string(offsets[s + 1]));
        }
        for (std::int64_t i = offsets[s]; i < offsets[s + 1]; ++i) {
            const std::int32_t w = ids[i];
            if (w < 0 || (pad && (w == static_cast<std::int32_t>(kBos) ||
                                  w == static_cast<std::int32_t>(kEos)))) {
                throw std::invalid_argument(
                    "ids[" + std::to_string(i) + "] = " + std::to_string(w) +
                    (w < 0 ? " is negative"
                           : " is <s> or </s>, which the store adds around each sentence"));
            }
            top_word = std::max(top_word, static_cast<std::uint32_t>(w));
        }
    }
    return top_word;
}

void NgramCounts::check_room(const std::vector<std::uint64_t>& added, const char* what) const {
    for (std::size_t k = 0; k < added.size(); ++k) {
        if (added[k] > kMaxTotal - totals_[k]) {
            throw std::overflow_error(
                std::string(what) + " would take the count of the " + std::to_string(k + 1) +
                "-gram tokens to " + std::to_string(totals_[k]) + " + " + std::to_string(added[k]) +
                ", past the 2^63 - 1 a store holds (64-bit signed counts); nothing was changed");
        }
    }
}

bool NgramCounts::sum_totals(std::vector<std::uint64_t>& sums) const {
    sums.assign(static_cast<std::size_t>(order_), 0);
    const auto add_all = [](std::uint64_t& sum, const std::vector<std::uint64_t>& counts) {
        for (const std::uint64_t c : counts) {
            if (c > kMaxTotal - sum) return false;
            sum += c;
        }
        return true;
    };
    if (!add_all(sums[0], unigram_)) return false;
    for (const Partition& part : parts_) {
        for (int n = 2; n <= order_; ++n) {
            if (!add_all(sums[static_cast<std::size_t>(n - 1)], part.at(n).count)) return false;
        }
    }
    return true;
}

void NgramCounts::add_sentences(const std::int32_t* ids, const std::int64_t* offsets,
                                std::int64_t num_sentences, int threads, bool pad) {
    // Validate everything first, so that an error leaves the store unchanged.
    const std::uint32_t top_word = check_sentences(ids, offsets, num_sentences, pad);
    if (num_sentences == 0) return;
    // The tokens each order gets: a (padded) sentence of `size` words holds size - n + 1
    // n-grams of order n. (Each sum is below the number of ids plus 2 per sentence.)
    std::vector<std::uint64_t> added(static_cast<std::size_t>(order_), 0);
    for (std::int64_t s = 0; s < num_sentences; ++s) {
        const std::int64_t size = offsets[s + 1] - offsets[s] + (pad ? 2 : 0);
        const std::int64_t top = std::min<std::int64_t>(order_, size);
        for (std::int64_t n = 1; n <= top; ++n) {
            added[static_cast<std::size_t>(n - 1)] += static_cast<std::uint64_t>(size - n + 1);
        }
    }
    check_room(added, "counting these sentences");
    ensure_unigram(top_word);  // sized before the threads write into it
    // One thread per owned partition at most; tiny inputs stay on the calling thread. Two
    // threads were measured faster from about 900 tokens (1.26x there, 1.5-1.8x from 3,000;
    // orders 1-3 of the pydoc text, BENCHMARKS.md's nltk_compat log step 5).
    const std::int64_t tokens = offsets[num_sentences] - offsets[0];
    const int nthreads = tokens < 1000 ? 1 : std::max(1, std::min(threads, kPartitions));
    parallel_region(nthreads, [&](int tid, int team) {
        count_owned(ids, offsets, num_sentences, tid, team, pad);
    });
    for (std::size_t k = 0; k < added.size(); ++k) totals_[k] += added[k];
}

void NgramCounts::add_ngrams(const std::int32_t* words, int n, const std::uint64_t* counts,
                             std::int64_t rows) {
    check_order(n, order_);
    std::int32_t top_word = 0;
    for (std::int64_t i = 0; i < rows * n; ++i) {
        if (words[i] < 0) {
            throw std::invalid_argument("ngram ids[" + std::to_string(i) +
                                        "] = " + std::to_string(words[i]) + " is negative");
        }
        top_word = std::max(top_word, words[i]);
    }
    if (rows == 0) return;
    std::vector<std::uint64_t> added(static_cast<std::size_t>(order_), 0);
    std::uint64_t& sum = added[static_cast<std::size_t>(n - 1)];
    for (std::int64_t r = 0; r < rows; ++r) {
        if (counts[r] > kMaxTotal - sum) {
            throw std::overflow_error(
                "the counts to add sum past the 2^63 - 1 a store holds (64-bit signed counts); "
                "nothing was changed");
        }
        sum += counts[r];
    }
    check_room(added, "adding these counts");
    ensure_unigram(static_cast<std::uint32_t>(top_word));
    for (std::int64_t r = 0; r < rows; ++r) {
        const std::int32_t* g = words + r * n;
        // Every substring g[start : start + k]: walking from each start creates them all.
        for (int start = 0; start < n; ++start) {
            std::uint32_t e = static_cast<std::uint32_t>(g[start]);
            if (start == 0 && n == 1) unigram_[e] += counts[r];
            if (order_ == 1) continue;
            Partition& part = parts_[static_cast<std::size_t>(partition_of(e))];
            for (int k = 2; k <= n - start; ++k) {
                Order& o = part.at(k);
                e = find_or_add(o, e, static_cast<std::uint32_t>(g[start + k - 1]));
                if (start == 0 && k == n) o.count[e] += counts[r];
            }
        }
    }
    totals_[static_cast<std::size_t>(n - 1)] += sum;
}

std::vector<std::size_t> NgramCounts::entries(int n) const {
    std::vector<std::size_t> sizes;
    for (const Partition& part : parts_) sizes.push_back(part.at(n).word.size());
    return sizes;
}

std::int64_t NgramCounts::size(int n) const {
    check_order(n, order_);
    if (n == 1) {
        return std::count_if(unigram_.begin(), unigram_.end(),
                             [](std::uint64_t v) { return v != 0; });
    }
    std::int64_t total_entries = 0;
    for (std::size_t e : entries(n)) total_entries += static_cast<std::int64_t>(e);
    return total_entries;
}

std::uint64_t NgramCounts::count(const std::int32_t* words, int n) const {
    check_order(n, order_);
    if (words[0] < 0 || static_cast<std::size_t>(words[0]) >= unigram_.size()) return 0;
    std::uint32_t e = static_cast<std::uint32_t>(words[0]);
    if (n == 1) return unigram_[e];
    const Partition& part = parts_[static_cast<std::size_t>(partition_of(e))];
    for (int k = 2; k <= n; ++k) {
        if (words[k - 1] < 0) return 0;
        const std::int64_t found = find(part.at(k), e, static_cast<std::uint32_t>(words[k - 1]));
        if (found < 0) return 0;
        e = static_cast<std::uint32_t>(found);
    }
    return part.at(n).count[e];
}

void NgramCounts::followers(const std::int32_t* context, int m, std::vector<std::int32_t>& words,
                            std::vector<std::uint64_t>& counts) const {
    words.clear();
    counts.clear();
    if (m < 0 || m >= order_) return;
    if (m == 0) {
        for (std::size_t w = 0; w < unigram_.size(); ++w) {
            if (unigram_[w] == 0) continue;
            words.push_back(static_cast<std::int32_t>(w));
            counts.push_back(unigram_[w]);
        }
        return;
    }
    if (context[0] < 0 || static_cast<std::size_t>(context[0]) >= unigram_.size()) return;
    std::uint32_t e = static_cast<std::uint32_t>(context[0]);
    const Partition& part = parts_[static_cast<std::size_t>(partition_of(e))];
    for (int k = 2; k <= m; ++k) {
        if (context[k - 1] < 0) return;
        const std::int64_t found = find(part.at(k), e, static_cast<std::uint32_t>(context[k - 1]));
        if (found < 0) return;
        e = static_cast<std::uint32_t>(found);
    }
    const Order& o = part.at(m + 1);
    for (std::size_t i = 0; i < o.size(); ++i) {
        if (o.prefix[i] != e || o.count[i] == 0) continue;
        words.push_back(static_cast<std::int32_t>(o.word[i]));
        counts.push_back(o.count[i]);
    }
}

void NgramCounts::ngrams(int n, std::int32_t* words, std::uint64_t* counts) const {
    check_order(n, order_);
    if (n == 1) {
        std::size_t row = 0;
        for (std::size_t w = 0; w < unigram_.size(); ++w) {
            if (unigram_[w] == 0) continue;
            words[row] = static_cast<std::int32_t>(w);
            counts[row] = unigram_[w];
            ++row;
        }
        return;
    }
    std::size_t row_index = 0;
    for (const Partition& part : parts_) {
        const Order& o = part.at(n);
        for (std::size_t e = 0; e < o.word.size(); ++e, ++row_index) {
            std::int32_t* row = words + row_index * static_cast<std::size_t>(n);
            std::uint32_t index = static_cast<std::uint32_t>(e);
            for (int k = n; k >= 2; --k) {
                const Order& ok = part.at(k);
                row[k - 1] = static_cast<std::int32_t>(ok.word[index]);
                index = ok.prefix[index];
            }
            row[0] = static_cast<std::int32_t>(index);
            counts[row_index] = o.count[e];
        }
    }
}

std::uint64_t NgramCounts::total(int n) const {
    check_order(n, order_);
    return totals_[static_cast<std::size_t>(n - 1)];
}

std::vector<std::uint64_t> NgramCounts::count_of_counts(int n, int max_count) const {
    check_order(n, order_);
    if (max_count < 1) {
        throw std::invalid_argument("max_count must be >= 1, got " + std::to_string(max_count));
    }
    std::vector<std::uint64_t> hist(static_cast<std::size_t>(max_count), 0);
    const auto tally = [&](const std::vector<std::uint64_t>& counts) {
        for (std::uint64_t c : counts) {
            if (c >= 1 && c <= static_cast<std::uint64_t>(max_count)) ++hist[c - 1];
        }
    };
    if (n == 1) {
        tally(unigram_);
    } else {
        for (const Partition& part : parts_) tally(part.at(n).count);
    }
    return hist;
}

NgramCounts::SuffixLinks NgramCounts::suffix_links(int threads) const {
    SuffixLinks links(static_cast<std::size_t>(std::max(order_ - 1, 0)));
    for (int n = 2; n <= order_; ++n) {
        auto& at_n = links[static_cast<std::size_t>(n - 2)];
        at_n.resize(parts_.size());
        // Order n's links extend order n-1's: one probe per entry.
        each_partition(threads, [&](std::size_t p) {
            const Order& o = parts_[p].at(n);
            at_n[p].resize(o.size());
            for (std::size_t e = 0; e < o.size(); ++e) {
                if (n == 2) {
                    at_n[p][e] = {-1, o.word[e]};
                    continue;
                }
                const EntryRef before = links[static_cast<std::size_t>(n - 3)][p][o.prefix[e]];
                const int q = before.partition < 0 ? partition_of(before.index) : before.partition;
                const std::int64_t found =
                    find(parts_[static_cast<std::size_t>(q)].at(n - 1), before.index, o.word[e]);
                // Only a store read from hand-made bytes can lack a suffix: update(), merge()
                // and prune() keep the tables closed under suffixes.
                if (found < 0) {
                    throw std::invalid_argument(
                        "the counts are not closed under suffixes (a stored " + std::to_string(n) +
                        "-gram's suffix is missing)");
                }
                at_n[p][e] = {q, static_cast<std::uint32_t>(found)};
            }
        });
    }
    return links;
}

void NgramCounts::left_extensions(const SuffixLinks& links, int threads,
                                  std::vector<std::uint64_t>& unigrams,
                                  EntryValues& entries) const {
    unigrams.assign(unigram_.size(), 0);
    entries.assign(static_cast<std::size_t>(std::max(order_ - 1, 0)), {});
    for (int n = 2; n < order_; ++n) {
        auto& at_n = entries[static_cast<std::size_t>(n - 2)];
        at_n.resize(parts_.size());
        for (std::size_t p = 0; p < parts_.size(); ++p) at_n[p].assign(parts_[p].at(n).size(), 0);
    }
    // Each (n+1)-gram is one left extension of its suffix, which lives in the suffix's
    // partition: each partition's owner scans every link and counts those that land in it.
    for (int n = 2; n <= order_; ++n) {
        each_partition(threads, [&](std::size_t owner) {
            for (const auto& part_links : links[static_cast<std::size_t>(n - 2)]) {
                for (const EntryRef& s : part_links) {
                    if (s.partition < 0) {
                        if (static_cast<std::size_t>(partition_of(s.index)) == owner) {
                            ++unigrams[s.index];
                        }
                    } else if (static_cast<std::size_t>(s.partition) == owner) {
                        ++entries[static_cast<std::size_t>(n - 3)][owner][s.index];
                    }
                }
            }
        });
    }
}

std::vector<std::uint64_t> NgramCounts::continuation_counts(int n) const {
    check_order(n, order_);
    if (n == order_) {
        throw std::invalid_argument("continuation counts of order " + std::to_string(n) +
                                    " need n-grams of order " + std::to_string(n + 1) +
                                    "; this store counts up to " + std::to_string(order_));
    }
    const int threads = get_num_threads();
    std::vector<std::uint64_t> unigrams;
    EntryValues entries;
    left_extensions(suffix_links(threads), threads, unigrams, entries);
    std::vector<std::uint64_t> out;
    if (n == 1) {
        for (std::size_t w = 0; w < unigram_.size(); ++w) {
            if (unigram_[w] != 0) out.push_back(unigrams[w]);
        }
        return out;
    }
    for (const auto& part : entries[static_cast<std::size_t>(n - 2)]) {
        out.insert(out.end(), part.begin(), part.end());
    }
    return out;
}

void NgramCounts::merge(const NgramCounts& other, const std::vector<std::uint32_t>* translate) {
    if (other.order_ != order_) {
        throw std::invalid_argument("cannot merge counts of order " + std::to_string(other.order_) +
                                    " into counts of order " + std::to_string(order_));
    }
    if (translate && translate->size() < other.unigram_.size()) {
        throw std::invalid_argument("the translation table has " +
                                    std::to_string(translate->size()) + " ids, the counts need " +
                                    std::to_string(other.unigram_.size()));
    }
    // Every count is at most its order's total, so totals that fit mean counts that fit
    // (several words translated to one, e.g. <unk>, add up within the same total).
    check_room(other.totals_, "merging");
    if (&other == this) {
        const NgramCounts copy = other;
        merge(copy, translate);
        return;
    }
    const auto word_of = [translate](std::uint32_t w) {
        return translate ? (*translate)[w] : w;
    };
    // Every id that `other` covers is covered here too, counted or not: its n-grams may hold
    // words that have no unigram count of their own (a shard of a store, split by first word),
    // and serialization needs an id slot for every word (from_bytes checks it).
    for (std::size_t w = 0; w < other.unigram_.size(); ++w) {
        const std::uint32_t here = word_of(static_cast<std::uint32_t>(w));
        ensure_unigram(here);
        unigram_[here] += other.unigram_[w];
    }
    // Per partition of `other`: its entries of order n-1 as (partition, index) here. All the
    // entries of a chain share the (translated) first word, so they land in one partition.
    for (const Partition& theirs : other.parts_) {
        std::vector<std::uint32_t> mapped, mapped_next;
        std::vector<int> where, where_next;
        for (int n = 2; n <= order_; ++n) {
            const Order& o = theirs.at(n);
            mapped_next.resize(o.word.size());
            where_next.resize(o.word.size());
            for (std::size_t e = 0; e < o.word.size(); ++e) {
                std::uint32_t prefix;
                int p;
                if (n == 2) {
                    prefix = word_of(o.prefix[e]);
                    p = partition_of(prefix);
                } else {
                    prefix = mapped[o.prefix[e]];
                    p = where[o.prefix[e]];
                }
                Order& mine = parts_[static_cast<std::size_t>(p)].at(n);
                const std::uint32_t here = find_or_add(mine, prefix, word_of(o.word[e]));
                mine.count[here] += o.count[e];
                mapped_next[e] = here;
                where_next[e] = p;
            }
            std::swap(mapped, mapped_next);
            std::swap(where, where_next);
        }
    }
    for (std::size_t k = 0; k < totals_.size(); ++k) totals_[k] += other.totals_[k];
}

void NgramCounts::prune(const std::vector<std::uint64_t>& min_counts) {
    if (min_counts.size() != static_cast<std::size_t>(order_)) {
        throw std::invalid_argument("min_counts must have one value per order (" +
                                    std::to_string(order_) + "), got " +
                                    std::to_string(min_counts.size()));
    }
    std::vector<char> keep_unigram(unigram_.size(), 0);
    for (std::size_t w = 0; w < unigram_.size(); ++w) {
        // <s> and </s> stay, however rare: every sentence has them, and a model without them
        // could not start or end one (KenLM refuses such an ARPA file).
        const bool marker = w == kBos || w == kEos;
        keep_unigram[w] =
            static_cast<char>(unigram_[w] != 0 && (marker || unigram_[w] >= min_counts[0]));
    }
    for (Partition& part : parts_) {
        // keep[n - 2][e]: entry e of order n stays; from the top order down, so that a kept
        // n-gram keeps its prefix.
        std::vector<std::vector<char>> keep(static_cast<std::size_t>(order_ - 1));
        for (int n = order_; n >= 2; --n) {
            const Order& o = part.at(n);
            auto& k = keep[static_cast<std::size_t>(n - 2)];
            k.resize(o.count.size(), 0);
            for (std::size_t e = 0; e < o.count.size(); ++e) {
                k[e] |= static_cast<char>(o.count[e] != 0 && o.count[e] >= min_counts[n - 1]);
            }
            for (std::size_t e = 0; e < o.count.size(); ++e) {
                if (!k[e]) continue;
                if (n == 2) {
                    keep_unigram[o.prefix[e]] = 1;
                } else {
                    auto& below = keep[static_cast<std::size_t>(n - 3)];
                    below.resize(part.at(n - 1).count.size(), 0);
                    below[o.prefix[e]] = 1;
                }
            }
        }
        // Compact, renumbering the entries (and the prefixes of the next order).
        std::vector<std::uint32_t> renumber, renumber_next;
        for (int n = 2; n <= order_; ++n) {
            Order& o = part.at(n);
            const auto& k = keep[static_cast<std::size_t>(n - 2)];
            renumber_next.assign(o.word.size(), 0);
            std::size_t kept = 0;
            for (std::size_t e = 0; e < o.word.size(); ++e) {
                if (!k[e]) continue;
                renumber_next[e] = static_cast<std::uint32_t>(kept);
                o.prefix[kept] = n == 2 ? o.prefix[e] : renumber[o.prefix[e]];
                o.word[kept] = o.word[e];
                o.count[kept] = o.count[e];
                ++kept;
            }
            o.prefix.resize(kept);
            o.word.resize(kept);
            o.count.resize(kept);
            rebuild_table(o);
            std::swap(renumber, renumber_next);
        }
    }
    for (std::size_t w = 0; w < unigram_.size(); ++w) {
        if (!keep_unigram[w]) unigram_[w] = 0;
    }
    sum_totals(totals_);  // (fewer tokens than before: no sum can pass kMaxTotal)
}

void NgramCounts::rebuild_table(Order& o) {
    table::rebuild(o);
}

std::size_t NgramCounts::memory_bytes() const {
    std::size_t bytes = unigram_.capacity() * sizeof(std::uint64_t);
    for (const Partition& part : parts_) {
        for (const Order& o : part.orders) {
            bytes += o.prefix.capacity() * sizeof(std::uint32_t) +
                     o.word.capacity() * sizeof(std::uint32_t) +
                     o.count.capacity() * sizeof(std::uint64_t) +
                     o.slots.capacity() * sizeof(std::uint32_t);
        }
    }
    return bytes;
}

// ------------------------------------------------------------------------- serialization
// Layout (all integers little-endian):
//   magic "RNKNGRAM" | u32 format version | u32 order | u32 partitions
//   u64 unigram ids, u64 count[ids]
//   per partition p, per order n = 2..N: u64 entries, u32 prefix[entries], u32 word[entries],
//     u64 count[entries]
//   u64 checksum of every byte before it: ngram/checksum.hpp's (version 2); version 1, which
//     is still read, had FNV-1a 64 byte by byte (a third of the speed on large stores).
namespace {

constexpr char kMagic[8] = {'R', 'N', 'K', 'N', 'G', 'R', 'A', 'M'};
constexpr std::uint32_t kFormatVersion = 2;

std::uint64_t checksum(const char* data, std::size_t n) {
    Checksum sum;
    sum.add(data, n);
    return sum.value();
}

std::uint64_t fnv1a(const char* data, std::size_t n) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (std::size_t i = 0; i < n; ++i) {
        h ^= static_cast<unsigned char>(data[i]);
        h *= 0x100000001b3ULL;
    }
    return h;
}

// Little-endian bytes of integers at `out`, advancing it; a memcpy on little-endian hosts.
template <typename U>
void put(char*& out, U value) {
    for (std::size_t i = 0; i < sizeof(U); ++i) {
        *out++ = static_cast<char>((value >> (8 * i)) & 0xff);
    }
}

template <typename U>
void put_all(char*& out, const std::vector<U>& values) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (!values.empty()) std::memcpy(out, values.data(), values.size() * sizeof(U));
    out += values.size() * sizeof(U);
#else
    for (U v : values) put(out, v);
#endif
}

class Reader {
public:
    explicit Reader(std::string_view data) : data_(data) {}
    template <typename U>
    U get(const char* what) {
        need(sizeof(U), what);
        U value = 0;
        for (std::size_t i = 0; i < sizeof(U); ++i) {
            value |= static_cast<U>(static_cast<unsigned char>(data_[pos_ + i])) << (8 * i);
        }
        pos_ += sizeof(U);
        return value;
    }
    // `values.size()` integers at once (the caller has sized it).
    template <typename U>
    void get_all(std::vector<U>& values, const char* what) {
        need(values.size() * sizeof(U), what);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (!values.empty())
            std::memcpy(values.data(), data_.data() + pos_, values.size() * sizeof(U));
        pos_ += values.size() * sizeof(U);
#else
        for (U& v : values) v = get<U>(what);
#endif
    }
    std::size_t remaining() const { return data_.size() - pos_; }

private:
    void need(std::size_t bytes, const char* what) const {
        if (data_.size() - pos_ < bytes) {
            throw std::invalid_argument("NgramCounts bytes are truncated (in " + std::string(what) +
                                        " at byte " + std::to_string(pos_) + " of " +
                                        std::to_string(data_.size()) + ")");
        }
    }

    std::string_view data_;
    std::size_t pos_ = 0;
};

}  // namespace

std::string NgramCounts::to_bytes() const {
    // One allocation of the exact size, arrays copied whole.
    std::size_t size = sizeof(kMagic) + 3 * 4 + 8 + unigram_.size() * 8 + 8;
    for (const Partition& part : parts_) {
        for (const Order& o : part.orders) size += 8 + o.count.size() * (4 + 4 + 8);
    }
    std::string out(size, '\0');
    char* at = out.data();
    std::memcpy(at, kMagic, sizeof(kMagic));
    at += sizeof(kMagic);
    put(at, kFormatVersion);
    put(at, static_cast<std::uint32_t>(order_));
    put(at, static_cast<std::uint32_t>(parts_.size()));
    put(at, static_cast<std::uint64_t>(unigram_.size()));
    put_all(at, unigram_);
    for (const Partition& part : parts_) {
        for (const Order& o : part.orders) {
            put(at, static_cast<std::uint64_t>(o.count.size()));
            put_all(at, o.prefix);
            put_all(at, o.word);
            put_all(at, o.count);
        }
    }
    put(at, checksum(out.data(), size - 8));
    return out;
}

NgramCounts NgramCounts::from_bytes(std::string_view data) {
    if (data.size() < sizeof(kMagic) + 16 || std::memcmp(data.data(), kMagic, sizeof(kMagic))) {
        throw std::invalid_argument("not NgramCounts bytes (no RNKNGRAM header)");
    }
    const std::size_t body = data.size() - 8;
    // The version says which checksum the bytes carry; an unknown version is refused below,
    // after the checksum, as a version that cannot be read.
    const std::uint32_t claimed =
        Reader(data.substr(sizeof(kMagic), 4)).get<std::uint32_t>("version");
    Reader tail(data.substr(body));
    const std::uint64_t stored = tail.get<std::uint64_t>("checksum");
    const std::uint64_t expected =
        claimed == 1 ? fnv1a(data.data(), body) : checksum(data.data(), body);
    if (stored != expected) {
        throw std::invalid_argument("NgramCounts bytes are corrupted (checksum mismatch)");
    }
    Reader in(data.substr(sizeof(kMagic), body - sizeof(kMagic)));
    const std::uint32_t version = in.get<std::uint32_t>("version");
    if (version != 1 && version != kFormatVersion) {
        throw std::invalid_argument("NgramCounts bytes have format version " +
                                    std::to_string(version) + "; this rnnkit reads versions 1 to " +
                                    std::to_string(kFormatVersion));
    }
    const std::uint32_t order = in.get<std::uint32_t>("order");
    if (order < 1 || order > static_cast<std::uint32_t>(kMaxOrder)) {
        throw std::invalid_argument("NgramCounts bytes have an invalid order " +
                                    std::to_string(order));
    }
    NgramCounts counts(static_cast<int>(order));
    const std::uint32_t partitions = in.get<std::uint32_t>("partitions");
    if (partitions != counts.parts_.size()) {
        throw std::invalid_argument("NgramCounts bytes have " + std::to_string(partitions) +
                                    " partitions; expected " +
                                    std::to_string(counts.parts_.size()));
    }
    const auto bad = [](const std::string& what) {
        return std::invalid_argument("NgramCounts bytes are inconsistent (" + what + ")");
    };
    const std::uint64_t ids = in.get<std::uint64_t>("unigram ids");
    if (ids > in.remaining() / 8 ||
        ids > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())) {
        throw std::invalid_argument("NgramCounts bytes are truncated (unigram ids)");
    }
    counts.unigram_.resize(ids);
    in.get_all(counts.unigram_, "count");
    for (std::size_t p = 0; p < counts.parts_.size(); ++p) {
        std::uint64_t below = ids;  // entries of the order below: the valid prefixes
        for (int n = 2; n <= static_cast<int>(order); ++n) {
            Order& o = counts.parts_[p].at(n);
            const std::uint64_t entries = in.get<std::uint64_t>("entry count");
            if (entries > in.remaining() / 16) {
                throw std::invalid_argument("NgramCounts bytes are truncated (order " +
                                            std::to_string(n) + " claims " +
                                            std::to_string(entries) + " entries)");
            }
            o.prefix.resize(entries);
            o.word.resize(entries);
            o.count.resize(entries);
            in.get_all(o.prefix, "prefix");
            in.get_all(o.word, "word");
            in.get_all(o.count, "count");
            for (const std::uint32_t prefix : o.prefix) {
                if (prefix >= below) throw bad("a prefix out of range");
                if (n == 2 && partition_of(prefix) != static_cast<int>(p)) {
                    throw bad("an n-gram in another word's partition");
                }
            }
            for (const std::uint32_t w : o.word) {
                if (w >= ids) throw bad("a word id without a unigram");
            }
            if (!table::rebuild_unique(o)) throw bad("an n-gram held twice");
            below = entries;
        }
    }
    if (in.remaining() != 0) {
        throw std::invalid_argument("NgramCounts bytes have " + std::to_string(in.remaining()) +
                                    " trailing bytes");
    }
    if (!counts.sum_totals(counts.totals_)) throw bad("counts that sum past 2^63 - 1");
    return counts;
}

}  // namespace rnnkit::ngram
