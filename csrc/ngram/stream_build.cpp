// Modified Kneser-Ney from sentences straight to a binary model file, in bounded memory
// (issue 5: lmplz's 1.24 GiB for the 20 M-token corpus at order 5, where the count store and
// the model held at once take 4.4 GiB).
//
// NgramModel::interpolated() holds the whole count store, its suffix links and the whole
// model. Here:
//   A. The counts, one partition at a time (each of the kPartitions partitions holds the
//      n-grams that start with its words, NgramCounts' own split), from one walk over the ids
//      per partition. The same walk records, for every n-gram g of order n < N that starts in
//      the partition, the distinct words seen right before it (as (g, word) keys in a hash
//      set): g's left extensions, which interpolated() finds through suffix links across
//      partitions. Each partition's adjusted counts go to a file, with its share of the
//      count-of-counts.
//   B. The discounts, and the unigrams (all in memory: one value per word).
//   C. The model, one order n = 2..N at a time, partition by partition: the probabilities of
//      order n need those of order n-1 (the suffix of each n-gram, in any partition), so order
//      n-1 of every partition is held (entries with their hash tables, linear probabilities,
//      suffix links) while order n is computed from the files and written to others; order
//      n-1, whose backoffs come from order n's context statistics, is then final.
// The binary file is then assembled from the final tables in save_binary's order. Every
// number is computed by the same float32 expressions, in the same order, as interpolated()
// (smoothing.hpp), and the tables get the same entries in the same order (each partition's
// n-grams in corpus order), so the file is byte for byte the one save_binary writes for
// interpolated()'s model: the tests compare them.
//
// Peak memory: the ids; during A, per thread (kMaxBuildThreads at most), one partition's
// counts and its (n-gram, word before) key sets, each about 1/16 of the whole store; during
// C the largest order held (about 34 bytes per n-gram) plus, per thread, a partition's share
// of the next order with its context statistics; while the ARPA text is formatted, per
// thread, a partition's n-grams of every order and one order's text. Temporary files: the
// adjusted counts (16 bytes per n-gram, each order's removed once read), the finished tables
// (about 22 bytes per n-gram) and one order in between (28 bytes per n-gram), and with an ARPA
// file its text. Files are removed as they are used up; after an error the caller removes
// what is left in `temp_dir` (rnnkit.ngram.build uses a temporary directory).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/parallel.hpp"
#include "ngram/arpa.hpp"
#include "ngram/counts.hpp"
#include "ngram/model.hpp"
#include "ngram/smoothing.hpp"
#include "ngram/table.hpp"

