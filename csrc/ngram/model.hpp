// A backoff n-gram language model (the ARPA form): for every stored n-gram its log10
// probability and, below the top order, its log10 backoff; scored like KenLM's probing model.
//
// The n-grams are stored as NgramCounts stores them (counts.hpp): an n-gram of order >= 2 is
// (its first n-1 words' entry, its last word), in one of kPartitions partitions by first word;
// unigrams are indexed by word id. Each entry of order >= 2 also keeps a link to its suffix
// (the n-gram without its first word), which estimation interpolates through.
//
// Scoring w after a context (KenLM's rule): find the longest stored n-gram w_{i-m+1} .. w_i
// (extending the match to the left one word at a time and stopping at the first miss: a stored
// n-gram's suffixes are all stored), then log10 p = prob(that n-gram) + the backoffs of the
// stored contexts w_{i-k} .. w_{i-1} for k = m .. N-1. The state after w is the list of stored
// n-grams ending at w.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ngram/counts.hpp"
#include "ngram/vocab.hpp"

namespace rnnkit::ngram {

class Smoother;      // smoothing.hpp
class LayoutWriter;  // model_io.cpp
class BinaryReader;  // model_io.cpp

// A slot of the model's hash tables holds entry index + 1 (0: empty); in a table of at most
// kTaggedSlots slots, the top 32 - kIndexBits bits hold bits of the key's hash.
namespace model_slots {
constexpr unsigned kIndexBits = 26;
constexpr std::uint32_t kIndexMask = (std::uint32_t{1} << kIndexBits) - 1;
constexpr std::size_t kTaggedSlots = kIndexMask;
// The bits of a slot that hold the index, in a table of `size` slots.
inline std::uint32_t index_mask(std::size_t size) {
    return size <= kTaggedSlots ? kIndexMask : ~std::uint32_t{0};
}
}  // namespace model_slots

class NgramModel {
public:
    // An empty model over ids [0, vocab_size).
    NgramModel(int order, std::int64_t vocab_size);

    int order() const { return order_; }
    std::int64_t vocab_size() const { return static_cast<std::int64_t>(unigram_prob_.size()); }
    std::int64_t size(int n) const;

    // Adds (or overwrites) an n-gram (ARPA reading). Its first n-1 words must already be an
    // n-gram of order n-1 (ARPA files from lmplz are closed under prefixes); unigram ids must
    // be below vocab_size. Throws std::invalid_argument otherwise.
    void set(const std::int32_t* words, int n, float log_prob, float log_backoff);
    // set() of `count` n-grams of order n >= 2 (words [count, n] row-major), in order, until
    // the first that set() would refuse, whose index is returned (count: none). With
    // `duplicate`, an n-gram already stored (an earlier row's included) is refused too, not
    // overwritten, and *duplicate says whether that was the reason. The lookups of the batch
    // are made level by level, each level's home slots prefetched first, so that their cache
    // misses overlap.
    std::int64_t set_batch(const std::int32_t* words, int n, const float* log_probs,
                           const float* log_backoffs, std::int64_t count,
                           bool* duplicate = nullptr);
    // The stored n-gram's values; false when absent.
    bool get(const std::int32_t* words, int n, float* log_prob, float* log_backoff) const;
    // Every n-gram of order n in storage order: ids [size(n), n], log10 probs and backoffs.
    void ngrams(int n, std::int32_t* words, float* log_probs, float* log_backoffs) const;

    // Scores sentences ids[offsets[s] .. offsets[s+1]) (offsets[0] = 0; ids of words, 0 =
    // <unk>), each after <s> when bos and followed by </s> when eos: per sentence the float32
    // sum of log10 p into sentence_scores[s]; when token_scores is given, per scored token
    // (the words, then </s>) its log10 p and the length of the n-gram matched, token t of
    // sentence s at offsets[s] + t (+ s when eos: one </s> per earlier sentence). Runs on
    // `threads`.
    void score(const std::int32_t* ids, const std::int64_t* offsets, std::int64_t sentences,
               bool bos, bool eos, double* sentence_scores, float* token_scores,
               std::int32_t* token_lengths, int threads) const;
    // One short sentence of n words on the calling thread: the number score() gives it,
    // without its set-up (streams, prefetching, a parallel region), which is most of the time
    // of a sentence of a few words.
    float score_short(const std::int32_t* ids, std::int64_t n, bool bos, bool eos) const;

