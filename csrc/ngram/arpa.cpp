#include "ngram/arpa.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "common/parallel.hpp"

namespace rnnkit::ngram {

int format_float(float value, char* out) {
    if (std::isnan(value)) {
        std::memcpy(out, "nan", 3);
        return 3;
    }
    if (std::isinf(value)) {
        const char* text = value < 0 ? "-inf" : "inf";
        const int n = value < 0 ? 4 : 3;
        std::memcpy(out, text, static_cast<std::size_t>(n));
        return n;
    }
    int pos = 0;
    if (std::signbit(value)) out[pos++] = '-';
    if (value == 0.0f) {
        out[pos++] = '0';
        return pos;
    }
    // Shortest round-trip digits and exponent from the scientific form "d.ddde[+-]xx".
    char sci[40];
    const auto result =
        std::to_chars(sci, sci + sizeof(sci), std::fabs(value), std::chars_format::scientific);
    const char* end = result.ptr;
    const char* e = std::find(static_cast<const char*>(sci), end, 'e');
    char digits[16];
    int nd = 0;
    for (const char* c = sci; c < e; ++c) {
        if (*c != '.') digits[nd++] = *c;
    }
    int exponent = 0;
    std::from_chars(e + 1 + (e[1] == '+' ? 1 : 0), end, exponent);
    if (exponent >= -6 && exponent < 21) {
        if (exponent >= 0) {
            for (int i = 0; i <= exponent; ++i) out[pos++] = i < nd ? digits[i] : '0';
            if (nd > exponent + 1) {
                out[pos++] = '.';
                for (int i = exponent + 1; i < nd; ++i) out[pos++] = digits[i];
            }
        } else {
            out[pos++] = '0';
            out[pos++] = '.';
            for (int i = 0; i < -exponent - 1; ++i) out[pos++] = '0';
            for (int i = 0; i < nd; ++i) out[pos++] = digits[i];
        }
        return pos;
    }
    out[pos++] = digits[0];
    if (nd > 1) {
        out[pos++] = '.';
        for (int i = 1; i < nd; ++i) out[pos++] = digits[i];
    }
    out[pos++] = 'e';
    const auto exp_result = std::to_chars(out + pos, out + pos + 8, exponent);
    return static_cast<int>(exp_result.ptr - out);
}

namespace {

class Output {
public:
    explicit Output(const std::string& path) : file_(std::fopen(path.c_str(), "wb")), path_(path) {
        if (!file_) throw std::runtime_error("cannot open " + path + " for writing");
        buffer_.reserve(kFlush + 4096);
    }
    ~Output() {
        if (file_) std::fclose(file_);
    }
    void put(const char* data, std::size_t n) {
        buffer_.append(data, n);
        if (buffer_.size() >= kFlush) flush();
    }
    void put(const std::string& s) { put(s.data(), s.size()); }
    void put(char c) { put(&c, 1); }
    void flush() {
        if (!buffer_.empty() &&
            std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) {
            throw std::runtime_error("cannot write " + path_);
        }
        buffer_.clear();
    }
    void close() {
        flush();
        const int failed = std::fclose(file_);
        file_ = nullptr;
        if (failed) throw std::runtime_error("cannot write " + path_);
    }

private:
    static constexpr std::size_t kFlush = std::size_t{1} << 20;
    std::FILE* file_;
    std::string path_;
    std::string buffer_;
};

}  // namespace

void append_arpa_lines(std::string& text, const Vocabulary& vocab, int n, int top,
                       const std::int32_t* words, const float* probs, const float* backoffs,
                       std::size_t rows) {
    const auto nn = static_cast<std::size_t>(n);
    char number[40];
    for (std::size_t r = 0; r < rows; ++r) {
        text.append(number, static_cast<std::size_t>(format_float(probs[r], number)));
        text.push_back('\t');
        for (std::size_t k = 0; k < nn; ++k) {
            if (k) text.push_back(' ');
            text.append(vocab.word(words[r * nn + k]));
        }
        if (n < top) {
            text.push_back('\t');
            text.append(number, static_cast<std::size_t>(format_float(backoffs[r], number)));
        }
        text.push_back('\n');
    }
}

void write_arpa_pieces(
    const std::string& path, const std::vector<std::int64_t>& sizes,
    const std::function<void(int, const std::function<void(const std::string&)>&)>& body) {
    const int N = static_cast<int>(sizes.size());
    Output out(path);
    out.put("\\data\\\n");
    for (int n = 1; n <= N; ++n) {
        out.put("ngram " + std::to_string(n) + "=" +
                std::to_string(sizes[static_cast<std::size_t>(n - 1)]) + "\n");
    }
    const std::function<void(const std::string&)> put = [&](const std::string& text) {
        out.put(text);
    };
    for (int n = 1; n <= N; ++n) {
        out.put("\n\\" + std::to_string(n) + "-grams:\n");
        body(n, put);
    }
    out.put("\n\\end\\\n");
    out.close();
}

void write_arpa(const NgramModel& model, const Vocabulary& vocab, const std::string& path) {
    const int N = model.order();
    std::vector<std::int64_t> sizes;
    for (int n = 1; n <= N; ++n) sizes.push_back(model.size(n));
    write_arpa_pieces(path, sizes, [&](int n, const std::function<void(const std::string&)>& put) {
        const auto rows = static_cast<std::size_t>(model.size(n));
        const auto nn = static_cast<std::size_t>(n);
        std::vector<std::int32_t> words(rows * nn);
        std::vector<float> probs(rows), backoffs(rows);
        model.ngrams(n, words.data(), probs.data(), backoffs.data());
        for (std::int32_t id : words) {
            if (id >= vocab.size()) {
                throw std::invalid_argument("the model has word id " + std::to_string(id) +
                                            ", outside the vocabulary");
            }
        }
        // Lines in storage order (partitions by first word), formatted by all threads a batch
        // of chunks at a time and written in order.
        constexpr std::size_t kChunk = 1 << 18;
        const std::size_t chunks = (rows + kChunk - 1) / kChunk;
        const int threads = rows < 100000 ? 1 : get_num_threads();
        std::vector<std::string> text(static_cast<std::size_t>(std::max(threads, 1)));
        for (std::size_t c0 = 0; c0 < chunks; c0 += text.size()) {
            const std::size_t batch = std::min(text.size(), chunks - c0);
            parallel_region(
                static_cast<int>(std::min<std::size_t>(batch, static_cast<std::size_t>(threads))),
                [&](int tid, int team) {
                    for (std::size_t b = static_cast<std::size_t>(tid); b < batch;
                         b += static_cast<std::size_t>(team)) {
                        const std::size_t r0 = (c0 + b) * kChunk, r1 = std::min(rows, r0 + kChunk);
                        text[b].clear();
                        append_arpa_lines(text[b], vocab, n, N, words.data() + r0 * nn,
                                          probs.data() + r0, backoffs.data() + r0, r1 - r0);
                    }
                });
            for (std::size_t b = 0; b < batch; ++b) put(text[b]);
        }
    });
}

namespace {

// Lines of a file, read in large blocks; the newline (and a \r before it) is stripped.
class LineReader {
public:
    explicit LineReader(const std::string& path)
        : file_(std::fopen(path.c_str(), "rb")), path_(path) {
        if (!file_) throw std::runtime_error("cannot open " + path);
        // Blocks no larger than the file: a small file costs no 4 MiB buffer (whose heap
        // memory glibc keeps resident after the first few reads).
        if (std::fseek(file_, 0, SEEK_END) == 0) {
            const long size = std::ftell(file_);
            if (size >= 0) {
                size_ = static_cast<std::uint64_t>(size);
                block_ = std::clamp<std::size_t>(static_cast<std::size_t>(size) + 1, 4096, kBlock);
            }
            std::rewind(file_);
        }
    }
    ~LineReader() {
        if (file_) std::fclose(file_);
    }
    // The next line, or false at the end of the file.
    bool next(std::string_view& line) {
        for (;;) {
            const std::size_t nl = buffer_.find('\n', start_);
            if (nl != std::string::npos) {
                line = std::string_view(buffer_).substr(start_, nl - start_);
                start_ = nl + 1;
                ++number_;
                if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
                return true;
            }
            if (eof_) {
                if (start_ >= buffer_.size()) return false;
                line = std::string_view(buffer_).substr(start_);
                start_ = buffer_.size();
                ++number_;
                if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
                return true;
            }
            buffer_.erase(0, start_);
            start_ = 0;
            const std::size_t old = buffer_.size();
            buffer_.resize(old + block_);
            const std::size_t got = std::fread(buffer_.data() + old, 1, block_, file_);
            buffer_.resize(old + got);
            if (got < block_) {
                if (std::ferror(file_)) throw std::runtime_error("cannot read " + path_);
                eof_ = true;
            }
        }
    }
    std::int64_t number() const { return number_; }
    // The file's size in bytes (unknown: the largest value).
    std::uint64_t size() const { return size_; }

private:
    static constexpr std::size_t kBlock = std::size_t{1} << 22;
    std::size_t block_ = kBlock;
    std::uint64_t size_ = std::numeric_limits<std::uint64_t>::max();
    std::FILE* file_;
    std::string path_;
    std::string buffer_;
    std::size_t start_ = 0;
    bool eof_ = false;
    std::int64_t number_ = 0;
};

bool blank(std::string_view line) {
    return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t'; });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Splits on runs of spaces and tabs.
void fields_of(std::string_view line, std::vector<std::string_view>& out) {
    out.clear();
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        std::size_t j = i;
        while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
        if (j > i) out.push_back(line.substr(i, j - i));
        i = j;
    }
}

// Lines of one ARPA section of order n >= 2, parsed: the words' ids [size, n], the values and
// the line numbers.
struct NgramLines {
    int n = 0;
    std::vector<std::int32_t> ids;
    std::vector<float> probs, backoffs;
    std::vector<std::int64_t> lines;

