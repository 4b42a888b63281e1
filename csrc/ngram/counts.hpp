// Exact n-gram counts of every order 1..N in hashed sparse tables (issue 5, DESIGN.md §4).
//
// An n-gram of order n >= 2 is stored as an entry (prefix, word, count): `prefix` is the index
// of its first n-1 words' entry in the order n-1 table, `word` its last word's id. The pair
// packs into one exact 64-bit key, so one probe per order and position finds an n-gram and no
// two n-grams ever share a count. Unigrams are indexed by word id directly. Entries are
// appended and never move (their indices are the prefixes of the next order); each order's
// open-addressing table (linear probing, power-of-two size, at most half full) maps keys to
// entry indices and doubles when it fills. Counts are 64-bit.
//
// The n-grams of orders >= 2 are split into kPartitions partitions by their first word: an
// n-gram and all its prefixes share the first word, so each partition is closed under
// prefixes and counts on its own. Threads own whole partitions (round-robin) and each walks
// the sentences once, counting the n-grams that start at its words: no locks, no merge, and
// every partition sees its n-grams in corpus order whatever the thread count, so the store
// (entry order included) is the same for any number of threads.
//
// Sentences are counted as lmplz pads them: <s> w_1 ... w_k </s>, every n-gram of orders 1..N
// inside that sequence (so <s> is counted once per sentence as a unigram, and no n-gram
// reaches before <s>). Ids: 0 <unk>, 1 <s>, 2 </s>; a sentence must not contain 1 or 2.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/access.hpp"
#include "common/parallel.hpp"
#include "ngram/table.hpp"

namespace rnnkit::ngram {

constexpr std::uint32_t kUnk = 0;
constexpr std::uint32_t kBos = 1;
constexpr std::uint32_t kEos = 2;

// Largest order a store accepts: beyond it, nothing new is learned from natural text and the
// tables only waste memory (KenLM's default build stops at 6; this is no compile-time cap).
constexpr int kMaxOrder = 64;

// The most n-gram tokens of one order a store holds (so every count and total reads as int64,
// as NumPy and Python view them): counting or merging past it throws std::overflow_error
// before anything changes.
constexpr std::uint64_t kMaxTotal = (std::uint64_t{1} << 63) - 1;

// Partitions of the n-grams by first word (a function of the word id alone).
constexpr int kPartitions = 16;

// Where an entry of order >= 2 lives: partition and index (unigrams: partition -1, the id).
struct EntryRef {
    std::int32_t partition;
    std::uint32_t index;
};

class NgramCounts {
public:
    // links[n - 2][p][e]: the suffix (the n-gram without its first word) of entry e of order n
    // in partition p, for n = 2..N.
    using SuffixLinks = std::vector<std::vector<std::vector<EntryRef>>>;
    // Per-entry values of orders 2..N: values[n - 2][p][e].
    using EntryValues = std::vector<std::vector<std::vector<std::uint64_t>>>;

    explicit NgramCounts(int order);

    // Who is using the store: the bindings claim it for each call (its tables rehash as they
    // grow, so no thread may read them while another counts).
    mutable AccessState access;

    int order() const { return order_; }