    // KenLM's FullScore: log10 p(w | the context), the context given as the stored n-grams
    // ending at the previous word (context[k]: the one of length k + 1; `have` of them, 0 for
    // none, {-1, <s>} alone after <s>). Writes the stored n-grams ending at w into `next`
    // (order - 1 slots), their number into *next_have, the length matched into *matched. An id
    // without a unigram scores as <unk>.
    float step(const EntryRef* context, int have, std::uint32_t w, EntryRef* next, int* next_have,
               int* matched) const;
    // Whether context[0 .. have) is a context step() and distribution() can take from this
    // model: a unigram first, then stored n-grams of lengths 2, 3, ..., each ending with the
    // unigram's word and each the previous one with a word before it (what step() returns).
    // Anything else (a state of another model, or made up) would read outside the tables.
    bool valid_context(const EntryRef* context, int have) const;
    // w, or <unk> for an id without a unigram (as step() scores it).
    std::uint32_t known_or_unk(std::uint32_t w) const {
        return w < unigram_present_.size() && unigram_present_[w] ? w : kUnk;
    }
    // Prefetches the home slots of the first `orders` lookups step() makes for w after
    // `context` (orders 2 .. orders + 1).
    void prefetch_step(const EntryRef* context, int have, std::uint32_t w, int orders) const;
    // log10 p(w | context) for every id w (-inf for <s> and ids without a unigram), on all
    // threads: the distribution of the next word.
    void distribution(const EntryRef* context, int have, float* log_probs) const;

    std::size_t memory_bytes() const;
    // Every table sized to its entries (about 2/3 full) and the entry arrays to their size:
    // the end of estimation and of ARPA reading.
    void compact();
    // Drops the ids [vocab_size, this->vocab_size()), none of which may have a unigram: ARPA
    // reading sizes the model for the header's unigrams plus the three special words the file
    // may lack, and ends at the vocabulary's true size.
    void shrink_vocabulary(std::int64_t vocab_size);

    // The native binary file (model_io.cpp): the model's arrays as they are in memory (64-byte
    // aligned, little-endian) after a header, the vocabulary's words, and a checksum, so that
    // loading is reading. `save_binary` writes `path` (the caller renames it into place);
    // `load_binary` throws std::invalid_argument for a file that is not such a model, is
    // truncated, corrupted (checksum) or inconsistent, std::runtime_error for I/O errors.
    // The vocabulary may have grown since the model was made: only its first vocab_size()
    // words, the model's, are written (a later word has no unigram and scores as <unk>).
    void save_binary(const std::string& path, const Vocabulary& vocab) const;
    static NgramModel load_binary(const std::string& path, Vocabulary& vocab);
    // The same bytes in memory (to_bytes/from_bytes, pickle): `binary_size` of them, which
    // `write_binary` writes to `out`; `from_binary` reads them as load_binary reads a file,
    // its errors naming `name` where load_binary's name the path.
    std::uint64_t binary_size(const Vocabulary& vocab) const;
    void write_binary(const Vocabulary& vocab, char* out, std::uint64_t size) const;
    static NgramModel from_binary(const char* data, std::uint64_t size, Vocabulary& vocab,
                                  const std::string& name);

    // The interpolated estimators (see model.cpp): modified Kneser-Ney as KenLM's lmplz
    // estimates it; Kneser-Ney and absolute discounting with one discount per order;
    // Witten-Bell.
    enum class Smoothing { ModifiedKneserNey, KneserNey, Absolute, WittenBell };
    // A model over ids [0, vocab_size). `discounts` gets D1, D2, D3+ per order (3 * order
    // values; Witten-Bell: zeros); `fallback` the orders (1-based) whose count-of-counts gave no
    // valid discounts, where lmplz's --discount_fallback values (0.5, 1, 1.5; one discount: 0.5)
    // were used.
    static NgramModel interpolated(const NgramCounts& counts, std::int64_t vocab_size,
                                   Smoothing method, std::vector<float>* discounts,
                                   std::vector<int>* fallback);