    std::size_t size() const { return probs.size(); }
    void truncate(std::size_t rows) {
        ids.resize(rows * static_cast<std::size_t>(n));
        probs.resize(rows);
        backoffs.resize(rows);
        lines.resize(rows);
    }
};

// Parsed lines passed from the thread that reads the file to the one that adds them to the
// model, a chunk at a time (the reader fills the next chunk meanwhile). The adder never
// throws: its error ends the hand-over and is rethrown to the reader, which reports errors
// in the file's order (an error in lines already given comes before one found later).
class Handoff {
public:
    // Gives `chunk` (which comes back empty); rethrows the adder's error.
    void give(NgramLines& chunk) {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return !full_ || error_; });
        if (error_) std::rethrow_exception(error_);
        const int n = chunk.n;
        std::swap(slot_, chunk);
        full_ = true;
        lock.unlock();
        changed_.notify_all();
        chunk.n = n;  // (an empty chunk of the same order comes back)
        chunk.truncate(0);
    }
    // Returns once every chunk given has been added; rethrows the adder's error.
    void drain() {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return (!full_ && !busy_) || error_; });
        if (error_) std::rethrow_exception(error_);
    }
    // No more chunks (the reader, on any way out).
    void close() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            closed_ = true;
        }
        changed_.notify_all();
    }
    // The adder: add(chunk) for each chunk given, until close() or add's first error.
    template <typename Add>
    void serve(Add&& add) {
        NgramLines working;
        for (;;) {
            std::unique_lock<std::mutex> lock(mutex_);
            changed_.wait(lock, [&] { return full_ || closed_; });
            if (!full_) return;
            std::swap(working, slot_);
            full_ = false;
            busy_ = true;
            lock.unlock();
            changed_.notify_all();
            std::exception_ptr error;
            try {
                add(working);
            } catch (...) {
                error = std::current_exception();
            }
            lock.lock();
            busy_ = false;
            error_ = error;
            lock.unlock();
            changed_.notify_all();
            if (error) return;
        }
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    NgramLines slot_;
    bool full_ = false, busy_ = false, closed_ = false;
    std::exception_ptr error_;
};

