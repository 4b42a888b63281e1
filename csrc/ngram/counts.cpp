#include "ngram/counts.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace rnnkit::ngram {

namespace {

std::uint64_t pack(std::uint32_t prefix, std::uint32_t word) {
    return (static_cast<std::uint64_t>(prefix) << 32) | word;
}

// A 64-bit finaliser (MurmurHash3's fmix64): every key bit reaches every slot bit, so the
// slot index can be the low bits.
std::uint64_t mix(std::uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

constexpr std::size_t kInitialSlots = 1024;

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
    orders_.resize(static_cast<std::size_t>(order));
    for (int n = 2; n <= order; ++n) orders_[n - 1].slots.assign(kInitialSlots, 0);
}

void NgramCounts::ensure_unigram(std::uint32_t word) {
    auto& counts = orders_[0].count;
    if (word >= counts.size()) {
        // Exactly word + 1 ids (word_bound() is one past the largest id seen); the capacity
        // doubles so that growing stays amortised O(1).
        if (word >= counts.capacity()) {
            counts.reserve(std::max<std::size_t>(word + 1, counts.capacity() * 2));
        }
        counts.resize(static_cast<std::size_t>(word) + 1, 0);
    }
}

std::int64_t NgramCounts::find(int n, std::uint32_t prefix, std::uint32_t word) const {
    const Order& o = orders_[n - 1];
    const std::uint64_t key = pack(prefix, word);
    const std::size_t mask = o.slots.size() - 1;
    for (std::size_t slot = mix(key) & mask;; slot = (slot + 1) & mask) {
        const std::uint32_t e = o.slots[slot];
        if (e == 0) return -1;
        if (o.prefix[e - 1] == prefix && o.word[e - 1] == word) return e - 1;
    }
}

void NgramCounts::grow(int n) {
    Order& o = orders_[n - 1];
    const std::size_t size = o.slots.size() * 2;
    o.slots.assign(size, 0);
    const std::size_t mask = size - 1;
    for (std::size_t e = 0; e < o.word.size(); ++e) {
        std::size_t slot = mix(pack(o.prefix[e], o.word[e])) & mask;
        while (o.slots[slot] != 0) slot = (slot + 1) & mask;
        o.slots[slot] = static_cast<std::uint32_t>(e + 1);
    }
}

std::uint32_t NgramCounts::find_or_add(int n, std::uint32_t prefix, std::uint32_t word) {
    Order& o = orders_[n - 1];
    const std::uint64_t key = pack(prefix, word);
    std::size_t mask = o.slots.size() - 1;
    std::size_t slot = mix(key) & mask;
    for (;; slot = (slot + 1) & mask) {
        const std::uint32_t e = o.slots[slot];
        if (e == 0) break;
        if (o.prefix[e - 1] == prefix && o.word[e - 1] == word) return e - 1;
    }
    const std::size_t index = o.word.size();
    if (index >= std::numeric_limits<std::uint32_t>::max() - 1) {
        throw std::length_error("more than 2^32 - 2 distinct n-grams of order " +
                                std::to_string(n));
    }
    o.prefix.push_back(prefix);
    o.word.push_back(word);
    o.count.push_back(0);
    if (2 * (index + 1) > o.slots.size()) {
        grow(n);  // re-places every entry, this one included
    } else {
        o.slots[slot] = static_cast<std::uint32_t>(index + 1);
    }
    return static_cast<std::uint32_t>(index);
}

void NgramCounts::add_sentences(const std::int32_t* ids, const std::int64_t* offsets,
                                std::int64_t num_sentences) {
    // Validate everything first, so that an error leaves the store unchanged.
    if (num_sentences < 0) throw std::invalid_argument("the number of sentences is negative");
    if (num_sentences > 0 && offsets[0] < 0) {
        throw std::invalid_argument("offsets[0] must be >= 0, got " + std::to_string(offsets[0]));
    }
    for (std::int64_t s = 0; s < num_sentences; ++s) {
        if (offsets[s + 1] < offsets[s]) {
            throw std::invalid_argument("offsets must be non-decreasing, got offsets[" +
                                        std::to_string(s) + "] = " + std::to_string(offsets[s]) +
                                        " > offsets[" + std::to_string(s + 1) +
                                        "] = " + std::to_string(offsets[s + 1]));
        }
        for (std::int64_t i = offsets[s]; i < offsets[s + 1]; ++i) {
            const std::int32_t w = ids[i];
            if (w < 0 || w == static_cast<std::int32_t>(kBos) ||
                w == static_cast<std::int32_t>(kEos)) {
                throw std::invalid_argument(
                    "ids[" + std::to_string(i) + "] = " + std::to_string(w) +
                    (w < 0 ? " is negative"
                           : " is <s> or </s>, which the store adds around each sentence"));
            }
        }
    }
    // ending[n - 1]: entry index of the n-gram ending at the previous position.
    std::vector<std::uint32_t> ending(static_cast<std::size_t>(order_)), next(ending.size());
    auto& unigram = orders_[0].count;
    for (std::int64_t s = 0; s < num_sentences; ++s) {
        const std::int64_t len = offsets[s + 1] - offsets[s];
        const std::int32_t* words = ids + offsets[s];
        // Position 0 is <s>; positions 1..len the words; len + 1 is </s>.
        for (std::int64_t pos = 0; pos <= len + 1; ++pos) {
            const std::uint32_t w = pos == 0     ? kBos
                                    : pos <= len ? static_cast<std::uint32_t>(words[pos - 1])
                                                 : kEos;
            ensure_unigram(w);
            ++unigram[w];
            next[0] = w;
            const int top = static_cast<int>(std::min<std::int64_t>(order_, pos + 1));
            for (int n = 2; n <= top; ++n) {
                const std::uint32_t e = find_or_add(n, ending[n - 2], w);
                ++orders_[n - 1].count[e];
                next[n - 1] = e;
            }
            std::swap(ending, next);
        }
    }
}

std::int64_t NgramCounts::size(int n) const {
    check_order(n, order_);
    if (n > 1) return static_cast<std::int64_t>(orders_[n - 1].word.size());
    const auto& c = orders_[0].count;
    return std::count_if(c.begin(), c.end(), [](std::uint64_t v) { return v != 0; });
}

std::uint64_t NgramCounts::count(const std::int32_t* words, int n) const {
    check_order(n, order_);
    const auto& unigram = orders_[0].count;
    if (words[0] < 0 || static_cast<std::size_t>(words[0]) >= unigram.size()) return 0;
    std::uint32_t e = static_cast<std::uint32_t>(words[0]);
    if (n == 1) return unigram[e];
    if (unigram[e] == 0) return 0;
    for (int k = 2; k <= n; ++k) {
        if (words[k - 1] < 0) return 0;
        const std::int64_t found = find(k, e, static_cast<std::uint32_t>(words[k - 1]));
        if (found < 0) return 0;
        e = static_cast<std::uint32_t>(found);
    }
    return orders_[n - 1].count[e];
}

void NgramCounts::ngrams(int n, std::int32_t* words, std::uint64_t* counts) const {
    check_order(n, order_);
    if (n == 1) {
        const auto& c = orders_[0].count;
        std::size_t row = 0;
        for (std::size_t w = 0; w < c.size(); ++w) {
            if (c[w] == 0) continue;
            words[row] = static_cast<std::int32_t>(w);
            counts[row] = c[w];
            ++row;
        }
        return;
    }
    const Order& o = orders_[n - 1];
    for (std::size_t e = 0; e < o.word.size(); ++e) {
        std::int32_t* row = words + e * static_cast<std::size_t>(n);
        std::uint32_t index = static_cast<std::uint32_t>(e);
        for (int k = n; k >= 2; --k) {
            const Order& ok = orders_[k - 1];
            row[k - 1] = static_cast<std::int32_t>(ok.word[index]);
            index = ok.prefix[index];
        }
        row[0] = static_cast<std::int32_t>(index);
        counts[e] = o.count[e];
    }
}

std::uint64_t NgramCounts::total(int n) const {
    check_order(n, order_);
    std::uint64_t sum = 0;
    for (std::uint64_t c : orders_[n - 1].count) sum += c;
    return sum;
}

std::vector<std::uint64_t> NgramCounts::count_of_counts(int n, int max_count) const {
    check_order(n, order_);
    if (max_count < 1) {
        throw std::invalid_argument("max_count must be >= 1, got " + std::to_string(max_count));
    }
    std::vector<std::uint64_t> hist(static_cast<std::size_t>(max_count), 0);
    for (std::uint64_t c : orders_[n - 1].count) {
        if (c >= 1 && c <= static_cast<std::uint64_t>(max_count)) ++hist[c - 1];
    }
    return hist;
}

void NgramCounts::merge(const NgramCounts& other, const std::vector<std::uint32_t>* translate) {
    if (other.order_ != order_) {
        throw std::invalid_argument("cannot merge counts of order " + std::to_string(other.order_) +
                                    " into counts of order " + std::to_string(order_));
    }
    const auto& theirs = other.orders_[0].count;
    if (translate && translate->size() < theirs.size()) {
        throw std::invalid_argument("the translation table has " +
                                    std::to_string(translate->size()) + " ids, the counts need " +
                                    std::to_string(theirs.size()));
    }
    const auto word_of = [translate](std::uint32_t w) {
        return translate ? (*translate)[w] : w;
    };
    if (&other == this && !translate) {
        for (auto& o : orders_) {
            for (auto& c : o.count) c *= 2;
        }
        return;
    }
    if (&other == this) {
        const NgramCounts copy = other;
        merge(copy, translate);
        return;
    }
    for (std::size_t w = 0; w < theirs.size(); ++w) {
        if (theirs[w] == 0) continue;
        const std::uint32_t here = word_of(static_cast<std::uint32_t>(w));
        ensure_unigram(here);
        orders_[0].count[here] += theirs[w];
    }
    // Entries of order n-1 of `other`, as entry indices here (unigrams: the word itself).
    std::vector<std::uint32_t> mapped, mapped_next;
    for (int n = 2; n <= order_; ++n) {
        const Order& o = other.orders_[n - 1];
        mapped_next.resize(o.word.size());
        for (std::size_t e = 0; e < o.word.size(); ++e) {
            const std::uint32_t prefix = n == 2 ? word_of(o.prefix[e]) : mapped[o.prefix[e]];
            const std::uint32_t here = find_or_add(n, prefix, word_of(o.word[e]));
            orders_[n - 1].count[here] += o.count[e];
            mapped_next[e] = here;
        }
        std::swap(mapped, mapped_next);
    }
}

void NgramCounts::prune(const std::vector<std::uint64_t>& min_counts) {
    if (min_counts.size() != static_cast<std::size_t>(order_)) {
        throw std::invalid_argument("min_counts must have one value per order (" +
                                    std::to_string(order_) + "), got " +
                                    std::to_string(min_counts.size()));
    }
    // keep[n - 1][e]: entry e of order n stays. From the top order down, so that a kept
    // n-gram keeps its prefix.
    std::vector<std::vector<char>> keep(static_cast<std::size_t>(order_));
    for (int n = order_; n >= 1; --n) {
        const auto& counts = orders_[n - 1].count;
        auto& k = keep[n - 1];
        k.resize(counts.size());
        for (std::size_t e = 0; e < counts.size(); ++e) {
            k[e] |= static_cast<char>(counts[e] != 0 && counts[e] >= min_counts[n - 1]);
        }
        if (n >= 2) {
            auto& below = keep[n - 2];
            below.resize(orders_[n - 2].count.size(), 0);
            const auto& prefix = orders_[n - 1].prefix;
            for (std::size_t e = 0; e < counts.size(); ++e) {
                if (k[e]) below[prefix[e]] = 1;
            }
        }
    }
    for (std::size_t w = 0; w < orders_[0].count.size(); ++w) {
        if (!keep[0][w]) orders_[0].count[w] = 0;
    }
    // Compact orders >= 2, renumbering their entries (and the prefixes of the next order).
    std::vector<std::uint32_t> renumber, renumber_next;
    for (int n = 2; n <= order_; ++n) {
        Order& o = orders_[n - 1];
        renumber_next.assign(o.word.size(), 0);
        std::size_t kept = 0;
        for (std::size_t e = 0; e < o.word.size(); ++e) {
            if (!keep[n - 1][e]) continue;
            renumber_next[e] = static_cast<std::uint32_t>(kept);
            o.prefix[kept] = n == 2 ? o.prefix[e] : renumber[o.prefix[e]];
            o.word[kept] = o.word[e];
            o.count[kept] = o.count[e];
            ++kept;
        }
        o.prefix.resize(kept);
        o.word.resize(kept);
        o.count.resize(kept);
        std::swap(renumber, renumber_next);
    }
    rebuild_tables();
}

void NgramCounts::rebuild_tables() {
    for (int n = 2; n <= order_; ++n) {
        Order& o = orders_[n - 1];
        std::size_t size = kInitialSlots;
        while (size < 2 * o.word.size()) size *= 2;
        o.slots.assign(size / 2, 0);  // grow() doubles it and places every entry
        grow(n);
    }
}

std::size_t NgramCounts::memory_bytes() const {
    std::size_t bytes = 0;
    for (const Order& o : orders_) {
        bytes += o.prefix.capacity() * sizeof(std::uint32_t) +
                 o.word.capacity() * sizeof(std::uint32_t) +
                 o.count.capacity() * sizeof(std::uint64_t) +
                 o.slots.capacity() * sizeof(std::uint32_t);
    }
    return bytes;
}

// ------------------------------------------------------------------------- serialization
// Layout (all integers little-endian):
//   magic "RNKNGRAM" | u32 format version | u32 order
//   per order n = 1..N: u64 entries, then (n >= 2) u32 prefix[entries], u32 word[entries];
//     u64 count[entries] (for n = 1 the entries are the unigram ids 0..entries-1)
//   u64 checksum: FNV-1a 64 of every byte before it.
namespace {

constexpr char kMagic[8] = {'R', 'N', 'K', 'N', 'G', 'R', 'A', 'M'};
constexpr std::uint32_t kFormatVersion = 1;

std::uint64_t fnv1a(const char* data, std::size_t n) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (std::size_t i = 0; i < n; ++i) {
        h ^= static_cast<unsigned char>(data[i]);
        h *= 0x100000001b3ULL;
    }
    return h;
}

template <typename U>
void put(std::string& out, U value) {
    char bytes[sizeof(U)];
    for (std::size_t i = 0; i < sizeof(U); ++i) {
        bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
    }
    out.append(bytes, sizeof(U));
}

template <typename U>
void put_all(std::string& out, const std::vector<U>& values) {
    for (U v : values) put(out, v);
}

class Reader {
public:
    explicit Reader(const std::string& data) : data_(data) {}
    template <typename U>
    U get(const char* what) {
        if (data_.size() - pos_ < sizeof(U)) {
            throw std::invalid_argument("NgramCounts bytes are truncated (in " + std::string(what) +
                                        " at byte " + std::to_string(pos_) + " of " +
                                        std::to_string(data_.size()) + ")");
        }
        U value = 0;
        for (std::size_t i = 0; i < sizeof(U); ++i) {
            value |= static_cast<U>(static_cast<unsigned char>(data_[pos_ + i])) << (8 * i);
        }
        pos_ += sizeof(U);
        return value;
    }
    std::size_t remaining() const { return data_.size() - pos_; }

private:
    const std::string& data_;
    std::size_t pos_ = 0;
};

}  // namespace