    // Counts the sentences ids[offsets[s] : offsets[s + 1]], s < num_sentences (offsets has
    // num_sentences + 1 non-decreasing values, offsets[0] >= 0), on up to `threads` threads.
    // Throws std::invalid_argument (before counting anything) for a negative id, <s> or </s>
    // inside a sentence, or bad offsets.
    // Without `pad`, the sentences are counted as given (no <s> or </s> added, and ids 1 and 2
    // allowed anywhere): nltk.lm's counts of everygrams of sentences it padded itself.
    void add_sentences(const std::int32_t* ids, const std::int64_t* offsets,
                       std::int64_t num_sentences, int threads = 1, bool pad = true);
    // add_sentences's checks (std::invalid_argument); the largest id (at least </s>).
    static std::uint32_t check_sentences(const std::int32_t* ids, const std::int64_t* offsets,
                                         std::int64_t num_sentences, bool pad);
    // Adds counts[r] to the n-gram words[r * n : r * n + n] for r < rows (ids >= 0), creating
    // every n-gram inside it (each of its substrings) that is not stored yet, with count 0:
    // the store stays closed under prefixes and suffixes, so that suffix links and context
    // statistics exist for n-grams given one by one (nltk.lm's NgramCounter.update). Throws
    // std::invalid_argument, before adding anything, for a negative id or n outside [1, N].
    void add_ngrams(const std::int32_t* words, int n, const std::uint64_t* counts,
                    std::int64_t rows);
    // Number of distinct n-grams of order n (1-based); unigrams: ids with a nonzero count.
    std::int64_t size(int n) const;
    // Count of the n-gram words[0..n) (0 when absent); n in [1, order].
    std::uint64_t count(const std::int32_t* words, int n) const;
    // The words w with count(context[0:m] + w) > 0 and those counts, in entry order (m = 0:
    // the unigrams); a scan of the n-grams of order m + 1 that start with context[0].
    void followers(const std::int32_t* context, int m, std::vector<std::int32_t>& words,
                   std::vector<std::uint64_t>& counts) const;
    // The n-grams of order n in entry order: their word ids (row-major [size(n), n]) and counts.
    void ngrams(int n, std::int32_t* words, std::uint64_t* counts) const;
    // Sum of the counts of order n (the number of n-gram tokens), at most kMaxTotal.
    std::uint64_t total(int n) const;
    // hist[k - 1] = number of n-grams of order n seen exactly k times, k = 1..max_count.
    std::vector<std::uint64_t> count_of_counts(int n, int max_count) const;

    // Continuation counts N1+(. g): for every n-gram g of order n < N, in ngrams(n)'s order,
    // the number of distinct words seen right before it.
    std::vector<std::uint64_t> continuation_counts(int n) const;
    // Every entry's suffix link, on `threads` threads.
    SuffixLinks suffix_links(int threads) const;
    // The number of distinct left extensions of every unigram (by id, `unigrams`) and of every
    // entry of orders 2..N-1 (`entries`, empty vectors at order N), from the suffix links.
    void left_extensions(const SuffixLinks& links, int threads,
                         std::vector<std::uint64_t>& unigrams, EntryValues& entries) const;
    // fn(p) for every partition p, partitions owned round-robin by `threads` threads.
    template <typename Fn>
    void each_partition(int threads, Fn&& fn) const;

    // Adds every count of `other` (same order) to this store. With `translate`, other's word
    // id w is this store's translate[w] (stores counted with different vocabularies); several
    // words may map to one (e.g. <unk>), whose counts then add up.
    void merge(const NgramCounts& other, const std::vector<std::uint32_t>* translate = nullptr);
    // One past the largest word id with a count (the size a translation table needs).
    std::int64_t word_bound() const { return static_cast<std::int64_t>(unigram_.size()); }
    // Keeps the n-grams of order n whose count is at least min_counts[n - 1], and every
    // n-gram that is the prefix of a kept one (so the tables stay closed under prefixes);
    // the unigrams <s> and </s> always stay.
    void prune(const std::vector<std::uint64_t>& min_counts);

    // Portable serialization: versioned header, little-endian, checksum.
    std::string to_bytes() const;
    static NgramCounts from_bytes(std::string_view data);

    // Bytes of memory held (entries and tables).
    std::size_t memory_bytes() const;

    // Which partition the n-grams starting with `word` belong to.
    static int partition_of(std::uint32_t word);

private:
    friend class NgramModel;
    friend class NltkScorer;
    struct Order {
        std::vector<std::uint32_t> prefix;  // entry index in order n-1 (order 2: a word id)
        std::vector<std::uint32_t> word;
        std::vector<std::uint64_t> count;
        std::vector<std::uint32_t> slots;  // entry index + 1, 0 = empty