namespace rnnkit::ngram {

namespace {

constexpr std::uint32_t kNoWord = ~std::uint32_t{0};
// Prefetch distance (entries) of the suffix lookups.
constexpr std::size_t kAhead = 8;
// Threads at most: each holds one partition's working set (1/16 of the counts, or of an
// order), so this bounds the memory beyond the held order.
constexpr int kMaxBuildThreads = 4;

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};

// A temporary file of arrays written and read back whole, in the order written. Writers end
// with close(), which reports a failed flush (a full disk): a short file never passes for a
// whole one, and every array carries its length.
class Spill {
public:
    Spill(std::string path, const char* mode)
        : path_(std::move(path)), file_(std::fopen(path_.c_str(), mode)) {
        if (!file_) throw std::runtime_error("cannot open the temporary file " + path_);
    }
    template <typename T>
    void put(const std::vector<T>& v) {
        put_raw(v.data(), sizeof(T), v.size());
    }
    void put_bytes(const std::string& text) { put_raw(text.data(), 1, text.size()); }
    template <typename T>
    void get(std::vector<T>& v) {
        v.resize(static_cast<std::size_t>(get_length()));
        if (!v.empty() && std::fread(v.data(), sizeof(T), v.size(), file_.get()) != v.size())
            fail();
    }
    void get_bytes(std::string& text) {
        text.resize(static_cast<std::size_t>(get_length()));
        if (!text.empty() && std::fread(text.data(), 1, text.size(), file_.get()) != text.size())
            fail();
    }
    void close() {
        if (std::fclose(file_.release()) != 0) {
            throw std::runtime_error("cannot write the temporary file " + path_ + " (disk full?)");
        }
    }

private:
    void put_raw(const void* data, std::size_t size, std::size_t count) {
        const std::uint64_t n = count;
        if (std::fwrite(&n, sizeof n, 1, file_.get()) != 1 ||
            (count > 0 && std::fwrite(data, size, count, file_.get()) != count)) {
            throw std::runtime_error("cannot write the temporary file " + path_ + " (disk full?)");
        }
    }
    std::uint64_t get_length() {
        std::uint64_t n = 0;
        if (std::fread(&n, sizeof n, 1, file_.get()) != 1) fail();
        return n;
    }
    [[noreturn]] void fail() const {
        throw std::runtime_error("cannot read the temporary file " + path_);
    }
    std::string path_;
    std::unique_ptr<std::FILE, FileCloser> file_;
};

// A set of 64-bit keys (open addressing, at most half full). Inserts are buffered and made
// in batches whose home slots are prefetched first: the tables outgrow the caches and each
// insert would otherwise wait for its own miss.
class KeySet {
public:
    void insert(std::uint64_t key) {
        pending_[pending_count_++] = key + 1;  // 0 marks an empty slot; keys are < 2^64 - 1
        if (pending_count_ == kBatch) flush();
    }
    // Room for `count` keys without growing.
    void reserve(std::size_t count) {
        if (size_ != 0 || pending_count_ != 0) return;
        std::size_t size = 1024;
        while (size < 2 * (count + kBatch)) size *= 2;
        if (size > slots_.size()) slots_.assign(size, 0);
    }
    std::size_t size() {
        flush();
        return size_;
    }
    template <typename Fn>
    void each(Fn&& fn) {
        flush();
        for (std::uint64_t k : slots_) {
            if (k != 0) fn(k - 1);
        }
    }

private:
    static constexpr std::size_t kBatch = 16;
    static std::size_t home(std::uint64_t stored, std::size_t mask) {
        return static_cast<std::size_t>(table::mix(stored)) & mask;
    }
    static bool place(std::vector<std::uint64_t>& slots, std::uint64_t stored) {
        const std::size_t mask = slots.size() - 1;
        std::size_t i = home(stored, mask);
        while (slots[i] != 0) {
            if (slots[i] == stored) return false;
            i = (i + 1) & mask;
        }
        slots[i] = stored;
        return true;
    }
    void flush() {
        if (2 * (size_ + pending_count_) > slots_.size()) grow();
        const std::size_t mask = slots_.size() - 1;
        for (std::size_t k = 0; k < pending_count_; ++k) {
            __builtin_prefetch(slots_.data() + home(pending_[k], mask));
        }
        for (std::size_t k = 0; k < pending_count_; ++k) size_ += place(slots_, pending_[k]);
        pending_count_ = 0;
    }
    void grow() {
        std::size_t size = std::max<std::size_t>(1024, slots_.size());
        while (2 * (size_ + kBatch) > size) size *= 2;
        std::vector<std::uint64_t> bigger(size, 0);
        for (std::uint64_t k : slots_) {
            if (k != 0) place(bigger, k);
        }
        slots_.swap(bigger);
    }
    std::vector<std::uint64_t> slots_;
    std::size_t size_ = 0;
    std::uint64_t pending_[kBatch] = {};
    std::size_t pending_count_ = 0;
};

std::uint64_t key_of(std::uint32_t entry, std::uint32_t before) {
    return (static_cast<std::uint64_t>(entry) << 32) | before;
}

// The sentence s padded as the count store pads it: <s> at 0, the words, </s> at len + 1.
struct Padded {
    const std::int32_t* words;
    std::int64_t len;
    std::int64_t size() const { return len + 2; }
    std::uint32_t operator[](std::int64_t pos) const {
        return pos == 0 ? kBos : pos <= len ? static_cast<std::uint32_t>(words[pos - 1]) : kEos;
    }
};

// The largest padded N-gram in suffix order among those interpolated() considers for lmplz's
// count-of-counts substitution (model.cpp, step 2): the N-grams, and the shorter n-grams that
// begin with <s> (padded with <s> to N words), that end in the largest word id ending any
// n-gram of order >= 2; found here by one walk over the sentences.
std::vector<std::uint32_t> largest_in_suffix_order(const std::int32_t* ids,
                                                   const std::int64_t* offsets,
                                                   std::int64_t sentences, int N) {
    std::uint32_t top_last = 0;
    for (std::int64_t s = 0; s < sentences; ++s) {
        const Padded seq{ids + offsets[s], offsets[s + 1] - offsets[s]};
        for (std::int64_t t = 1; t < seq.size(); ++t) top_last = std::max(top_last, seq[t]);
    }
    std::vector<std::uint32_t> best, words(static_cast<std::size_t>(N));
    for (std::int64_t s = 0; s < sentences; ++s) {
        const Padded seq{ids + offsets[s], offsets[s + 1] - offsets[s]};
        for (std::int64_t t = 1; t < seq.size(); ++t) {
            if (seq[t] != top_last) continue;
            // The N words ending at t, with <s> before the sentence's start.
            for (int k = 0; k < N; ++k) {
                const std::int64_t pos = t - (N - 1) + k;
                words[static_cast<std::size_t>(k)] = pos < 0 ? kBos : seq[pos];
            }
            const bool later = std::lexicographical_compare(best.rbegin(), best.rend(),
                                                            words.rbegin(), words.rend());
            if (best.empty() || later) best = words;
        }
    }
    return best;
}

std::string spill_path(const std::string& dir, const char* kind, std::size_t p, int n) {
    return dir + "/" + kind + "-" + std::to_string(p) + "-" + std::to_string(n);
}

}  // namespace