    // The estimators that are not interpolated (backoff_estimators.cpp), on raw counts, each
    // context's distribution over the words after it (c(h .) = the sum of c(h w)):
    //   Mle:           p(w | h) = c(hw) / c(h .); an unseen word after a seen context gets 0
    //                  (backoff log10 -99, ARPA's zero), so every context's distribution sums
    //                  to 1.
    //   AddK:          p(w | h) = (c(hw) + k) / (c(h .) + k V) for the seen n-grams (V: the
    //                  words but <s>), unigrams over the whole vocabulary; a context's
    //                  remaining mass (Lidstone's mass for its unseen words) goes to the unseen
    //                  words in proportion to the lower order (Katz's backoff normalisation).
    //   StupidBackoff: S(w | h) = c(hw) / c(h .), backoff log10 alpha on every context (Brants
    //                  et al. 2007; scores, not probabilities).
    enum class Backoff { Mle, AddK, StupidBackoff };

    // Modified Kneser-Ney exactly as interpolated() estimates it from the counts of the
    // sentences ids/offsets (padded as NgramCounts::add_sentences pads them; order >= 2),
    // written straight to files without holding the whole counts or model in memory
    // (stream_build.cpp, which says what is held): the counts one partition at a time, then
    // the model one order at a time, through files in `temp_dir` (an existing directory the
    // caller cleans up after an error; on success the files are gone). `binary_path` (unless
    // empty) gets save_binary's very bytes, `arpa_path` (unless empty) write_arpa's; at least
    // one is given. `sizes` gets the n-grams per order, `phase_seconds` the seconds spent
    // counting, estimating and writing.
    static void build_streamed(const std::int32_t* ids, const std::int64_t* offsets,
                               std::int64_t num_sentences, int order, const Vocabulary& vocab,
                               const std::string& binary_path, const std::string& arpa_path,
                               const std::string& temp_dir, int threads,
                               std::vector<float>* discounts, std::vector<int>* fallback,
                               std::vector<std::int64_t>* sizes,
                               std::vector<double>* phase_seconds);
    static NgramModel backed_off(const NgramCounts& counts, std::int64_t vocab_size, Backoff method,
                                 double param);

private:
    friend class NgramCounts;
    // The n-gram tables of `counts` (keys and hash tables) with zero values: every estimator
    // stores exactly the counted n-grams.
    static NgramModel with_structure(const NgramCounts& counts, std::int64_t vocab_size);
    // One record per n-gram: the key and the values a lookup reads share a cache line.
    struct Entry {
        std::uint32_t prefix;
        std::uint32_t word;
        float log_prob;
        float log_backoff;
    };
    struct Order {
        std::vector<Entry> entries;
        std::vector<std::uint32_t> slots;

        std::size_t size() const { return entries.size(); }
        std::uint32_t prefix_at(std::size_t e) const { return entries[e].prefix; }
        std::uint32_t word_at(std::size_t e) const { return entries[e].word; }
        void append(std::uint32_t p, std::uint32_t w) { entries.push_back({p, w, 0.0f, 0.0f}); }
    };
    struct Partition {
        std::vector<Order> orders;  // orders[n - 2]
        Order& at(int n) { return orders[static_cast<std::size_t>(n - 2)]; }
        const Order& at(int n) const { return orders[static_cast<std::size_t>(n - 2)]; }
    };