bool parse_float(std::string_view text, float& value) {
    // from_chars takes no '+' sign, which SRILM and KenLM read (e.g. a backoff "+0.3").
    if (text.size() >= 2 && text[0] == '+' && text[1] != '-' && text[1] != '+') {
        text.remove_prefix(1);
    }
    const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
    return result.ec == std::errc() && result.ptr == text.data() + text.size();
}

}  // namespace

NgramModel read_arpa(const std::string& path, Vocabulary& vocab) {
    if (vocab.size() != 3) throw std::invalid_argument("read_arpa needs a fresh vocabulary");
    LineReader in(path);
    std::string_view line;
    const auto fail = [&](const std::string& message) {
        return std::invalid_argument(path + ":" + std::to_string(in.number()) + ": " + message);
    };
    // A piece of the line for a message: its bytes as they are, but control bytes other than
    // tab (NUL...) and, when the piece is not UTF-8, the bytes from 0x80 written \xNN (a
    // message must be valid, readable text).
    const auto quoted = [](std::string_view text) {
        text = text.substr(0, 200);
        const bool utf8 = valid_utf8(text);
        static const char kHex[] = "0123456789abcdef";
        std::string out = "'";
        for (const char ch : text) {
            const auto b = static_cast<unsigned char>(ch);
            if ((b < 0x20 && ch != '\t') || b == 0x7f || (b >= 0x80 && !utf8)) {
                out += "\\x";
                out += kHex[b >> 4];
                out += kHex[b & 15];
            } else {
                out += ch;
            }
        }
        return out + "'";
    };
    // A line that ends a section (the next one's header, read before a blank line) is kept
    // for the next call.
    bool pending = false;
    const auto next_nonblank = [&]() {
        if (pending) {
            pending = false;
            return true;
        }
        while (in.next(line)) {
            if (!blank(line)) return true;
        }
        return false;
    };
    // Anything before \data\ is a comment (SRILM).
    bool found = false;
    while (next_nonblank()) {
        if (in.number() == 1 && line.size() >= 2 && line[0] == '\x1f' && line[1] == '\x8b') {
            throw fail("this is a gzip-compressed file: decompress it first (gunzip)");
        }
        if (trim(line) == "\\data\\") {
            found = true;
            break;
        }
    }
    if (!found) throw fail("no \\data\\ line before the end of the file");
    // Section headers (\1-grams:, ..., \end\) start with a backslash, n-gram lines with a
    // number: a header ends the section before it without a blank line (KenLM reads such
    // files), and blank lines inside a section are skipped.
    const auto section_header = [&]() {
        return trim(line).substr(0, 1) == "\\";
    };
    std::vector<std::int64_t> sizes;
    while (next_nonblank()) {
        if (section_header()) {
            pending = true;
            break;
        }
        const std::string_view t = trim(line);
        const std::size_t eq = t.find('=');
        const std::string expected = "ngram " + std::to_string(sizes.size() + 1) + "=";
        std::int64_t value = -1;
        if (eq == std::string_view::npos || t.substr(0, eq + 1) != expected ||
            std::from_chars(t.data() + eq + 1, t.data() + t.size(), value).ptr !=
                t.data() + t.size() ||
            value < 0) {
            throw fail("expected '" + expected + "count', got " + quoted(line));
        }
        if (sizes.empty() && value > std::numeric_limits<std::int32_t>::max() - 4) {
            throw fail("too many unigrams");
        }
        sizes.push_back(value);
    }
    if (sizes.empty()) throw std::invalid_argument(path + ": no n-gram counts after \\data\\");
    if (static_cast<int>(sizes.size()) > kMaxOrder) {
        throw fail("order " + std::to_string(sizes.size()) + " exceeds " +
                   std::to_string(kMaxOrder));
    }
    const int order = static_cast<int>(sizes.size());
    // Sized for the unigrams the file can hold (a line takes at least 4 bytes), not for what
    // its header claims: a damaged header must not allocate gigabytes (found by fuzzing).
    const std::int64_t capacity = static_cast<std::int64_t>(std::min<std::uint64_t>(
                                      static_cast<std::uint64_t>(sizes[0]), in.size() / 4)) +
                                  3;
    NgramModel model(order, capacity);
    std::vector<std::string_view> fields;
    bool have_unk = false;
    // The n-grams of orders >= 2 are read and added on two threads: one reads and parses the
    // lines and looks their words up (Vocabulary::find_batch, the misses of a chunk's words
    // overlapped), the other adds them to the model kBatchLines at a time
    // (NgramModel::set_batch, overlapping its own misses). A refused line is reported with its
    // own line number, before any error on a later line.
    constexpr std::size_t kBatchLines = 64;
    constexpr std::size_t kChunkLines = 8192;
    NgramLines chunk;        // being read
    std::string chunk_text;  // its words, copied: a line's view dies with the next read
    std::vector<std::size_t> chunk_word_ends;
    std::vector<std::string_view> chunk_words;
    std::vector<char> has_unigram;  // by id, once the unigrams are read
    const auto add = [&](const NgramLines& lines) {
        const auto nn = static_cast<std::size_t>(lines.n);
        for (std::size_t start = 0; start < lines.size(); start += kBatchLines) {
            const auto count =
                static_cast<std::int64_t>(std::min(kBatchLines, lines.size() - start));
            bool duplicate = false;
            const std::int64_t done =
                model.set_batch(lines.ids.data() + start * nn, lines.n, lines.probs.data() + start,
                                lines.backoffs.data() + start, count, &duplicate);
            if (done < count) {
                throw std::invalid_argument(
                    path + ":" +
                    std::to_string(lines.lines[start + static_cast<std::size_t>(done)]) + ": " +
                    (duplicate ? "a duplicate " + std::to_string(lines.n) +
                                     "-gram (an earlier line of this section has the same words)"
                               : "the n-gram's first n-1 words are not an n-gram of the model"));
            }
        }
    };
    // One n-gram line of order n, checked; unigrams are set at once, longer n-grams batched.
    const auto read_line = [&](int n) {
        fields_of(line, fields);
        const auto nn = static_cast<std::size_t>(n);
        if (fields.size() != nn + 1 && fields.size() != nn + 2) {
            throw fail("a " + std::to_string(n) + "-gram line needs a log10 probability, " +
                       std::to_string(n) + " words and maybe a backoff; got " + quoted(line));
        }
        float prob = 0.0f, backoff = 0.0f;
        if (!parse_float(fields[0], prob)) {
            throw fail("malformed log10 probability " + quoted(fields[0]));
        }
        if (fields.size() == nn + 2 && !parse_float(fields[nn + 1], backoff)) {
            throw fail("malformed log10 backoff " + quoted(fields[nn + 1]));
        }
        // -inf (a zero probability or backoff weight) is a value ARPA files hold (SRILM and
        // KenLM read it, rnnkit writes it); NaN and +inf are no probability or weight.
        if (std::isnan(prob) || std::isnan(backoff)) throw fail("NaN in " + quoted(line));
        if (prob > 0.0f) throw fail("positive log10 probability in " + quoted(line));
        if (backoff == std::numeric_limits<float>::infinity()) {
            throw fail("infinite log10 backoff in " + quoted(line));
        }
        if (n > 1) {  // looked up with the chunk's other words
            for (std::size_t k = 0; k < nn; ++k) {
                chunk_text.append(fields[k + 1]);
                chunk_word_ends.push_back(chunk_text.size());
            }
            chunk.probs.push_back(prob);
            chunk.backoffs.push_back(backoff);
            chunk.lines.push_back(static_cast<std::int64_t>(in.number()));
            return;
        }
        const std::string_view w = fields[1];
        if (!valid_utf8(w)) throw fail("the word " + quoted(w) + " is not UTF-8");
        // Lines split on spaces and tabs; other whitespace (\r, \v, \f) in a word would make
        // a vocabulary no other reader or writer of ours accepts.
        if (!valid_word(w)) throw fail("the word " + quoted(w) + " holds whitespace");
        const std::int32_t id = vocab.add(w);
        if (id == static_cast<std::int32_t>(kBos) && prob <= -99.0f) {
            prob = 0.0f;  // SRILM's -99: <s> is never predicted
        }
        if (id == static_cast<std::int32_t>(kUnk)) have_unk = true;
        float unused_prob, unused_backoff;
        if (model.get(&id, 1, &unused_prob, &unused_backoff)) {
            throw fail("a duplicate unigram " + quoted(fields[1]) +
                       " (an earlier line of this section has the same word)");
        }
        try {
            model.set(&id, 1, prob, backoff);
        } catch (const std::invalid_argument& e) {
            throw fail(e.what());
        }
    };
    std::string after;  // where the file is, for a message: after which section
    // Section n's header, then its lines: read_line for each, `chunk_full` after each line;
    // returns how many were read.
    const auto read_section = [&](int n, const auto& chunk_full) {
        if (!next_nonblank()) throw fail("the file ends before \\" + std::to_string(n) + "-grams:");
        if (trim(line) != "\\" + std::to_string(n) + "-grams:") {
            throw fail("expected '\\" + std::to_string(n) + "-grams:'" + after + ", got " +
                       quoted(line));
        }
        // The header's count of lines, as KenLM reads them: a line past them is no n-gram of
        // this section (see the next header's check).
        const std::int64_t announced = sizes[static_cast<std::size_t>(n - 1)];
        std::int64_t rows = 0;
        while (rows < announced && next_nonblank()) {
            if (section_header()) {
                pending = true;
                break;
            }
            read_line(n);
            ++rows;
            chunk_full();
        }
        return rows;
    };
    // After section n is read and added: its count against the header's.
    const auto check_rows = [&](int n, std::int64_t rows) {
        const std::int64_t announced = sizes[static_cast<std::size_t>(n - 1)];
        if (rows != announced) {
            throw fail("the header announces " + std::to_string(announced) + " " +
                       std::to_string(n) + "-grams, found " + std::to_string(rows));
        }
        after = " after the " + std::to_string(announced) + " " + std::to_string(n) +
                "-grams the header announces";
    };
    check_rows(1, read_section(1, [] {}));
    for (std::int32_t id = 0; id < static_cast<std::int32_t>(vocab.size()); ++id) {
        float unused_prob, unused_backoff;
        has_unigram.push_back(model.get(&id, 1, &unused_prob, &unused_backoff) ? 1 : 0);
    }
    // Orders >= 2: the reader (thread 0) and the adder (thread 1, or thread 0 itself).
    Handoff handoff;
    parallel_region(get_num_threads() > 1 ? 2 : 1, [&](int tid, int team) {
        if (tid == 1) {
            handoff.serve(add);
            return;
        }
        if (tid != 0) return;
        const bool pipelined = team > 1;
        struct CloseOnExit {
            Handoff& handoff;
            ~CloseOnExit() { handoff.close(); }
        } close_on_exit{handoff};
        const auto drain = [&] {
            if (pipelined) handoff.drain();
        };
        // The chunk's words to ids, then the chunk to the adder; a word without a unigram
        // (the special words are in every vocabulary, with a unigram or not) ends the chunk
        // at its line, whose error comes once the lines before it are added.
        const auto submit = [&] {
            const auto nn = static_cast<std::size_t>(chunk.n);
            const std::size_t words = chunk.size() * nn;
            chunk_words.resize(words);
            for (std::size_t i = 0, start = 0; i < words; ++i) {
                chunk_words[i] =
                    std::string_view(chunk_text).substr(start, chunk_word_ends[i] - start);
                start = chunk_word_ends[i];
            }
            chunk.ids.resize(words);
            vocab.find_batch(chunk_words.data(), words, chunk.ids.data());
            std::string error;
            for (std::size_t i = 0; i < words; ++i) {
                const std::int32_t id = chunk.ids[i];
                if (id < 0 || !has_unigram[static_cast<std::size_t>(id)]) {
                    error = path + ":" + std::to_string(chunk.lines[i / nn]) + ": the word " +
                            quoted(chunk_words[i]) + " has no unigram";
                    chunk.truncate(i / nn);
                    break;
                }
            }
            if (pipelined) {
                handoff.give(chunk);  // (kept when this throws, for the same error again)
            } else {
                struct EmptyOnExit {  // added, or refused: never added twice
                    NgramLines& lines;
                    ~EmptyOnExit() { lines.truncate(0); }
                } empty_on_exit{chunk};
                add(chunk);
            }
            chunk_text.clear();
            chunk_word_ends.clear();
            if (!error.empty()) {
                drain();
                throw std::invalid_argument(error);
            }
        };
        try {
            for (int n = 2; n <= order; ++n) {
                chunk.n = n;
                const std::int64_t rows = read_section(n, [&] {
                    if (chunk.size() == kChunkLines) submit();
                });
                submit();
                drain();
                check_rows(n, rows);
            }
            if (!next_nonblank() || trim(line) != "\\end\\") {
                throw fail("expected '\\end\\'" + after + ", got " + quoted(line));
            }
        } catch (...) {
            // The lines read so far, added first: an error among them comes before this one.
            if (chunk.size() > 0) submit();
            drain();
            throw;
        }
    });
    if (!have_unk) {
        const std::int32_t unk = static_cast<std::int32_t>(kUnk);
        model.set(&unk, 1, -100.0f, 0.0f);
    }
    model.shrink_vocabulary(vocab.size());
    model.compact();
    return model;
}

}  // namespace rnnkit::ngram
