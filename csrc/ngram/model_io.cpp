// The native binary model file.
//
// Layout (little-endian; every array starts at a multiple of 64 bytes from the file's start):
//   char[8]  "RNKMODEL"
//   u32      format version (kVersion)
//   u32      0x01020304 (byte order check)
//   u32      order, u32 partitions
//   u64      vocabulary size V, u64 bytes of the words
//   words    ids 0..V-1 joined by '\n' (UTF-8)
//   arrays   unigram log10 probs (f32 x V), backoffs (f32 x V), presence (u8 x V); then for
//            each partition and each order n = 2..N: entries (16-byte records: prefix, word,
//            log10 prob, log10 backoff) and the hash table's slots (u32), each array preceded
//            by its u64 length (in elements)
//   u64      checksum of every byte before it
// Loading reads each array straight into the model's vectors, hashing the bytes as they pass
// (4 lanes of FNV-style multiply-xor over 64-bit words), then checks that every stored index
// is in range, so a damaged or hand-made file gives an error, never a crash or a hang.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/parallel.hpp"
#include "ngram/checksum.hpp"
#include "ngram/model.hpp"

namespace rnnkit::ngram {

namespace {

constexpr char kMagic[8] = {'R', 'N', 'K', 'M', 'O', 'D', 'E', 'L'};
constexpr std::uint32_t kVersion = 2;  // 1: power-of-two tables without hash tags
constexpr std::uint32_t kByteOrder = 0x01020304;
constexpr std::size_t kAlign = 64;

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

bool little_endian() {
    const std::uint32_t probe = 1;
    unsigned char first;
    std::memcpy(&first, &probe, 1);
    return first == 1;
}

}  // namespace

// The writes of the file's layout (value, padding, arrays with their lengths) over a sink's
// put(data, bytes): a stream (Writer), writes at the file's places (PlacedWriter), to memory
// (MemoryWriter), or none (Sizer, which only tells where each part goes).
class LayoutWriter {
public:
    virtual ~LayoutWriter() = default;
    void bytes(const void* data, std::size_t n) {
        if (n == 0) return;
        put(data, n);
        offset_ += n;
    }
    template <typename T>
    void value(T v) {
        bytes(&v, sizeof v);
    }
    void align() {
        static const char zeros[kAlign] = {};
        bytes(zeros, (kAlign - offset_ % kAlign) % kAlign);
    }
    // An array's length and padding; returns where its data goes.
    std::uint64_t array_head(std::uint64_t length) {
        value<std::uint64_t>(length);
        align();
        return offset_;
    }
    template <typename T>
    void array(const std::vector<T>& v) {
        array_head(v.size());
        bytes(v.data(), v.size() * sizeof(T));
    }
    std::uint64_t offset() const { return offset_; }

protected:
    virtual void put(const void* data, std::size_t n) = 0;
    std::uint64_t offset_ = 0;
};

namespace {

class Writer final : public LayoutWriter {
public:
    explicit Writer(const std::string& path) : path_(path), file_(std::fopen(path.c_str(), "wb")) {
        if (!file_) throw std::runtime_error("cannot open " + path + " for writing");
    }
    void finish() {
        const std::uint64_t checksum = sum_.value();
        if (std::fwrite(&checksum, 8, 1, file_.get()) != 1 || std::fflush(file_.get()) != 0 ||
            std::fclose(file_.release()) != 0) {
            throw std::runtime_error("cannot write " + path_ + " (disk full?)");
        }
    }

private:
    void put(const void* data, std::size_t n) override {
        if (std::fwrite(data, 1, n, file_.get()) != n) {
            throw std::runtime_error("cannot write " + path_ + " (disk full?)");
        }
        sum_.add(data, n);
    }
    std::string path_;
    File file_;
    Checksum sum_;
};

// Writes to a buffer of a known size (the Sizer's), the checksum last.
class MemoryWriter final : public LayoutWriter {
public:
    MemoryWriter(char* out, std::uint64_t size) : out_(out), size_(size) {}
    void finish() {
        const std::uint64_t checksum = sum_.value();
        if (offset_ + sizeof checksum != size_) {
            throw std::logic_error("a binary model's bytes have another size than planned");
        }
        std::memcpy(out_ + offset_, &checksum, sizeof checksum);
    }

private:
    void put(const void* data, std::size_t n) override {
        if (n > size_ - offset_) {
            throw std::logic_error("a binary model's bytes have another size than planned");
        }
        std::memcpy(out_ + offset_, data, n);
        sum_.add(data, n);
    }
    char* out_;
    std::uint64_t size_;
    Checksum sum_;
};

// Counts the bytes (the data is not read: it may not exist yet).
class Sizer final : public LayoutWriter {
public:
    void skip(std::uint64_t n) { offset_ += n; }

private:
    void put(const void*, std::size_t) override {}
};

// Writes at the file's places, from the start.
class PlacedWriter final : public LayoutWriter {
public:
    explicit PlacedWriter(std::function<void(std::uint64_t, const void*, std::size_t)> write_at)
        : write_at_(std::move(write_at)) {}

private:
    void put(const void* data, std::size_t n) override { write_at_(offset_, data, n); }
    std::function<void(std::uint64_t, const void*, std::size_t)> write_at_;
};

// Everything before the n-gram tables.
void write_head(LayoutWriter& out, int order, std::uint64_t vocab_size, const std::string& words,
                const std::vector<float>& prob, const std::vector<float>& backoff,
                const std::vector<char>& present) {
    out.bytes(kMagic, sizeof kMagic);
    out.value<std::uint32_t>(kVersion);
    out.value<std::uint32_t>(kByteOrder);
    out.value<std::uint32_t>(static_cast<std::uint32_t>(order));
    out.value<std::uint32_t>(static_cast<std::uint32_t>(order >= 2 ? kPartitions : 0));
    out.value<std::uint64_t>(vocab_size);
    out.value<std::uint64_t>(words.size());
    out.bytes(words.data(), words.size());
    out.array(prob);
    out.array(backoff);
    out.array(present);
}

// Words 0 .. count - 1 (all of them by default) joined by '\n'.
std::string joined_words(const Vocabulary& vocab, std::int64_t count = -1) {
    std::string words;
    if (count < 0) count = vocab.size();
    for (std::int64_t i = 0; i < count; ++i) {
        if (i > 0) words.push_back('\n');
        words += vocab.word(static_cast<std::int32_t>(i));
    }
    return words;
}

void check_host_and_vocabulary(const Vocabulary& vocab, std::int64_t vocab_size) {
    if (!little_endian())
        throw std::runtime_error("binary models are written on little-endian hosts only");
    // (a vocabulary that grew after the model was made has more: theirs are not the model's)
    if (vocab.size() < vocab_size) {
        throw std::invalid_argument("the vocabulary has " + std::to_string(vocab.size()) +
                                    " words, the model " + std::to_string(vocab_size));
    }
}

}  // namespace

// A binary model's bytes, from a file or from memory (then `name` stands for the path in
// messages); every byte read goes into the checksum.
class BinaryReader {
public:
    explicit BinaryReader(const std::string& path)
        : path_(path), file_(std::fopen(path.c_str(), "rb")) {
        if (!file_) throw std::runtime_error("cannot open " + path);
        if (std::fseek(file_.get(), 0, SEEK_END) != 0)
            throw std::runtime_error("cannot read " + path);
        const long size = std::ftell(file_.get());
        if (size < 0 || std::fseek(file_.get(), 0, SEEK_SET) != 0) {
            throw std::runtime_error("cannot read " + path);
        }
        size_ = static_cast<std::uint64_t>(size);
    }
    BinaryReader(const char* data, std::uint64_t size, const std::string& name)
        : path_(name), data_(data), size_(size) {}
    [[noreturn]] void fail(const std::string& what) const {
        throw std::invalid_argument(path_ + ": " + what);
    }
    void bytes(void* data, std::size_t n, const char* what) {
        if (n > remaining()) fail(std::string("truncated file (") + what + ")");
        read(data, n);
        sum_.add(data, n);
        offset_ += n;
    }
    template <typename T>
    T value(const char* what) {
        T v;
        bytes(&v, sizeof v, what);
        return v;
    }
    void align() {
        char zeros[kAlign];
        bytes(zeros, (kAlign - offset_ % kAlign) % kAlign, "padding");
    }
    // An array of at most `limit` elements, checked against the bytes left before allocating.
    template <typename T>
    void array(std::vector<T>& v, std::uint64_t limit, const char* what) {
        const auto n = value<std::uint64_t>(what);
        align();
        if (n > limit)
            fail(std::string("impossible size ") + std::to_string(n) + " (" + what + ")");
        if (n > remaining() / sizeof(T)) fail(std::string("truncated file (") + what + ")");
        v.resize(static_cast<std::size_t>(n));
        bytes(v.data(), v.size() * sizeof(T), what);
    }
    void finish() {
        const std::uint64_t expected = sum_.value();
        std::uint64_t stored;
        if (remaining() != 8) fail("truncated file or trailing bytes");
        read(&stored, 8);
        if (stored != expected) fail("corrupted file (checksum mismatch)");
    }
    std::uint64_t remaining() const { return size_ - offset_; }

private:
    // n <= remaining() bytes at the offset (which the caller advances).
    void read(void* data, std::size_t n) {
        if (n == 0) return;
        if (data_ != nullptr) {
            std::memcpy(data, data_ + offset_, n);
        } else if (std::fread(data, 1, n, file_.get()) != n) {
            throw std::runtime_error("cannot read " + path_);
        }
    }
    std::string path_;
    File file_;
    const char* data_ = nullptr;  // (reading from memory)
    Checksum sum_;
    std::uint64_t size_ = 0;
    std::uint64_t offset_ = 0;
};

void NgramModel::save_binary(const std::string& path, const Vocabulary& vocab) const {
    save_binary_parts(path, vocab,
                      [&](std::size_t p, int n) -> const Order& { return parts_[p].at(n); });
}

void NgramModel::write_binary_layout(
    LayoutWriter& out, const Vocabulary& vocab,
    const std::function<const Order&(std::size_t, int)>& part) const {
    write_head(out, order_, static_cast<std::uint64_t>(vocab_size()),
               joined_words(vocab, vocab_size()), unigram_prob_, unigram_backoff_,
               unigram_present_);
    for (std::size_t p = 0; p < parts_.size(); ++p) {
        for (int n = 2; n <= order_; ++n) {
            const Order& o = part(p, n);
            out.array(o.entries);
            out.array(o.slots);
        }
    }
}

void NgramModel::save_binary_parts(
    const std::string& path, const Vocabulary& vocab,
    const std::function<const Order&(std::size_t, int)>& part) const {
    check_host_and_vocabulary(vocab, vocab_size());
    Writer out(path);
    write_binary_layout(out, vocab, part);
    out.finish();
}

std::uint64_t NgramModel::binary_size(const Vocabulary& vocab) const {
    check_host_and_vocabulary(vocab, vocab_size());
    Sizer plan;
    write_binary_layout(plan, vocab,
                        [&](std::size_t p, int n) -> const Order& { return parts_[p].at(n); });
    return plan.offset() + sizeof(std::uint64_t);  // (the checksum)
}

void NgramModel::write_binary(const Vocabulary& vocab, char* out, std::uint64_t size) const {
    check_host_and_vocabulary(vocab, vocab_size());
    MemoryWriter writer(out, size);
    write_binary_layout(writer, vocab,
                        [&](std::size_t p, int n) -> const Order& { return parts_[p].at(n); });
    writer.finish();
}

NgramModel::BinaryParts::BinaryParts(const std::string& path, const Vocabulary& vocab, int order,
                                     const std::vector<std::vector<std::int64_t>>& entries)
    : path_(path),
      words_(joined_words(vocab)),
      order_(order),
      vocab_size_(static_cast<std::uint64_t>(vocab.size())) {
    if (!little_endian())
        throw std::runtime_error("binary models are written on little-endian hosts only");
    // The layout as save_binary_parts writes it: the head (its unigram arrays only sized),
    // then each partition's tables, compacted.
    Sizer plan;
    const std::vector<float> floats(vocab_size_);
    const std::vector<char> flags(vocab_size_);
    write_head(plan, order, vocab_size_, words_, floats, floats, flags);
    places_.resize(entries.size());
    for (std::size_t p = 0; p < entries.size(); ++p) {
        for (int n = 2; n <= order; ++n) {
            Place place{};
            place.entries = static_cast<std::uint64_t>(entries[p][static_cast<std::size_t>(n)]);
            place.entries_length_at = plan.offset();
            place.entries_at = plan.array_head(place.entries);
            plan.skip(place.entries * sizeof(Entry));
            place.slots = compact_slots(static_cast<std::size_t>(place.entries));
            place.slots_length_at = plan.offset();
            place.slots_at = plan.array_head(place.slots);
            plan.skip(place.slots * sizeof(std::uint32_t));
            places_[p].push_back(place);
        }
    }
    end_ = plan.offset();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd_ < 0) throw std::runtime_error("cannot open " + path + " for writing");
}