        std::size_t size() const { return word.size(); }
        std::uint32_t prefix_at(std::size_t e) const { return prefix[e]; }
        std::uint32_t word_at(std::size_t e) const { return word[e]; }
        void append(std::uint32_t p, std::uint32_t w) {
            prefix.push_back(p);
            word.push_back(w);
            count.push_back(0);
        }
        // No entries; the columns keep their capacity and the slots their number.
        void clear() {
            prefix.clear();
            word.clear();
            count.clear();
            std::fill(slots.begin(), slots.end(), 0u);
        }
    };
    // The n-grams of orders 2..N whose first word falls in one partition: orders[n - 2].
    struct Partition {
        std::vector<Order> orders;
        Order& at(int n) { return orders[static_cast<std::size_t>(n - 2)]; }
        const Order& at(int n) const { return orders[static_cast<std::size_t>(n - 2)]; }
    };

    static std::uint32_t find_or_add(Order& o, std::uint32_t prefix, std::uint32_t word);
    static std::int64_t find(const Order& o, std::uint32_t prefix, std::uint32_t word);
    // Counts the n-grams of orders 2..top starting at `count` positions (Start: `part`, its
    // Partition; `top`, its longest n-gram; `entry`, its first word, then the entry of its
    // n-gram of the order being added; word(n), the n-th word of its n-grams, 1-based), order
    // by order, calling added(start, n) after each. The home slots of a batch's keys are
    // prefetched before any is looked up, so that the lookups' cache misses overlap (one
    // position's orders form a chain); each table still gets its n-grams in position order.
    template <typename Start, typename Added>
    static void count_starts(Start* starts, int count, int max_order, Added&& added);
    // Positions counted together by count_starts.
    static constexpr int kBatchStarts = 32;
    static void rebuild_table(Order& o);
    void ensure_unigram(std::uint32_t word);
    // Sizes the empty tables of the `owned` partitions for a first count of `tokens` tokens.
    void presize_owned(std::int64_t tokens, const std::vector<char>& owned);
    // Counts the n-grams starting at the words of partitions part with part % nthreads == tid.
    void count_owned(const std::int32_t* ids, const std::int64_t* offsets,
                     std::int64_t num_sentences, int tid, int nthreads, bool pad);
    // Entries of order n in the partitions' order (for size, iteration, serialization).
    std::vector<std::size_t> entries(int n) const;
    // Throws std::overflow_error when adding added[n - 1] tokens to each order n would take
    // its total past kMaxTotal (`what`: the operation, for the message).
    void check_room(const std::vector<std::uint64_t>& added, const char* what) const;
    // The sums of the counts of each order, from the tables (false when one passes kMaxTotal).
    bool sum_totals(std::vector<std::uint64_t>& sums) const;

    int order_;
    // totals_[n - 1] = the sum of the counts of order n, kept by every operation that changes
    // counts (code that writes the tables directly, as stream_build's scratch stores, does
    // not keep it and must not ask for totals).
    std::vector<std::uint64_t> totals_;
    std::vector<std::uint64_t> unigram_;  // count by word id
    std::vector<Partition> parts_;        // kPartitions (none when order_ == 1)
};

template <typename Start, typename Added>
void NgramCounts::count_starts(Start* starts, int count, int max_order, Added&& added) {
    for (int n = 2; n <= max_order; ++n) {
        for (int i = 0; i < count; ++i) {
            const Start& b = starts[i];
            if (b.top < n) continue;
            const Order& o = b.part->at(n);
            const std::uint64_t key = table::pack(b.entry, b.word(n));
            __builtin_prefetch(o.slots.data() + (table::mix(key) & (o.slots.size() - 1)));
        }
        for (int i = 0; i < count; ++i) {
            Start& b = starts[i];
            if (b.top < n) continue;
            Order& o = b.part->at(n);
            b.entry = find_or_add(o, b.entry, b.word(n));
            ++o.count[b.entry];
            added(b, n);
        }
    }
}

template <typename Fn>
void NgramCounts::each_partition(int threads, Fn&& fn) const {
    parallel_region(threads, [&](int tid, int team) {
        for_each_owned(static_cast<std::int64_t>(parts_.size()), tid, team,
                       [&](std::int64_t p) { fn(static_cast<std::size_t>(p)); });
    });
}

}  // namespace rnnkit::ngram