    // Tables (model.cpp): not the count store's power-of-two tables at most half full, but
    // any size, about 2/3 full once compact() has run (4 bytes a slot: 6 per n-gram instead
    // of 8 to 16), with 6 bits of each key's hash in its slot so that probing past other keys
    // rarely reads their entries.
    // Entry of (context entry `prefix` of order n-1, word) at order n of `part`, or -1.
    static std::int64_t find(const Order& o, std::uint32_t prefix, std::uint32_t word);
    // The entry of (prefix, word), appended when new (*added says which, when given).
    static std::uint32_t find_or_add(Order& o, std::uint32_t prefix, std::uint32_t word,
                                     bool* added = nullptr);
    // Prefetches the home slot of (prefix, word); then (once it is in cache) the entry it
    // most likely holds, whose index is returned (-1: none; find() decides).
    static void prefetch_slot(const Order& o, std::uint32_t prefix, std::uint32_t word);
    static std::int64_t prefetch_entry(const Order& o, std::uint32_t prefix, std::uint32_t word);
    static void place(Order& o, std::size_t index);
    static void rebuild_table(Order& o, std::size_t size);
    // The interpolated unigrams (model.cpp, step 4 at order 1) from the raw and adjusted
    // counts by id: sets their probabilities and presence, returns the linear probabilities
    // and puts the ids that have a unigram in `present`.
    std::vector<float> set_unigrams(const Smoother& smooth, const std::vector<std::uint64_t>& raw1,
                                    const std::vector<std::uint64_t>& a1,
                                    std::vector<std::size_t>& present);
    // compact() of one order's table.
    static void compact_order(Order& o);
    // The slots compact_order gives a table of `entries` entries.
    static std::size_t compact_slots(std::size_t entries);
    // save_binary's file, the n-gram tables of partition p and order n given by part(p, n) in
    // the file's order (so that they need not all be in memory).
    void save_binary_parts(const std::string& path, const Vocabulary& vocab,
                           const std::function<const Order&(std::size_t, int)>& part) const;
    // The binary layout's head and n-gram tables (with part(p, n) as save_binary_parts), to
    // any of model_io.cpp's writers; and the reading of a whole binary model.
    void write_binary_layout(LayoutWriter& out, const Vocabulary& vocab,
                             const std::function<const Order&(std::size_t, int)>& part) const;
    static NgramModel read_binary(BinaryReader& in, Vocabulary& vocab);
    // save_binary's file written at its places, in any order (build_streamed, which finishes
    // the tables order by order while the file holds them partition by partition): the layout
    // is planned from the tables' sizes, each compacted table is written where it goes as
    // soon as it is final (from any thread), and finish() writes the header, the vocabulary
    // and the unigrams, then the checksum of the whole, read back.
    class BinaryParts {
    public:
        // entries[p][n]: the n-grams of order n (2..order) of partition p.
        BinaryParts(const std::string& path, const Vocabulary& vocab, int order,
                    const std::vector<std::vector<std::int64_t>>& entries);
        ~BinaryParts();
        BinaryParts(const BinaryParts&) = delete;
        BinaryParts& operator=(const BinaryParts&) = delete;
        // Table (p, n) as compact_order made it (its planned sizes are checked).
        void put(std::size_t p, int n, const Order& o) const;
        // The entries of table (p, n), read back from the file.
        void get_entries(std::size_t p, int n, std::vector<Entry>& out) const;
        // Writes the rest of `model`'s file (its unigrams are final) and closes it.
        void finish(const NgramModel& model);

    private:
        struct Place {  // byte offsets of each array's length and data; its length
            std::uint64_t entries_length_at, entries_at, entries;
            std::uint64_t slots_length_at, slots_at, slots;
        };
        void write_at(std::uint64_t offset, const void* data, std::size_t bytes) const;
        void read_at(std::uint64_t offset, void* data, std::size_t bytes) const;
        std::string path_;
        int fd_ = -1;
        std::string words_;
        int order_;
        std::uint64_t vocab_size_;
        std::vector<std::vector<Place>> places_;  // [p][n - 2]
        std::uint64_t end_ = 0;                   // where the checksum goes
        mutable std::atomic<std::size_t> tables_put_{0};
    };

    int order_;
    std::vector<float> unigram_prob_;     // by id; -inf... absent ids get <unk>'s
    std::vector<float> unigram_backoff_;  // by id
    std::vector<char> unigram_present_;
    std::vector<Partition> parts_;
};

}  // namespace rnnkit::ngram