NgramModel::BinaryParts::~BinaryParts() {
    if (fd_ >= 0) ::close(fd_);
}

void NgramModel::BinaryParts::write_at(std::uint64_t offset, const void* data,
                                       std::size_t bytes) const {
    const auto* p = static_cast<const char*>(data);
    while (bytes > 0) {
        const ssize_t done = ::pwrite(fd_, p, bytes, static_cast<off_t>(offset));
        if (done <= 0) {
            if (done < 0 && errno == EINTR) continue;
            throw std::runtime_error("cannot write " + path_ + " (disk full?)");
        }
        p += done;
        offset += static_cast<std::uint64_t>(done);
        bytes -= static_cast<std::size_t>(done);
    }
}

void NgramModel::BinaryParts::put(std::size_t p, int n, const Order& o) const {
    const Place& place = places_[p][static_cast<std::size_t>(n - 2)];
    if (o.entries.size() != place.entries || o.slots.size() != place.slots) {
        throw std::logic_error("a table of the binary file has another size than planned");
    }
    // (the padding after each length is left as the file's holes, which read as zeros)
    write_at(place.entries_length_at, &place.entries, sizeof place.entries);
    write_at(place.entries_at, o.entries.data(), o.entries.size() * sizeof(Entry));
    write_at(place.slots_length_at, &place.slots, sizeof place.slots);
    write_at(place.slots_at, o.slots.data(), o.slots.size() * sizeof(std::uint32_t));
    tables_put_.fetch_add(1, std::memory_order_relaxed);
}