void NgramModel::build_streamed(const std::int32_t* ids, const std::int64_t* offsets,
                                std::int64_t num_sentences, int order, const Vocabulary& vocab,
                                const std::string& binary_path, const std::string& arpa_path,
                                const std::string& temp_dir, int threads,
                                std::vector<float>* discounts, std::vector<int>* fallback,
                                std::vector<std::int64_t>* sizes,
                                std::vector<double>* phase_seconds) {
    using Clock = std::chrono::steady_clock;
    auto mark = Clock::now();
    phase_seconds->clear();
    const auto lap = [&] {
        const auto now = Clock::now();
        phase_seconds->push_back(std::chrono::duration<double>(now - mark).count());
        mark = now;
    };
    const int N = order;
    if (N < 2 || N > kMaxOrder) {
        throw std::invalid_argument("order must be in [2, " + std::to_string(kMaxOrder) +
                                    "], got " + std::to_string(N));
    }
    const std::uint32_t top_word =
        NgramCounts::check_sentences(ids, offsets, num_sentences, /*pad=*/true);
    if (num_sentences == 0) throw std::invalid_argument("no sentences to build a model of");
    const std::int64_t vocab_size = vocab.size();
    if (top_word >= static_cast<std::uint64_t>(vocab_size)) {
        throw std::invalid_argument("the sentences hold ids up to " + std::to_string(top_word) +
                                    " but the vocabulary has " + std::to_string(vocab_size));
    }
    if (binary_path.empty() && arpa_path.empty())
        throw std::invalid_argument("no file to write (binary_path and arpa_path are empty)");
    if (temp_dir.empty()) throw std::invalid_argument("temp_dir is empty");
    threads = std::max(1, std::min(threads, kMaxBuildThreads));
    const auto V_ids = static_cast<std::size_t>(vocab_size);
    const std::size_t P = kPartitions;
    const std::vector<std::uint32_t> best = largest_in_suffix_order(ids, offsets, num_sentences, N);
    std::vector<std::uint8_t> partition(V_ids);  // of each id, once (not a call per token)
    for (std::size_t w = 0; w < V_ids; ++w) {
        partition[w] =
            static_cast<std::uint8_t>(NgramCounts::partition_of(static_cast<std::uint32_t>(w)));
    }

    // ---- A. Counts and adjusted counts, partition by partition.
    std::vector<std::uint64_t> raw1(V_ids, 0), a1(V_ids, 0);
    std::vector<std::vector<CountOfCounts>> part_stats(P, std::vector<CountOfCounts>(N));
    // part_sizes[p][n]: the n-grams of order n in partition p.
    std::vector<std::vector<std::int64_t>> part_sizes(P, std::vector<std::int64_t>(N + 1, 0));
    parallel_region(threads, [&](int tid, int team) {
        // A scratch store written directly (its totals are not kept, nor asked for), one per
        // thread: each partition's tables take over the previous one's memory (emptied, their
        // capacity kept), and the sets of left words start at the previous partition's sizes,
        // so that a partition neither grows its tables step by step nor faults in fresh pages.
        NgramCounts store(N);
        store.ensure_unigram(top_word);
        std::size_t previous_p = P;
        std::vector<std::size_t> previous_left(static_cast<std::size_t>(N - 1), 0);
        for_each_owned(static_cast<std::int64_t>(P), tid, team, [&](std::int64_t pi) {
            const auto p = static_cast<std::size_t>(pi);
            NgramCounts::Partition& part = store.parts_[p];
            if (previous_p != P) {
                std::swap(part, store.parts_[previous_p]);
                for (NgramCounts::Order& o : part.orders) o.clear();
            }
            previous_p = p;
            // The (n-gram, word before it) pairs seen, orders 1..N-1.
            std::vector<KeySet> left_words(static_cast<std::size_t>(N - 1));
            for (std::size_t n = 0; n < left_words.size(); ++n) {
                left_words[n].reserve(previous_left[n]);
            }
            struct Start {
                NgramCounts::Partition* part;
                Padded seq;
                std::int64_t at;
                std::int64_t top;
                std::uint32_t entry;
                std::uint32_t prev;
                std::uint32_t word(int n) const { return seq[at + n - 1]; }
            };
            Start batch[NgramCounts::kBatchStarts];
            int pending = 0;
            const auto flush = [&] {
                NgramCounts::count_starts(batch, pending, N, [&](const Start& b, int n) {
                    if (b.prev != kNoWord && n < N) {
                        left_words[static_cast<std::size_t>(n - 1)].insert(key_of(b.entry, b.prev));
                    }
                });
                pending = 0;
            };
            for (std::int64_t s = 0; s < num_sentences; ++s) {
                const Padded seq{ids + offsets[s], offsets[s + 1] - offsets[s]};
                for (std::int64_t start = 0; start < seq.size(); ++start) {
                    const std::uint32_t first = seq[start];
                    if (partition[first] != p) continue;
                    ++store.unigram_[first];
                    const std::uint32_t prev = start > 0 ? seq[start - 1] : kNoWord;
                    if (prev != kNoWord) left_words[0].insert(key_of(first, prev));
                    const std::int64_t top = std::min<std::int64_t>(N, seq.size() - start);
                    if (top < 2) continue;
                    batch[pending++] = {&part, seq, start, top, first, prev};
                    if (pending == NgramCounts::kBatchStarts) flush();
                }
            }
            flush();
            // Left extensions; unigrams by id (this partition's words only).
            left_words[0].each([&](std::uint64_t k) { ++a1[k >> 32]; });
            std::vector<std::vector<std::uint64_t>> a(static_cast<std::size_t>(N + 1));
            for (int n = 2; n < N; ++n) {
                auto& an = a[static_cast<std::size_t>(n)];
                an.assign(part.at(n).size(), 0);
                left_words[static_cast<std::size_t>(n - 1)].each(
                    [&](std::uint64_t k) { ++an[k >> 32]; });
            }
            for (std::size_t n = 0; n < left_words.size(); ++n) {
                previous_left[n] = left_words[n].size();
            }
            left_words.clear();
            left_words.shrink_to_fit();
            // Raw counts at the top order and for n-grams that begin with <s>.
            const bool has_bos = static_cast<std::size_t>(NgramCounts::partition_of(kBos)) == p;
            std::vector<std::uint32_t> first_word, next_first;
            for (int n = 2; n <= N; ++n) {
                NgramCounts::Order& o = part.at(n);
                auto& an = a[static_cast<std::size_t>(n)];
                if (n == N) {  // raw counts throughout (the tail substitution reads k < N)
                    an = std::move(o.count);
                    break;
                }
                if (has_bos) {
                    next_first.resize(o.size());
                    for (std::size_t e = 0; e < o.size(); ++e) {
                        next_first[e] = n == 2 ? o.prefix[e] : first_word[o.prefix[e]];
                        if (next_first[e] == kBos) an[e] = o.count[e];
                    }
                    first_word.swap(next_first);
                }
            }
            for (std::size_t w = 0; w < store.unigram_.size(); ++w) {
                if (partition[w] == p) raw1[w] = store.unigram_[w];
            }
            auto& stats = part_stats[p];
            for (int n = 2; n <= N; ++n) {
                for (std::uint64_t v : a[static_cast<std::size_t>(n)]) {
                    tally(stats[static_cast<std::size_t>(n - 1)], v, 1);
                }
            }
            // lmplz's substitution (model.cpp, step 2) for the suffixes that start here.
            for (int k = 2; k < N && !best.empty(); ++k) {
                const std::vector<std::uint32_t> tail(best.end() - k, best.end());
                if (std::find(tail.begin() + 1, tail.end(), kBos) != tail.end()) continue;
                if (partition[tail[0]] != p) continue;
                std::uint32_t e = tail[0];
                bool found = true;
                for (int j = 2; j <= k && found; ++j) {
                    const std::int64_t f =
                        table::find(part.at(j), e, tail[static_cast<std::size_t>(j - 1)]);
                    found = f >= 0;
                    if (found) e = static_cast<std::uint32_t>(f);
                }
                if (!found) continue;
                tally(stats[static_cast<std::size_t>(k - 1)], a[static_cast<std::size_t>(k)][e],
                      -1);
                tally(stats[static_cast<std::size_t>(k - 1)], part.at(k).count[e], 1);
            }
            for (int n = 2; n <= N; ++n) {  // one file per order, removed once read
                const NgramCounts::Order& o = part.at(n);
                part_sizes[p][static_cast<std::size_t>(n)] = static_cast<std::int64_t>(o.size());
                Spill out(spill_path(temp_dir, "adjusted", p, n), "wb");
                out.put(o.prefix);
                out.put(o.word);
                out.put(a[static_cast<std::size_t>(n)]);
                out.close();
            }
        });
    });
    a1[kBos] = 0;  // nothing precedes <s>
    lap();         // counting

    // ---- B. Discounts and unigrams (interpolated()'s steps 2 and 4 at order 1).
    std::vector<CountOfCounts> stats(static_cast<std::size_t>(N), {0, 0, 0, 0, 0});
    for (std::size_t w = 0; w < V_ids; ++w) {
        if (raw1[w] > 0 || w == kUnk) tally(stats[0], a1[w], 1);
    }
    for (const auto& part : part_stats) {
        for (int n = 2; n <= N; ++n) {
            for (std::size_t j = 0; j < 5; ++j) {
                stats[static_cast<std::size_t>(n - 1)][j] +=
                    part[static_cast<std::size_t>(n - 1)][j];
            }
        }
    }
    if (!best.empty() && best[static_cast<std::size_t>(N - 1)] != kBos) {
        const std::uint32_t w = best[static_cast<std::size_t>(N - 1)];
        tally(stats[0], a1[w], -1);
        tally(stats[0], raw1[w], 1);
    }
    const Smoother smooth(Smoothing::ModifiedKneserNey, stats, discounts, fallback);
    NgramModel model(N, vocab_size);
    std::vector<std::size_t> present;
    const std::vector<float> p1 = model.set_unigrams(smooth, raw1, a1, present);
    raw1 = {};
    a1 = {};

    // The final tables: written where they go in the binary file as each is finished (no
    // temporary copy, no second pass), or, without a binary file, to temporary files for the
    // ARPA text.
    std::unique_ptr<NgramModel::BinaryParts> binary;
    if (!binary_path.empty()) {
        binary = std::make_unique<NgramModel::BinaryParts>(binary_path, vocab, N, part_sizes);
    }
    const auto put_final = [&](std::size_t p, int n, const Order& o) {
        if (binary) {
            binary->put(p, n, o);
            return;
        }
        Spill last(spill_path(temp_dir, "final", p, n), "wb");
        last.put(o.entries);
        last.close();
    };

    // ---- C. Orders 2..N: order n-1 held (all partitions), order n computed per partition.
    std::vector<Order> held(P);
    std::vector<std::vector<float>> held_prob(P);
    std::vector<std::vector<EntryRef>> held_link(P);
    std::vector<Context> ctx1(V_ids);  // order 1's contexts, by word id (level 2 only)
    for (int n = 2; n <= N; ++n) {
        parallel_region(threads, [&](int tid, int team) {
            for_each_owned(static_cast<std::int64_t>(P), tid, team, [&](std::int64_t pi) {
                const auto p = static_cast<std::size_t>(pi);
                std::vector<std::uint32_t> prefix, word;
                std::vector<std::uint64_t> an;
                {
                    const std::string name = spill_path(temp_dir, "adjusted", p, n);
                    Spill in(name, "rb");
                    in.get(prefix);
                    in.get(word);
                    in.get(an);
                    std::remove(name.c_str());
                }
                // Context statistics of order n-1 (a context is in its extensions'
                // partition), then its backoffs.
                std::vector<Context> ctx(n == 2 ? 0 : held[p].size());
                for (std::size_t e = 0; e < word.size(); ++e) {
                    (n == 2 ? ctx1[prefix[e]] : ctx[prefix[e]]).add(an[e]);
                }
                if (n == 2) {
                    for (std::size_t w : present) {
                        if (partition[w] != p) continue;
                        const Context& c = ctx1[w];
                        model.unigram_backoff_[w] =
                            c.den == 0 ? 0.0f : std::log10(smooth.weight(2, c));
                    }
                } else {
                    // Only this partition's entries are written, and only their backoffs:
                    // other threads' find() reads the keys (prefix, word) of any partition.
                    for (std::size_t e = 0; e < held[p].size(); ++e) {
                        const Context& c = ctx[e];
                        held[p].entries[e].log_backoff =
                            c.den == 0 ? 0.0f : std::log10(smooth.weight(n, c));
                    }
                }
                // Probabilities of order n, through each n-gram's suffix at order n-1.
                Order out;
                out.entries.resize(word.size());
                std::vector<float> probs(n < N ? word.size() : 0);
                std::vector<EntryRef> links(n < N ? word.size() : 0);
                // The suffix lookups miss the cache (held tables of up to ~600 MB): each
                // entry's link, home slot, entry and probability are prefetched in stages
                // kAhead apart.
                // Entry e's suffix is (the suffix of its prefix, its word): that prefix suffix's
                // index in the table of order n-1 of `partition`.
                struct Lookup {
                    std::size_t partition;
                    std::uint32_t prefix;
                };
                const auto suffix_lookup = [&](std::size_t e) {
                    const EntryRef link = held_link[p][prefix[e]];
                    const auto q = link.partition < 0 ? partition[link.index]
                                                      : static_cast<std::size_t>(link.partition);
                    return Lookup{q, link.index};
                };
                const std::size_t M = word.size();
                for (std::size_t e = 0; e < M; ++e) {
                    if (n > 2) {
                        if (e + 3 * kAhead < M) {
                            __builtin_prefetch(held_link[p].data() + prefix[e + 3 * kAhead]);
                        }
                        if (e + 2 * kAhead < M) {
                            const Lookup l = suffix_lookup(e + 2 * kAhead);
                            prefetch_slot(held[l.partition], l.prefix, word[e + 2 * kAhead]);
                        }
                        if (e + kAhead < M) {
                            const Lookup l = suffix_lookup(e + kAhead);
                            const std::int64_t f =
                                prefetch_entry(held[l.partition], l.prefix, word[e + kAhead]);
                            if (f >= 0) __builtin_prefetch(held_prob[l.partition].data() + f);
                        }
                    }
                    const Context& c = n == 2 ? ctx1[prefix[e]] : ctx[prefix[e]];
                    const float u = smooth.own_mass(n, an[e], c);
                    const float g = smooth.lower_weight(n, c);
                    EntryRef suffix{-1, word[e]};
                    if (n > 2) {
                        const Lookup l = suffix_lookup(e);
                        const std::int64_t f = find(held[l.partition], l.prefix, word[e]);
                        if (f < 0) throw std::logic_error("an n-gram's suffix is not counted");
                        suffix = {static_cast<std::int32_t>(l.partition),
                                  static_cast<std::uint32_t>(f)};
                    }
                    const float lower =
                        suffix.partition < 0
                            ? p1[suffix.index]
                            : held_prob[static_cast<std::size_t>(suffix.partition)][suffix.index];
                    const float prob = Smoother::interpolate(u, g, lower);
                    if (n < N) probs[e] = prob;
                    out.entries[e] = {prefix[e], word[e], std::min(0.0f, std::log10(prob)), 0.0f};
                    if (n < N) links[e] = suffix;
                }
                if (n == N) {  // final: the table is the one compact() makes
                    compact_order(out);
                    put_final(p, n, out);
                } else {
                    Spill next(spill_path(temp_dir, "order", p, n), "wb");
                    next.put(out.entries);
                    next.put(probs);
                    next.put(links);
                    next.close();
                }
            });
        });
        parallel_region(threads, [&](int tid, int team) {
            for_each_owned(static_cast<std::int64_t>(P), tid, team, [&](std::int64_t pi) {
                const auto p = static_cast<std::size_t>(pi);
                if (n > 2) put_final(p, n - 1, held[p]);  // its backoffs are set: final
                held[p] = Order();  // order n-1's memory goes before order n's comes
                held_prob[p] = {};
                held_link[p] = {};
                if (n == N) return;
                const std::string name = spill_path(temp_dir, "order", p, n);
                {
                    Spill in(name, "rb");
                    in.get(held[p].entries);
                    in.get(held_prob[p]);
                    in.get(held_link[p]);
                }
                std::remove(name.c_str());
                compact_order(held[p]);  // the table for the suffix lookups of order n + 1
            });
        });
        if (n == 2) ctx1 = {};
    }
    lap();  // estimation
    *sizes = {model.size(1)};
    for (int n = 2; n <= N; ++n) {
        std::int64_t total = 0;
        for (const auto& part : part_sizes) total += part[static_cast<std::size_t>(n)];
        sizes->push_back(total);
    }
    held.clear();
    held_prob.clear();
    held_link.clear();

    // The ARPA file: each partition's lines of every order formatted on all threads into
    // temporary files, then joined order by order (write_arpa's storage order).
    if (!arpa_path.empty()) {
        parallel_region(threads, [&](int tid, int team) {
            for_each_owned(static_cast<std::int64_t>(P), tid, team, [&](std::int64_t pi) {
                const auto p = static_cast<std::size_t>(pi);
                std::vector<std::int32_t> words, longer;
                std::vector<float> probs, backoffs;
                std::string text;
                for (int n = 2; n <= N; ++n) {
                    std::vector<Entry> entries;
                    if (binary) {
                        binary->get_entries(p, n, entries);
                    } else {
                        const std::string name = spill_path(temp_dir, "final", p, n);
                        Spill(name, "rb").get(entries);
                        std::remove(name.c_str());
                    }
                    const auto nn = static_cast<std::size_t>(n);
                    longer.resize(entries.size() * nn);
                    probs.resize(entries.size());
                    backoffs.resize(entries.size());
                    for (std::size_t e = 0; e < entries.size(); ++e) {
                        const Entry& x = entries[e];
                        std::int32_t* row = longer.data() + e * nn;
                        if (n == 2) {
                            row[0] = static_cast<std::int32_t>(x.prefix);
                        } else {
                            std::copy_n(words.data() + x.prefix * (nn - 1), nn - 1, row);
                        }
                        row[nn - 1] = static_cast<std::int32_t>(x.word);
                        probs[e] = x.log_prob;
                        backoffs[e] = x.log_backoff;
                    }
                    words.swap(longer);
                    text.clear();
                    append_arpa_lines(text, vocab, n, N, words.data(), probs.data(),
                                      backoffs.data(), entries.size());
                    Spill piece(spill_path(temp_dir, "arpa", p, n), "wb");
                    piece.put_bytes(text);
                    piece.close();
                }
            });
        });
        write_arpa_pieces(arpa_path, *sizes,
                          [&](int n, const std::function<void(const std::string&)>& put) {
                              if (n == 1) {
                                  const auto rows = static_cast<std::size_t>((*sizes)[0]);
                                  std::vector<std::int32_t> unigrams(rows);
                                  std::vector<float> probs(rows), backoffs(rows);
                                  model.ngrams(1, unigrams.data(), probs.data(), backoffs.data());
                                  std::string text;
                                  append_arpa_lines(text, vocab, 1, N, unigrams.data(),
                                                    probs.data(), backoffs.data(), rows);
                                  put(text);
                                  return;
                              }
                              std::string text;
                              for (std::size_t p = 0; p < P; ++p) {
                                  const std::string name = spill_path(temp_dir, "arpa", p, n);
                                  Spill(name, "rb").get_bytes(text);
                                  std::remove(name.c_str());
                                  put(text);
                              }
                          });
    }

    // The binary file's head (the unigrams are final) and checksum.
    if (binary) binary->finish(model);
    lap();  // the files
}

}  // namespace rnnkit::ngram
