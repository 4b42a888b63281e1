#include "ngram/vocab.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace rnnkit::ngram {

namespace {

// FNV-1a over the word's bytes, then a finaliser so that the low bits pick the slot.
std::uint64_t hash_word(std::string_view w) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (char c : w) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

}  // namespace

Vocabulary::Vocabulary() {
    slots_.assign(1024, 0);
    add("<unk>");
    add("<s>");
    add("</s>");
}

std::pair<std::size_t, std::int32_t> Vocabulary::probe(std::string_view word,
                                                       std::uint64_t hash) const {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t slot = hash & mask;; slot = (slot + 1) & mask) {
        const std::int32_t e = slots_[slot];
        if (e == 0) return {slot, -1};
        if (words_[static_cast<std::size_t>(e - 1)] == word) return {slot, e - 1};
    }
}

std::int32_t Vocabulary::find(std::string_view word) const {
    return probe(word, hash_word(word)).second;
}

void Vocabulary::find_batch(const std::string_view* words, std::size_t n, std::int32_t* ids) const {
    // In groups: hash every word of the group and prefetch its home slot, then prefetch the
    // word each slot points at, then probe, so that the group's cache misses overlap.
    constexpr std::size_t kGroup = 16;
    const std::size_t mask = slots_.size() - 1;
    std::uint64_t hashes[kGroup];
    for (std::size_t g = 0; g < n; g += kGroup) {
        const std::size_t m = std::min(kGroup, n - g);
        for (std::size_t i = 0; i < m; ++i) {
            hashes[i] = hash_word(words[g + i]);
            __builtin_prefetch(slots_.data() + (hashes[i] & mask));
        }
        for (std::size_t i = 0; i < m; ++i) {
            const std::int32_t e = slots_[hashes[i] & mask];
            if (e != 0) __builtin_prefetch(words_.data() + (e - 1));
        }
        for (std::size_t i = 0; i < m; ++i) ids[g + i] = probe(words[g + i], hashes[i]).second;
    }
}

void Vocabulary::rehash(std::size_t size) {
    slots_.assign(size, 0);
    const std::size_t mask = size - 1;
    for (std::size_t id = 0; id < words_.size(); ++id) {
        std::size_t slot = hashes_[id] & mask;
        while (slots_[slot] != 0) slot = (slot + 1) & mask;
        slots_[slot] = static_cast<std::int32_t>(id + 1);
    }
}

std::int32_t Vocabulary::add(std::string_view word) {
    const std::uint64_t hash = hash_word(word);
    const auto [slot, found] = probe(word, hash);
    if (found >= 0) return found;
    if (words_.size() >= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max() - 1)) {
        throw std::length_error("the vocabulary is full (2^31 - 2 words)");
    }
    const auto id = static_cast<std::int32_t>(words_.size());
    words_.emplace_back(word);
    hashes_.push_back(hash);
    if (2 * words_.size() > slots_.size()) {
        rehash(slots_.size() * 2);
    } else {
        slots_[slot] = id + 1;
    }
    return id;
}

void Vocabulary::truncate(std::int64_t size) {
    if (size < 3 || size > this->size()) {
        throw std::invalid_argument("cannot truncate a vocabulary of " +
                                    std::to_string(this->size()) + " ids to " +
                                    std::to_string(size));
    }
    if (size == this->size()) return;
    words_.resize(static_cast<std::size_t>(size));
    hashes_.resize(static_cast<std::size_t>(size));
    rehash(slots_.size());
}

void Vocabulary::encode_lines(std::string_view text, bool grow, std::vector<std::int32_t>& ids,
                              std::vector<std::int64_t>& offsets,
                              std::vector<std::uint64_t>* counts, bool check_utf8,
                              std::int64_t first_line) {
    const std::int64_t size_before = size();
    const std::size_t offsets_before = offsets.size();
    std::size_t pos = 0;
    const std::size_t n = text.size();
    try {
        while (pos < n) {
            // One line: [pos, end).
            std::size_t end = text.find('\n', pos);
            if (end == std::string_view::npos) end = n;
            std::size_t i = pos;
            while (i < end) {
                while (i < end && is_space(text[i])) ++i;
                std::size_t j = i;
                // The OR of the word's bytes: only a word with a byte >= 0x80 needs the UTF-8
                // check (words are split at ASCII bytes, which no multi-byte sequence holds,
                // so checking each word checks the whole line).
                unsigned char high = 0;
                while (j < end && !is_space(text[j])) high |= static_cast<unsigned char>(text[j++]);
                if (j > i) {
                    const std::string_view word = text.substr(i, j - i);
                    if (check_utf8 && (high & 0x80)) {
                        const std::size_t bad = invalid_utf8_at(word);
                        if (bad != std::string_view::npos) {
                            static const char kHex[] = "0123456789abcdef";
                            const auto byte = static_cast<unsigned char>(word[bad]);
                            throw std::invalid_argument(
                                "the text is not valid UTF-8: line " +
                                std::to_string(first_line + static_cast<std::int64_t>(
                                                                offsets.size() - offsets_before)) +
                                " has the byte 0x" + kHex[byte >> 4] + kHex[byte & 15] +
                                " at column " + std::to_string(i + bad - pos + 1) +
                                " (decode the text, or fix its encoding)");
                        }
                    }
                    std::int32_t id = grow ? add(word) : find(word);
                    if (id < 0) id = 0;
                    ids.push_back(id);
                    if (counts) {
                        if (static_cast<std::size_t>(id) >= counts->size()) {
                            counts->resize(static_cast<std::size_t>(id) + 1, 0);
                        }
                        ++(*counts)[static_cast<std::size_t>(id)];
                    }
                }
                i = j;
            }
            offsets.push_back(static_cast<std::int64_t>(ids.size()));
            pos = end + 1;
        }
    } catch (...) {
        truncate(size_before);
        throw;
    }
}

std::size_t invalid_utf8_at(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        std::size_t extra;
        std::uint32_t cp;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            extra = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            extra = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (i + extra >= text.size()) return i;  // truncated sequence
        for (std::size_t k = 1; k <= extra; ++k) {
            const auto d = static_cast<unsigned char>(text[i + k]);
            if ((d & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (d & 0x3F);
        }
        static const std::uint32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += extra + 1;
    }
    return std::string_view::npos;
}

}  // namespace rnnkit::ngram
