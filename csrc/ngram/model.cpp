#include "ngram/model.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "common/parallel.hpp"
#include "ngram/smoothing.hpp"
#include "ngram/table.hpp"

namespace rnnkit::ngram {

namespace {

void check_n(int n, int order) {
    if (n < 1 || n > order) {
        throw std::invalid_argument("n must be in [1, " + std::to_string(order) + "], got " +
                                    std::to_string(n));
    }
}

}  // namespace

NgramModel::NgramModel(int order, std::int64_t vocab_size) : order_(order) {
    if (order < 1 || order > kMaxOrder) {
        throw std::invalid_argument("order must be in [1, " + std::to_string(kMaxOrder) +
                                    "], got " + std::to_string(order));
    }
    if (vocab_size < 3 || vocab_size > std::numeric_limits<std::int32_t>::max()) {
        throw std::invalid_argument("vocab_size must be in [3, 2^31 - 1], got " +
                                    std::to_string(vocab_size));
    }
    const auto v = static_cast<std::size_t>(vocab_size);
    unigram_prob_.assign(v, 0.0f);
    unigram_backoff_.assign(v, 0.0f);
    unigram_present_.assign(v, 0);
    if (order >= 2) {
        parts_.resize(kPartitions);
        for (Partition& part : parts_) {
            part.orders.resize(static_cast<std::size_t>(order - 1));
            for (Order& o : part.orders) o.slots.assign(table::kInitialSlots, 0);
        }
    }
}

// The model's hash tables (model.hpp, "Tables"): any size, a slot's home by multiplying the
// key's hash by the size (the high half of the product), linear probing; a slot holds entry
// index + 1, and in tables of at most kTaggedSlots slots also 6 bits of the hash above it, so
// that a probe reads an entry only when those bits match.
namespace {

using model_slots::index_mask;
using model_slots::kIndexBits;
using model_slots::kTaggedSlots;
// Entries per slot: at most this while building (then the table grows), and about this after
// compact().
constexpr double kMaxLoad = 2.0 / 3.0;

// The high 32 bits of the hash scaled to [0, size) (tables hold fewer than 2^32 slots).
std::size_t home_slot(std::uint64_t hash, std::size_t size) {
    return static_cast<std::size_t>(((hash >> 32) * static_cast<std::uint64_t>(size)) >> 32);
}

std::uint32_t tag_of(std::uint64_t hash, std::size_t size) {
    return size <= kTaggedSlots ? static_cast<std::uint32_t>(hash & 63) << kIndexBits : 0;
}

}  // namespace

std::int64_t NgramModel::find(const Order& o, std::uint32_t prefix, std::uint32_t word) {
    const std::size_t size = o.slots.size();
    const std::uint64_t hash = table::mix(table::pack(prefix, word));
    const std::uint32_t tag = tag_of(hash, size), mask = index_mask(size);
    for (std::size_t slot = home_slot(hash, size);; slot = slot + 1 == size ? 0 : slot + 1) {
        const std::uint32_t value = o.slots[slot];
        if (value == 0) return -1;
        if ((value & ~mask) != tag) continue;
        const Entry& e = o.entries[(value & mask) - 1];
        if (e.prefix == prefix && e.word == word) return (value & mask) - 1;
    }
}

void NgramModel::prefetch_slot(const Order& o, std::uint32_t prefix, std::uint32_t word) {
    const std::uint64_t hash = table::mix(table::pack(prefix, word));
    __builtin_prefetch(o.slots.data() + home_slot(hash, o.slots.size()));
}

std::int64_t NgramModel::prefetch_entry(const Order& o, std::uint32_t prefix, std::uint32_t word) {
    const std::size_t size = o.slots.size();
    const std::uint64_t hash = table::mix(table::pack(prefix, word));
    const std::uint32_t value = o.slots[home_slot(hash, size)], mask = index_mask(size);
    if (value == 0 || (value & ~mask) != tag_of(hash, size)) return -1;
    __builtin_prefetch(o.entries.data() + (value & mask) - 1);
    return static_cast<std::int64_t>(value & mask) - 1;
}

void NgramModel::place(Order& o, std::size_t index) {
    const std::size_t size = o.slots.size();
    const Entry& e = o.entries[index];
    const std::uint64_t hash = table::mix(table::pack(e.prefix, e.word));
    std::size_t slot = home_slot(hash, size);
    while (o.slots[slot] != 0) slot = slot + 1 == size ? 0 : slot + 1;
    o.slots[slot] = tag_of(hash, size) | static_cast<std::uint32_t>(index + 1);
}

void NgramModel::rebuild_table(Order& o, std::size_t size) {
    if (o.entries.size() + 1 > std::numeric_limits<std::uint32_t>::max() / 2) {
        throw std::length_error("more than 2^31 n-grams of one order in one partition");
    }
    o.slots.assign(size, 0);
    for (std::size_t e = 0; e < o.entries.size(); ++e) place(o, e);
}

std::size_t NgramModel::compact_slots(std::size_t entries) {
    return static_cast<std::size_t>(static_cast<double>(entries) / kMaxLoad) + 2;
}

void NgramModel::compact_order(Order& o) {
    o.entries.shrink_to_fit();
    rebuild_table(o, compact_slots(o.entries.size()));
}

void NgramModel::compact() {
    for (Partition& part : parts_) {
        for (Order& o : part.orders) compact_order(o);
    }
}

void NgramModel::shrink_vocabulary(std::int64_t vocab_size) {
    if (vocab_size < 3 || vocab_size > this->vocab_size() ||
        std::find(unigram_present_.begin() + static_cast<std::ptrdiff_t>(vocab_size),
                  unigram_present_.end(), 1) != unigram_present_.end()) {
        throw std::invalid_argument("cannot shrink the vocabulary from " +
                                    std::to_string(this->vocab_size()) + " to " +
                                    std::to_string(vocab_size) + " ids");
    }
    const auto v = static_cast<std::size_t>(vocab_size);
    for (auto* values : {&unigram_prob_, &unigram_backoff_}) {
        values->resize(v);
        values->shrink_to_fit();
    }
    unigram_present_.resize(v);
    unigram_present_.shrink_to_fit();
}

std::uint32_t NgramModel::find_or_add(Order& o, std::uint32_t prefix, std::uint32_t word,
                                      bool* added) {
    const std::int64_t found = find(o, prefix, word);
    if (added) *added = found < 0;
    if (found >= 0) return static_cast<std::uint32_t>(found);
    const std::size_t index = o.entries.size();
    o.entries.push_back({prefix, word, 0.0f, 0.0f});
    if (static_cast<double>(index + 2) > kMaxLoad * static_cast<double>(o.slots.size())) {
        rebuild_table(o, std::max(table::kInitialSlots, 2 * o.slots.size()));
    } else {
        place(o, index);
    }
    return static_cast<std::uint32_t>(index);
}

std::int64_t NgramModel::size(int n) const {
    check_n(n, order_);
    if (n == 1) return std::count(unigram_present_.begin(), unigram_present_.end(), 1);
    std::int64_t total = 0;
    for (const Partition& part : parts_) total += static_cast<std::int64_t>(part.at(n).size());
    return total;
}

void NgramModel::set(const std::int32_t* words, int n, float log_prob, float log_backoff) {
    check_n(n, order_);
    for (int k = 0; k < n; ++k) {
        if (words[k] < 0 || words[k] >= vocab_size()) {
            throw std::invalid_argument("word id " + std::to_string(words[k]) +
                                        " is outside the vocabulary (size " +
                                        std::to_string(vocab_size()) + ")");
        }
    }
    const auto first = static_cast<std::uint32_t>(words[0]);
    if (n == 1) {
        unigram_prob_[first] = log_prob;
        unigram_backoff_[first] = log_backoff;
        unigram_present_[first] = 1;
        return;
    }
    // (the word ids are in range: set_batch refuses only a missing context)
    if (set_batch(words, n, &log_prob, &log_backoff, 1) == 0) {
        throw std::invalid_argument("the n-gram's first n-1 words are not an n-gram of the model");
    }
}

std::int64_t NgramModel::set_batch(const std::int32_t* words, int n, const float* log_probs,
                                   const float* log_backoffs, std::int64_t count, bool* duplicate) {
    check_n(n, order_);
    if (duplicate) *duplicate = false;
    if (n < 2) throw std::invalid_argument("set_batch takes n-grams of order 2 or more");
    const auto nn = static_cast<std::size_t>(n);
    // Each row's partition and the entry of its prefix at the level being looked up; rows
    // set() would refuse (a word out of range, a missing prefix) stop the batch there.
    std::vector<Partition*> parts(static_cast<std::size_t>(count));
    std::vector<std::uint32_t> entry(static_cast<std::size_t>(count));
    std::int64_t valid = count;
    for (std::int64_t r = 0; r < valid; ++r) {
        const std::int32_t* row = words + static_cast<std::size_t>(r) * nn;
        bool ok = true;
        for (std::size_t k = 0; k < nn; ++k) ok = ok && row[k] >= 0 && row[k] < vocab_size();
        if (!ok || !unigram_present_[static_cast<std::size_t>(row[0])]) {
            valid = r;
            break;
        }
        const auto first = static_cast<std::uint32_t>(row[0]);
        parts[static_cast<std::size_t>(r)] =
            &parts_[static_cast<std::size_t>(NgramCounts::partition_of(first))];
        entry[static_cast<std::size_t>(r)] = first;
    }
    const auto word_of = [&](std::int64_t r, int k) {  // the k-th word (1-based) of row r
        return static_cast<std::uint32_t>(words[static_cast<std::size_t>(r) * nn + k - 1]);
    };
    for (int k = 2; k < n; ++k) {
        for (std::int64_t r = 0; r < valid; ++r) {
            const auto i = static_cast<std::size_t>(r);
            prefetch_slot(parts[i]->at(k), entry[i], word_of(r, k));
        }
        for (std::int64_t r = 0; r < valid; ++r) {
            const auto i = static_cast<std::size_t>(r);
            const std::int64_t found = find(parts[i]->at(k), entry[i], word_of(r, k));
            if (found < 0) {
                valid = r;
                break;
            }
            entry[i] = static_cast<std::uint32_t>(found);
        }
    }
    for (std::int64_t r = 0; r < valid; ++r) {
        const auto i = static_cast<std::size_t>(r);
        prefetch_slot(parts[i]->at(n), entry[i], word_of(r, n));
    }
    for (std::int64_t r = 0; r < valid; ++r) {
        const auto i = static_cast<std::size_t>(r);
        Order& o = parts[i]->at(n);
        bool added = true;
        const std::uint32_t here = find_or_add(o, entry[i], word_of(r, n), &added);
        if (duplicate && !added) {
            *duplicate = true;
            return r;
        }
        o.entries[here].log_prob = log_probs[r];
        o.entries[here].log_backoff = log_backoffs[r];
    }
    return valid;
}

bool NgramModel::get(const std::int32_t* words, int n, float* log_prob, float* log_backoff) const {
    check_n(n, order_);
    for (int k = 0; k < n; ++k) {
        if (words[k] < 0 || words[k] >= vocab_size()) return false;
    }
    const auto first = static_cast<std::uint32_t>(words[0]);
    if (!unigram_present_[first]) return false;
    if (n == 1) {
        *log_prob = unigram_prob_[first];
        *log_backoff = unigram_backoff_[first];
        return true;
    }
    const Partition& part = parts_[static_cast<std::size_t>(NgramCounts::partition_of(first))];
    std::uint32_t e = first;
    for (int k = 2; k <= n; ++k) {
        const std::int64_t found = find(part.at(k), e, static_cast<std::uint32_t>(words[k - 1]));
        if (found < 0) return false;
        e = static_cast<std::uint32_t>(found);
    }
    *log_prob = part.at(n).entries[e].log_prob;
    *log_backoff = part.at(n).entries[e].log_backoff;
    return true;
}

void NgramModel::ngrams(int n, std::int32_t* words, float* log_probs, float* log_backoffs) const {
    check_n(n, order_);
    if (n == 1) {
        std::size_t row = 0;
        for (std::size_t w = 0; w < unigram_present_.size(); ++w) {
            if (!unigram_present_[w]) continue;
            words[row] = static_cast<std::int32_t>(w);
            log_probs[row] = unigram_prob_[w];
            log_backoffs[row] = unigram_backoff_[w];
            ++row;
        }
        return;
    }
    // Partitions are independent: each fills its own rows (at the sum of the sizes before it),
    // on all threads; walking each entry's chain of prefixes is a cache miss per word.
    std::vector<std::size_t> first_row(parts_.size() + 1, 0);
    for (std::size_t p = 0; p < parts_.size(); ++p) {
        first_row[p + 1] = first_row[p] + parts_[p].at(n).size();
    }
    parallel_region(first_row.back() < 100000 ? 1 : get_num_threads(), [&](int tid, int team) {
        for_each_owned(static_cast<std::int64_t>(parts_.size()), tid, team, [&](std::int64_t p) {
            const Partition& part = parts_[static_cast<std::size_t>(p)];
            const Order& o = part.at(n);
            std::size_t row = first_row[static_cast<std::size_t>(p)];
            for (std::size_t e = 0; e < o.size(); ++e, ++row) {
                std::int32_t* out = words + row * static_cast<std::size_t>(n);
                std::uint32_t index = static_cast<std::uint32_t>(e);
                for (int k = n; k >= 2; --k) {
                    out[k - 1] = static_cast<std::int32_t>(part.at(k).entries[index].word);
                    index = part.at(k).entries[index].prefix;
                }
                out[0] = static_cast<std::int32_t>(index);
                log_probs[row] = o.entries[e].log_prob;
                log_backoffs[row] = o.entries[e].log_backoff;
            }
        });
    });
}

float NgramModel::step(const EntryRef* context, int have, std::uint32_t w, EntryRef* next,
                       int* next_have, int* matched_out) const {
    w = known_or_unk(w);
    float prob = unigram_prob_[w];
    int matched = 1;
    next[0] = {-1, w};
    // Extend the match leftwards: the n-gram (context of length k + 1, w), stopping at the
    // first miss (a stored n-gram's suffixes are all stored).
    for (int k = 0; k < have && k + 2 <= order_; ++k) {
        const EntryRef ctx = context[k];
        const int p = ctx.partition < 0 ? NgramCounts::partition_of(ctx.index) : ctx.partition;
        const Order& o = parts_[static_cast<std::size_t>(p)].at(k + 2);
        const std::int64_t found = find(o, ctx.index, w);
        if (found < 0) break;
        prob = o.entries[static_cast<std::size_t>(found)].log_prob;
        matched = k + 2;
        next[k + 1] = {p, static_cast<std::uint32_t>(found)};
    }
    // Backoffs of the contexts at least as long as the match (matched - 1 words).
    for (int c = matched - 1; c < have && c + 1 < order_; ++c) {
        const EntryRef ctx = context[c];
        prob += ctx.partition < 0 ? unigram_backoff_[ctx.index]
                                  : parts_[static_cast<std::size_t>(ctx.partition)]
                                        .at(c + 1)
                                        .entries[ctx.index]
                                        .log_backoff;
    }
    *matched_out = matched;
    *next_have = std::min(matched, order_ - 1);
    return prob;
}

bool NgramModel::valid_context(const EntryRef* context, int have) const {
    if (have < 0 || have >= order_) return false;
    if (have == 0) return true;
    if (context[0].partition != -1 || context[0].index >= unigram_prob_.size()) return false;
    std::vector<std::uint32_t> words, shorter{context[0].index};
    for (int k = 1; k < have; ++k) {
        const EntryRef ref = context[k];
        if (ref.partition < 0 || static_cast<std::size_t>(ref.partition) >= parts_.size()) {
            return false;
        }
        const Partition& part = parts_[static_cast<std::size_t>(ref.partition)];
        // The words of the n-gram (n = k + 1), last first, through its prefixes (all in its
        // first word's partition).
        const int n = k + 1;
        words.assign(static_cast<std::size_t>(n), 0);
        std::uint32_t e = ref.index;
        for (int m = n; m >= 2; --m) {
            const Order& o = part.at(m);
            if (e >= o.size()) return false;
            words[static_cast<std::size_t>(m - 1)] = o.word_at(e);
            e = o.prefix_at(e);
        }
        words[0] = e;
        if (e >= unigram_prob_.size() || NgramCounts::partition_of(e) != ref.partition ||
            !std::equal(shorter.begin(), shorter.end(), words.begin() + 1)) {
            return false;
        }
        shorter.swap(words);
    }
    return true;
}

void NgramModel::prefetch_step(const EntryRef* context, int have, std::uint32_t w,
                               int orders) const {
    w = known_or_unk(w);
    for (int k = 0; k < have && k < orders && k + 2 <= order_; ++k) {
        const EntryRef ctx = context[k];
        const int p = ctx.partition < 0 ? NgramCounts::partition_of(ctx.index) : ctx.partition;
        prefetch_slot(parts_[static_cast<std::size_t>(p)].at(k + 2), ctx.index, w);
    }
}

void NgramModel::score(const std::int32_t* ids, const std::int64_t* offsets, std::int64_t sentences,
                       bool bos, bool eos, double* sentence_scores, float* token_scores,
                       std::int32_t* token_lengths, int threads) const {
    // Sentences are independent: each thread takes every nthreads-th one. Within a sentence
    // each token's lookups need the entries the previous token found, a chain of cache misses;
    // so a thread scores up to kStreams sentences side by side, one token of each in turn, and
    // before stepping any of them prefetches the home slots of the next token's first three
    // lookups in every stream: their misses overlap. A thread with a single sentence (a
    // sentence scored alone) instead prefetches the bigram lookups of the tokens ahead, whose
    // keys are the words themselves. Each sentence is still summed token by token in order,
    // so the scores are those of scoring it alone.
    constexpr int kStreams = 16;
    constexpr int kPrefetchedOrders = 3;
    constexpr std::int64_t kAhead = 8;
    const std::int64_t tokens = offsets[sentences] - offsets[0];
    const int team = tokens < 20000 ? 1 : threads;
    const auto order = static_cast<std::size_t>(order_);
    parallel_region(team, [&](int tid, int nthreads) {
        struct Stream {
            std::int64_t sentence = -1;  // -1: idle
            std::int64_t t = 0, count = 0;
            int have = 0;        // stored n-grams ending at the previous word
            float total = 0.0f;  // KenLM sums in float32 too (kenlm.pyx: cdef float total)
        };
        const std::int64_t mine = sentences > tid ? (sentences - tid + nthreads - 1) / nthreads : 0;
        const int width = static_cast<int>(std::min<std::int64_t>(kStreams, mine));
        const bool ahead = width == 1 && order_ >= 2;
        std::vector<Stream> streams(static_cast<std::size_t>(width));
        std::vector<EntryRef> contexts(streams.size() * order), nexts(contexts.size());
        std::int64_t next_sentence = tid;
        // Token t of a stream's sentence: its word, or </s> after the words.
        const auto word_at = [&](const Stream& st, std::int64_t t) {
            const std::int64_t begin = offsets[st.sentence],
                               length = offsets[st.sentence + 1] - begin;
            return t < length ? static_cast<std::uint32_t>(ids[begin + t]) : kEos;
        };
        // The bigram lookup of token t (t >= 1, or 0 after <s>), ahead of its turn.
        const auto prefetch_bigram = [&](const Stream& st, std::int64_t t) {
            if (t >= st.count || (t == 0 && !bos)) return;
            const EntryRef context{-1, t == 0 ? kBos : known_or_unk(word_at(st, t - 1))};
            prefetch_step(&context, 1, word_at(st, t), 1);
        };
        // Starts sentence `next_sentence` (if any is left) in stream i.
        const auto start = [&](int i) {
            Stream& st = streams[static_cast<std::size_t>(i)];
            st.sentence = -1;
            while (next_sentence < sentences) {
                const std::int64_t s = next_sentence;
                next_sentence += nthreads;
                st = Stream{s, 0, offsets[s + 1] - offsets[s] + (eos ? 1 : 0), 0, 0.0f};
                if (bos) {
                    contexts[static_cast<std::size_t>(i) * order] = {-1, kBos};
                    st.have = 1;
                }
                if (st.count > 0) {
                    if (ahead) {
                        for (std::int64_t t = 1; t < kAhead; ++t) prefetch_bigram(st, t);
                    }
                    return;
                }
                sentence_scores[s] = 0.0;  // nothing to score (no words, no </s>)
                st.sentence = -1;
            }
        };
        for (int i = 0; i < width; ++i) start(i);
        for (bool busy = width > 0; busy;) {
            busy = false;
            for (int i = 0; i < width; ++i) {
                const Stream& st = streams[static_cast<std::size_t>(i)];
                if (st.sentence < 0) continue;
                if (ahead) {
                    prefetch_bigram(st, st.t + kAhead);
                } else {
                    prefetch_step(contexts.data() + static_cast<std::size_t>(i) * order, st.have,
                                  word_at(st, st.t), kPrefetchedOrders);
                }
            }
            for (int i = 0; i < width; ++i) {
                Stream& st = streams[static_cast<std::size_t>(i)];
                if (st.sentence < 0) continue;
                busy = true;
                EntryRef* context = contexts.data() + static_cast<std::size_t>(i) * order;
                EntryRef* next = nexts.data() + static_cast<std::size_t>(i) * order;
                int matched = 0, next_have = 0;
                const float prob =
                    step(context, st.have, word_at(st, st.t), next, &next_have, &matched);
                st.total += prob;
                if (token_scores) {
                    const std::int64_t out = offsets[st.sentence] + (eos ? st.sentence : 0) + st.t;
                    token_scores[out] = prob;
                    token_lengths[out] = matched;
                }
                st.have = next_have;
                std::copy(next, next + next_have, context);
                if (++st.t == st.count) {
                    sentence_scores[st.sentence] = st.total;
                    start(i);
                }
            }
        }
    });
}

float NgramModel::score_short(const std::int32_t* ids, std::int64_t n, bool bos, bool eos) const {
    constexpr int kStackOrder = 16;
    EntryRef stack[2 * kStackOrder];
    std::vector<EntryRef> heap(order_ > kStackOrder ? 2 * static_cast<std::size_t>(order_) : 0);
    EntryRef* context = order_ > kStackOrder ? heap.data() : stack;
    EntryRef* next = context + order_;
    int have = 0;
    if (bos) context[have++] = {-1, kBos};
    float total = 0.0f;  // summed in float32, token by token, as score() (and KenLM)
    const std::int64_t count = n + (eos ? 1 : 0);
    for (std::int64_t t = 0; t < count; ++t) {
        const std::uint32_t w = t < n ? static_cast<std::uint32_t>(ids[t]) : kEos;
        int matched = 0, next_have = 0;
        total += step(context, have, w, next, &next_have, &matched);
        have = next_have;
        std::copy(next, next + next_have, context);
    }
    return total;
}

void NgramModel::distribution(const EntryRef* context, int have, float* log_probs) const {
    const auto V = unigram_present_.size();
    parallel_region(V < 20000 ? 1 : get_num_threads(), [&](int tid, int team) {
        std::vector<EntryRef> next(static_cast<std::size_t>(order_));
        for (std::size_t w = static_cast<std::size_t>(tid); w < V;
             w += static_cast<std::size_t>(team)) {
            int matched = 0, next_have = 0;
            log_probs[w] = unigram_present_[w] && w != kBos
                               ? step(context, have, static_cast<std::uint32_t>(w), next.data(),
                                      &next_have, &matched)
                               : -std::numeric_limits<float>::infinity();
        }
    });
}

// ---------------------------------------------------------------- modified Kneser-Ney
// KenLM's lmplz, rule by rule (lm/builder: adjust_counts.cc, initial_probabilities.cc,
// interpolate.cc), in float32 as it computes, so that the ARPA values agree to the last digit:
//
// 1. Adjusted counts a(g): the raw count at the top order N and for n-grams that begin with
//    <s>; otherwise the number of distinct words seen before g (left extensions). <s> and an
//    unseen <unk> have a = 0.
// 2. Discounts per order k from n_j = #{order-k n-grams with a = j}:
//    y = n1 / (n1 + 2 n2), D_j = j - (j + 1) y n_{j+1} / n_j (j = 1, 2, 3). lmplz counts, for
//    each k < N, one n-gram with its raw count instead of its adjusted one (kpu/kenlm issue
//    #427): the k-word suffix of the largest padded N-gram in suffix order (the last word
//    with the largest id, ...). It is reproduced, since it changes every number. Where a
//    D_j is undefined or outside [0, j], lmplz stops unless given --discount_fallback; here
//    its default fallback (0.5, 1, 1.5) is used and the order reported.
// 3. Per context h: den(h) = sum of a(hx), N_j(h) = #{x : a(hx) = j} (j = 1, 2, >= 3),
//    gamma(h) = (D1 N1 + D2 N2 + D3 N3) / den(h); u(hw) = (a(hw) - D(a(hw))) / den(h).
// 4. p(hw) = u(hw) + gamma(h) p(h'w) (h' = h without its first word); unigrams interpolate
//    with the uniform 1/V, V = the unigram types without <s> (<unk> included); p(<s>) = 1.
// 5. log10 p (at most 0); the backoff of an n-gram is log10 gamma as a context, 0 when it
//    has no extension (an n-gram ending in </s>).
namespace {

// A sequence of words of an entry, first word first (for the suffix-order search).
using Words = std::vector<std::uint32_t>;

}  // namespace

Smoother::Smoother(NgramModel::Smoothing method, const std::vector<CountOfCounts>& stats,
                   std::vector<float>* discounts, std::vector<int>* fallback)
    : witten_bell_(method == NgramModel::Smoothing::WittenBell), D_(stats.size()) {
    const int N = static_cast<int>(stats.size());
    const bool witten_bell = witten_bell_;
    auto& D = D_;
    discounts->clear();
    fallback->clear();
    for (int k = 1; k <= N; ++k) {
        const auto& h = stats[static_cast<std::size_t>(k - 1)];
        auto& d = D[static_cast<std::size_t>(k - 1)];
        d[0] = 0.0f;
        if (witten_bell) {
            d = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int j = 1; j <= 3; ++j) discounts->push_back(0.0f);
            continue;
        }
        if (method != NgramModel::Smoothing::ModifiedKneserNey) {
            // One discount, D = n1 / (n1 + 2 n2) (Ney, Essen and Kneser), in (0, 1] when there
            // are singletons.
            const float one =
                static_cast<float>(h[1]) /
                static_cast<float>(static_cast<double>(h[1]) + 2.0 * static_cast<double>(h[2]));
            if (h[1] > 0 && one > 0.0f && one <= 1.0f) {
                d = {0.0f, one, one, one};
            } else {
                d = {0.0f, 0.5f, 0.5f, 0.5f};
                fallback->push_back(k);
            }
            for (int j = 1; j <= 3; ++j) discounts->push_back(d[static_cast<std::size_t>(j)]);
            continue;
        }
        bool ok = true;
        const float y =
            static_cast<float>(h[1]) /
            static_cast<float>(static_cast<double>(h[1]) + 2.0 * static_cast<double>(h[2]));
        for (int j = 1; j <= 3 && ok; ++j) {
            if (h[static_cast<std::size_t>(j)] == 0) {
                ok = false;
                break;
            }
            d[static_cast<std::size_t>(j)] =
                static_cast<float>(j) - ((static_cast<float>(j + 1) * y) *
                                         static_cast<float>(h[static_cast<std::size_t>(j + 1)])) /
                                            static_cast<float>(h[static_cast<std::size_t>(j)]);
            if (!(d[static_cast<std::size_t>(j)] >= 0.0f &&
                  d[static_cast<std::size_t>(j)] <= static_cast<float>(j)))
                ok = false;
        }
        if (!ok) {
            d = {0.0f, 0.5f, 1.0f, 1.5f};
            fallback->push_back(k);
        }
        for (int j = 1; j <= 3; ++j) discounts->push_back(d[static_cast<std::size_t>(j)]);
    }
}