std::string NgramCounts::to_bytes() const {
    std::string out(kMagic, sizeof(kMagic));
    put(out, kFormatVersion);
    put(out, static_cast<std::uint32_t>(order_));
    for (int n = 1; n <= order_; ++n) {
        const Order& o = orders_[n - 1];
        put(out, static_cast<std::uint64_t>(o.count.size()));
        if (n >= 2) {
            put_all(out, o.prefix);
            put_all(out, o.word);
        }
        put_all(out, o.count);
    }
    put(out, fnv1a(out.data(), out.size()));
    return out;
}

NgramCounts NgramCounts::from_bytes(const std::string& data) {
    if (data.size() < sizeof(kMagic) + 16 || std::memcmp(data.data(), kMagic, sizeof(kMagic))) {
        throw std::invalid_argument("not NgramCounts bytes (no RNKNGRAM header)");
    }
    const std::size_t body = data.size() - 8;
    const std::string checksum_bytes = data.substr(body);
    Reader tail(checksum_bytes);
    const std::uint64_t stored = tail.get<std::uint64_t>("checksum");
    if (stored != fnv1a(data.data(), body)) {
        throw std::invalid_argument("NgramCounts bytes are corrupted (checksum mismatch)");
    }
    const std::string payload = data.substr(sizeof(kMagic), body - sizeof(kMagic));
    Reader in(payload);
    const std::uint32_t version = in.get<std::uint32_t>("version");
    if (version != kFormatVersion) {
        throw std::invalid_argument("NgramCounts bytes have format version " +
                                    std::to_string(version) + "; this rnnkit reads version " +
                                    std::to_string(kFormatVersion));
    }
    const std::uint32_t order = in.get<std::uint32_t>("order");
    if (order < 1 || order > static_cast<std::uint32_t>(kMaxOrder)) {
        throw std::invalid_argument("NgramCounts bytes have an invalid order " +
                                    std::to_string(order));
    }
    NgramCounts counts(static_cast<int>(order));
    std::uint64_t below = 0;  // entries of the order below (valid prefixes)
    for (int n = 1; n <= static_cast<int>(order); ++n) {
        Order& o = counts.orders_[n - 1];
        const std::uint64_t entries = in.get<std::uint64_t>("entry count");
        const std::uint64_t per_entry = n >= 2 ? 16 : 8;
        if (entries > in.remaining() / per_entry) {
            throw std::invalid_argument("NgramCounts bytes are truncated (order " +
                                        std::to_string(n) + " claims " + std::to_string(entries) +
                                        " entries)");
        }
        if (n >= 2) {
            o.prefix.resize(entries);
            o.word.resize(entries);
            for (auto& p : o.prefix) {
                p = in.get<std::uint32_t>("prefix");
                if (p >= below) {
                    throw std::invalid_argument("NgramCounts bytes are inconsistent (order " +
                                                std::to_string(n) + " prefix " + std::to_string(p) +
                                                " out of range)");
                }
            }
            for (auto& w : o.word) {
                w = in.get<std::uint32_t>("word");
                if (w > static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max())) {
                    throw std::invalid_argument("NgramCounts bytes are inconsistent (word id " +
                                                std::to_string(w) + ")");
                }
            }
        }
        o.count.resize(entries);
        for (auto& c : o.count) c = in.get<std::uint64_t>("count");
        below = entries;
    }
    if (in.remaining() != 0) {
        throw std::invalid_argument("NgramCounts bytes have " + std::to_string(in.remaining()) +
                                    " trailing bytes");
    }
    counts.rebuild_tables();
    // A valid store never holds one n-gram twice.
    for (int n = 2; n <= static_cast<int>(order); ++n) {
        if (counts.orders_[n - 1].word.size() >= 1) {
            const Order& o = counts.orders_[n - 1];
            for (std::size_t e = 0; e < o.word.size(); ++e) {
                if (counts.find(n, o.prefix[e], o.word[e]) != static_cast<std::int64_t>(e)) {
                    throw std::invalid_argument("NgramCounts bytes are inconsistent (order " +
                                                std::to_string(n) + " holds an n-gram twice)");
                }
            }
        }
    }
    return counts;
}

}  // namespace rnnkit::ngram