void NgramModel::BinaryParts::read_at(std::uint64_t offset, void* data, std::size_t bytes) const {
    auto* p = static_cast<char*>(data);
    while (bytes > 0) {
        const ssize_t done = ::pread(fd_, p, bytes, static_cast<off_t>(offset));
        if (done <= 0) {
            if (done < 0 && errno == EINTR) continue;
            throw std::runtime_error("cannot read back " + path_);
        }
        p += done;
        offset += static_cast<std::uint64_t>(done);
        bytes -= static_cast<std::size_t>(done);
    }
}

void NgramModel::BinaryParts::get_entries(std::size_t p, int n, std::vector<Entry>& out) const {
    const Place& place = places_[p][static_cast<std::size_t>(n - 2)];
    out.resize(static_cast<std::size_t>(place.entries));
    read_at(place.entries_at, out.data(), out.size() * sizeof(Entry));
}

void NgramModel::BinaryParts::finish(const NgramModel& model) {
    if (model.unigram_prob_.size() != vocab_size_ || model.unigram_backoff_.size() != vocab_size_ ||
        model.unigram_present_.size() != vocab_size_ || model.order_ != order_) {
        throw std::logic_error("the binary file's head has another size than planned");
    }
    std::size_t tables = 0;
    for (const auto& part : places_) tables += part.size();
    if (tables_put_.load(std::memory_order_relaxed) != tables) {
        throw std::logic_error("a table of the binary file was not written");
    }
    PlacedWriter head([this](std::uint64_t at, const void* data, std::size_t bytes) {
        write_at(at, data, bytes);
    });
    write_head(head, order_, vocab_size_, words_, model.unigram_prob_, model.unigram_backoff_,
               model.unigram_present_);
    // The checksum of every byte before it, read back (from the page cache, mostly).
    Checksum sum;
    std::vector<char> chunk(std::size_t{8} << 20);
    for (std::uint64_t offset = 0; offset < end_; offset += chunk.size()) {
        const auto bytes =
            static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), end_ - offset));
        read_at(offset, chunk.data(), bytes);
        sum.add(chunk.data(), bytes);
    }
    const std::uint64_t checksum = sum.value();
    write_at(end_, &checksum, sizeof checksum);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw std::runtime_error("cannot write " + path_ + " (disk full?)");
}