std::vector<float> NgramModel::set_unigrams(const Smoother& smooth,
                                            const std::vector<std::uint64_t>& raw1,
                                            const std::vector<std::uint64_t>& a1,
                                            std::vector<std::size_t>& present) {
    const std::size_t V_ids = unigram_prob_.size();
    // One context (the empty history).
    Context empty;
    for (std::size_t w = 0; w < V_ids; ++w) {
        if (raw1[w] > 0 || w == kUnk) present.push_back(w);
    }
    std::size_t types_without_bos = 0;
    for (std::size_t w : present) {
        if (w != kBos) ++types_without_bos;
        empty.add(a1[w]);
    }
    const float gamma0 = smooth.lower_weight(1, empty);
    const float uniform = static_cast<float>(1.0 / static_cast<float>(types_without_bos));
    std::vector<float> p1(V_ids, 0.0f);
    for (std::size_t w : present) {
        unigram_present_[w] = 1;
        float prob;
        if (w == kBos) {
            prob = 1.0f;
        } else {
            const float u =
                a1[w] == 0 ? 0.0f : smooth.discounted(1, a1[w]) / smooth.denominator(empty);
            prob = u + gamma0 * uniform;
        }
        p1[w] = prob;
        unigram_prob_[w] = std::min(0.0f, std::log10(prob));
    }
    return p1;
}

NgramModel NgramModel::with_structure(const NgramCounts& counts, std::int64_t vocab_size) {
    if (counts.word_bound() > vocab_size) {
        throw std::invalid_argument("the counts hold ids up to " +
                                    std::to_string(counts.word_bound() - 1) +
                                    " but the vocabulary has " + std::to_string(vocab_size));
    }
    NgramModel model(counts.order(), vocab_size);
    for (std::size_t p = 0; p < model.parts_.size(); ++p) {
        for (int n = 2; n <= counts.order(); ++n) {
            const NgramCounts::Order& from = counts.parts_[p].at(n);
            Order& to = model.parts_[p].at(n);
            to.entries.resize(from.size());
            for (std::size_t e = 0; e < from.size(); ++e) {
                to.entries[e] = {from.prefix[e], from.word[e], 0.0f, 0.0f};
            }
        }
    }
    model.compact();
    return model;
}

NgramModel NgramModel::interpolated(const NgramCounts& counts, std::int64_t vocab_size,
                                    Smoothing method, std::vector<float>* discounts,
                                    std::vector<int>* fallback) {
    const bool kneser_ney =
        method == Smoothing::ModifiedKneserNey || method == Smoothing::KneserNey;
    const int N = counts.order();
    NgramModel model = with_structure(counts, vocab_size);
    const auto V_ids = static_cast<std::size_t>(vocab_size);
    std::vector<std::uint64_t> raw1(V_ids, 0);
    std::copy(counts.unigram_.begin(), counts.unigram_.end(), raw1.begin());
    const auto order_of = [&](std::size_t p, int n) -> const NgramCounts::Order& {
        return counts.parts_[p].at(n);
    };
    // Each step below runs partition by partition on all threads and writes only its own
    // partition's arrays (reading others'), so the result is the same for any thread count.
    const int threads = get_num_threads();
    const auto each_partition = [&](auto&& fn) {
        counts.each_partition(threads, fn);
    };
    const NgramCounts::SuffixLinks suffix = counts.suffix_links(threads);
    // First word of each entry (for "begins with <s>"): order 2's prefix is the word itself.
    const auto begins_with_bos = [&](std::size_t p, int n, std::uint32_t e) {
        for (int k = n; k >= 2; --k) e = order_of(p, k).prefix[e];
        return e == kBos;
    };

    // 1. Adjusted counts: left extensions, then raw counts at the top order and for n-grams
    // that begin with <s>.
    // Without Kneser-Ney, every order uses its raw counts.
    std::vector<std::uint64_t> a1;
    NgramCounts::EntryValues a;
    if (N == 1 || !kneser_ney) {
        a1 = raw1;
        a.assign(static_cast<std::size_t>(std::max(N - 1, 0)), {});
        for (int n = 2; n <= N; ++n) {
            auto& an = a[static_cast<std::size_t>(n - 2)];
            an.resize(model.parts_.size());
            each_partition([&](std::size_t p) { an[p] = order_of(p, n).count; });
        }
    } else {
        counts.left_extensions(suffix, threads, a1, a);
        a1.resize(V_ids, 0);
        auto& top = a[static_cast<std::size_t>(N - 2)];
        top.resize(model.parts_.size());
        for (int n = 2; n <= N; ++n) {
            each_partition([&](std::size_t p) {
                const NgramCounts::Order& o = order_of(p, n);
                auto& an = a[static_cast<std::size_t>(n - 2)][p];
                an.resize(o.word.size(), 0);
                for (std::size_t e = 0; e < o.word.size(); ++e) {
                    if (n == N || begins_with_bos(p, n, static_cast<std::uint32_t>(e))) {
                        an[e] = o.count[e];
                    }
                }
            });
        }
    }
    a1[kBos] = 0;  // nothing precedes <s>; lmplz gives it 0 (at order 1 too)

    // 2. Count-of-counts (with lmplz's substitution) and discounts.
    std::vector<CountOfCounts> stats(static_cast<std::size_t>(N), {0, 0, 0, 0, 0});
    for (std::size_t w = 0; w < V_ids; ++w) {
        if (raw1[w] > 0 || w == kUnk) tally(stats[0], a1[w], 1);
    }
    for (int n = 2; n <= N; ++n) {
        for (const auto& part : a[static_cast<std::size_t>(n - 2)]) {
            for (std::uint64_t v : part) tally(stats[static_cast<std::size_t>(n - 1)], v, 1);
        }
    }
    if (N >= 2 && method == Smoothing::ModifiedKneserNey) {
        // The largest padded N-gram in suffix order: compare last words, then the ones
        // before (a padded <s> is id 1). Candidates end in the largest id that ends any.
        Words best;
        const auto consider = [&](Words words) {
            while (static_cast<int>(words.size()) < N) words.insert(words.begin(), kBos);
            const auto later = [](const Words& x, const Words& y) {
                return std::lexicographical_compare(y.rbegin(), y.rend(), x.rbegin(), x.rend());
            };
            if (best.empty() || later(words, best)) best = words;
        };
        const auto words_of = [&](std::size_t p, int n, std::uint32_t e) {
            Words words(static_cast<std::size_t>(n));
            for (int k = n; k >= 2; --k) {
                words[static_cast<std::size_t>(k - 1)] = order_of(p, k).word[e];
                e = order_of(p, k).prefix[e];
            }
            words[0] = e;
            return words;
        };
        std::uint32_t top_last = 0;
        for (int n = 2; n <= N; ++n) {
            for (std::size_t p = 0; p < model.parts_.size(); ++p) {
                for (std::uint32_t w : order_of(p, n).word) top_last = std::max(top_last, w);
            }
        }
        for (int n = 2; n <= N; ++n) {
            for (std::size_t p = 0; p < model.parts_.size(); ++p) {
                const NgramCounts::Order& o = order_of(p, n);
                for (std::size_t e = 0; e < o.word.size(); ++e) {
                    if (o.word[e] != top_last) continue;
                    if (n < N && !begins_with_bos(p, n, static_cast<std::uint32_t>(e))) continue;
                    consider(words_of(p, n, static_cast<std::uint32_t>(e)));
                }
            }
        }
        // Its k-word suffixes, k < N, that are n-grams (no padded <s> inside): counted
        // with their raw count instead of the adjusted one.
        for (int k = 1; k < N && !best.empty(); ++k) {
            const Words tail(best.end() - k, best.end());
            if (std::find(tail.begin() + 1, tail.end(), kBos) != tail.end()) continue;
            std::uint64_t adjusted = 0, raw = 0;
            if (k == 1) {
                adjusted = a1[tail[0]];
                raw = raw1[tail[0]];
            } else {
                const std::size_t p = static_cast<std::size_t>(NgramCounts::partition_of(tail[0]));
                std::uint32_t e = tail[0];
                bool found = true;
                for (int j = 2; j <= k && found; ++j) {
                    const std::int64_t f =
                        table::find(order_of(p, j), e, tail[static_cast<std::size_t>(j - 1)]);
                    found = f >= 0;
                    if (found) e = static_cast<std::uint32_t>(f);
                }
                if (!found) continue;
                adjusted = a[static_cast<std::size_t>(k - 2)][p][e];
                raw = order_of(p, k).count[e];
            }
            tally(stats[static_cast<std::size_t>(k - 1)], adjusted, -1);
            tally(stats[static_cast<std::size_t>(k - 1)], raw, 1);
        }
    }
    const Smoother smooth(method, stats, discounts, fallback);

    // 3-5, order by order from the unigrams up. Context statistics of the entries of order
    // k-1 come from their extensions at order k.
    std::vector<std::size_t> present;
    const std::vector<float> p1 = model.set_unigrams(smooth, raw1, a1, present);
    // Probabilities of the previous order, by partition and entry (order 1: p1 by id).
    std::vector<std::vector<float>> below_prob;
    for (int n = 2; n <= N; ++n) {
        // Context statistics of order n-1 entries, from the order-n entries.
        std::vector<Context> ctx1;                                   // n == 2: by word id
        std::vector<std::vector<Context>> ctx(model.parts_.size());  // n > 2
        if (n == 2) {
            ctx1.resize(V_ids);
        } else {
            for (std::size_t p = 0; p < model.parts_.size(); ++p) {
                ctx[p].resize(order_of(p, n - 1).word.size());
            }
        }
        // A context is in its extensions' partition (for n == 2, the word's own partition).
        each_partition([&](std::size_t p) {
            const NgramCounts::Order& o = order_of(p, n);
            const auto& an = a[static_cast<std::size_t>(n - 2)][p];
            for (std::size_t e = 0; e < o.word.size(); ++e) {
                Context& c = n == 2 ? ctx1[o.prefix[e]] : ctx[p][o.prefix[e]];
                c.add(an[e]);
            }
        });
        // Backoffs of order n-1 (as contexts of order n).
        if (n == 2) {
            for (std::size_t w : present) {
                const Context& c = ctx1[w];
                model.unigram_backoff_[w] = c.den == 0 ? 0.0f : std::log10(smooth.weight(2, c));
            }
        } else {
            each_partition([&](std::size_t p) {
                Order& lower = model.parts_[p].at(n - 1);
                for (std::size_t e = 0; e < lower.size(); ++e) {
                    const Context& c = ctx[p][e];
                    lower.entries[e].log_backoff =
                        c.den == 0 ? 0.0f : std::log10(smooth.weight(n, c));
                }
            });
        }
        // Probabilities of order n.
        std::vector<std::vector<float>> probs(model.parts_.size());
        each_partition([&](std::size_t p) {
            const NgramCounts::Order& o = order_of(p, n);
            const auto& an = a[static_cast<std::size_t>(n - 2)][p];
            const auto& links = suffix[static_cast<std::size_t>(n - 2)][p];
            Order& out = model.parts_[p].at(n);
            probs[p].resize(o.word.size());
            for (std::size_t e = 0; e < o.word.size(); ++e) {
                const Context& c = n == 2 ? ctx1[o.prefix[e]] : ctx[p][o.prefix[e]];
                const float u = smooth.own_mass(n, an[e], c);
                const float g = smooth.lower_weight(n, c);
                const EntryRef s = links[e];
                const float lower =
                    s.partition < 0 ? p1[s.index]
                                    : below_prob[static_cast<std::size_t>(s.partition)][s.index];
                const float prob = Smoother::interpolate(u, g, lower);
                probs[p][e] = prob;
                out.entries[e].log_prob = std::min(0.0f, std::log10(prob));
            }
        });
        below_prob = std::move(probs);
    }
    return model;
}

std::size_t NgramModel::memory_bytes() const {
    std::size_t bytes = unigram_prob_.capacity() * 4 + unigram_backoff_.capacity() * 4 +
                        unigram_present_.capacity();
    for (const Partition& part : parts_) {
        for (const Order& o : part.orders) {
            bytes +=
                o.entries.capacity() * sizeof(Entry) + o.slots.capacity() * sizeof(std::uint32_t);
        }
    }
    return bytes;
}

}  // namespace rnnkit::ngram