NgramModel NgramModel::load_binary(const std::string& path, Vocabulary& vocab) {
    if (!little_endian())
        throw std::runtime_error("binary models are read on little-endian hosts only");
    BinaryReader in(path);
    return read_binary(in, vocab);
}

NgramModel NgramModel::from_binary(const char* data, std::uint64_t size, Vocabulary& vocab,
                                   const std::string& name) {
    if (!little_endian())
        throw std::runtime_error("binary models are read on little-endian hosts only");
    BinaryReader in(data, size, name);
    return read_binary(in, vocab);
}

NgramModel NgramModel::read_binary(BinaryReader& in, Vocabulary& vocab) {
    char magic[sizeof kMagic];
    in.bytes(magic, sizeof magic, "header");
    if (std::memcmp(magic, kMagic, sizeof kMagic) != 0) in.fail("not an rnnkit binary model");
    const auto version = in.value<std::uint32_t>("header");
    if (version != kVersion) {
        in.fail("format version " + std::to_string(version) + "; this rnnkit reads version " +
                std::to_string(kVersion));
    }
    if (in.value<std::uint32_t>("header") != kByteOrder) in.fail("written with another byte order");
    const auto order = in.value<std::uint32_t>("header");
    const auto partitions = in.value<std::uint32_t>("header");
    const auto vocab_size = in.value<std::uint64_t>("header");
    const auto words_bytes = in.value<std::uint64_t>("header");
    if (order < 1 || order > static_cast<std::uint32_t>(kMaxOrder)) in.fail("impossible order");
    if (partitions != (order >= 2 ? static_cast<std::uint32_t>(kPartitions) : 0)) {
        in.fail("impossible number of partitions");
    }
    if (words_bytes > in.remaining()) in.fail("truncated file (vocabulary)");
    if (vocab_size < 3 ||
        vocab_size > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())) {
        in.fail("impossible vocabulary size");
    }
    std::string words(static_cast<std::size_t>(words_bytes), '\0');
    in.bytes(words.data(), words.size(), "vocabulary");
    // The model's unigram arrays take 9 bytes per id: a size the file cannot hold is refused
    // before they are allocated.
    if (vocab_size > in.remaining() / 9) in.fail("truncated file (unigrams)");
    NgramModel model(static_cast<int>(order), static_cast<std::int64_t>(vocab_size));
    in.array(model.unigram_prob_, vocab_size, "unigram probabilities");
    in.array(model.unigram_backoff_, vocab_size, "unigram backoffs");
    in.array(model.unigram_present_, vocab_size, "unigram presence");
    if (model.unigram_prob_.size() != vocab_size || model.unigram_backoff_.size() != vocab_size ||
        model.unigram_present_.size() != vocab_size) {
        in.fail("unigram arrays of the wrong size");
    }
    const std::uint64_t max_index = std::numeric_limits<std::uint32_t>::max();
    for (Partition& part : model.parts_) {
        for (Order& o : part.orders) {
            in.array(o.entries, max_index, "n-grams");
            in.array(o.slots, max_index, "hash table");
        }
    }
    in.finish();

    // Every index in range: a file with a valid checksum can still be hand-made.
    for (char present : model.unigram_present_) {
        if (present != 0 && present != 1) in.fail("inconsistent unigram presence");
    }
    // Values the ARPA reader would refuse (a positive or NaN log10 probability, a NaN backoff)
    // are refused here too, so that every loaded model can be written and read back as ARPA.
    const auto bad_values = [](float log_prob, float log_backoff) {
        return !(log_prob <= 0.0f) || std::isnan(log_backoff);
    };
    for (std::size_t id = 0; id < model.unigram_prob_.size(); ++id) {
        if (bad_values(model.unigram_prob_[id], model.unigram_backoff_[id]))
            in.fail("invalid unigram value (a positive or NaN log10 probability, or NaN backoff)");
    }
    // Partitions in parallel, branch-free loops; the first problem found is reported after.
    enum Problem : int { kNone, kBadEntry, kBadValue, kBadTable };
    std::vector<int> problems(model.parts_.size(), kNone);
    parallel_region(get_num_threads(), [&](int tid, int team) {
        for_each_owned(
            static_cast<std::int64_t>(model.parts_.size()), tid, team, [&](std::int64_t pi) {
                const Partition& part = model.parts_[static_cast<std::size_t>(pi)];
                int& problem = problems[static_cast<std::size_t>(pi)];
                for (int n = 2; n <= model.order_ && problem == kNone; ++n) {
                    const Order& o = part.at(n);
                    const std::uint64_t prefixes =
                        n == 2 ? vocab_size : static_cast<std::uint64_t>(part.at(n - 1).size());
                    // Every word of an n-gram has a unigram, as the ARPA reader demands.
                    const char* present = model.unigram_present_.data();
                    const auto unigram = [&](std::uint32_t id) {
                        return id < vocab_size && present[id] != 0;
                    };
                    bool bad = false, bad_value = false;
                    for (const Entry& e : o.entries) {
                        bad |= (e.prefix >= prefixes) | !unigram(e.word);
                        if (n == 2) bad |= !unigram(e.prefix);
                        bad_value |= bad_values(e.log_prob, e.log_backoff);
                    }
                    if (bad || bad_value) {
                        problem = bad ? kBadEntry : kBadValue;
                        break;
                    }
                    // At least one empty slot (probing stops there), every index in range.
                    const std::size_t slots = o.slots.size();
                    const std::uint32_t mask = model_slots::index_mask(slots);
                    const auto entries = static_cast<std::uint32_t>(o.entries.size());
                    std::size_t used = 0;
                    for (std::uint32_t v : o.slots) {
                        const std::uint32_t index = v & mask;
                        bad |= (index > entries) | ((v != 0) & (index == 0));
                        used += v != 0;
                    }
                    if (bad || slots < o.entries.size() + 1 || used != o.entries.size())
                        problem = kBadTable;
                }
            });
    });
    for (int problem : problems) {
        if (problem == kBadEntry) in.fail("inconsistent n-gram");
        if (problem == kBadValue) {
            in.fail("invalid n-gram value (a positive or NaN log10 probability, or NaN backoff)");
        }
        if (problem == kBadTable) in.fail("inconsistent hash table");
    }

    // The words, ids in order: a word seen twice, or a reserved word elsewhere, is an error.
    Vocabulary loaded;
    std::size_t start = 0;
    for (std::uint64_t id = 0; id < vocab_size; ++id) {
        const std::size_t end = id + 1 == vocab_size ? words.size() : words.find('\n', start);
        if (end == std::string::npos) in.fail("vocabulary shorter than its size");
        const std::string_view word(words.data() + start, end - start);
        if (!valid_word(word)) in.fail("invalid word at id " + std::to_string(id));
        const std::int32_t got = id < 3 ? loaded.find(word) : loaded.add(word);
        if (got != static_cast<std::int32_t>(id)) in.fail("inconsistent vocabulary");
        start = end + 1;
    }
    if (start != words.size() + 1) in.fail("vocabulary longer than its size");
    vocab = std::move(loaded);
    return model;
}

}  // namespace rnnkit::ngram
