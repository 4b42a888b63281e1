// A vocabulary of words (byte strings, UTF-8 by convention) and the tokenizer that turns text
// into the id arrays the count store reads: lines are sentences, words are separated by ASCII
// whitespace. Ids 0, 1, 2 are <unk>, <s>, </s>; words get the next free id in order of first
// appearance. Lookups hash the bytes in place (no string is built per token).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/access.hpp"

namespace rnnkit::ngram {

class Vocabulary {
public:
    Vocabulary();

    // Who is using the vocabulary (see NgramCounts::access).
    mutable AccessState access;

    std::int64_t size() const { return static_cast<std::int64_t>(words_.size()); }
    // The id of `word`, or -1.
    std::int32_t find(std::string_view word) const;
    // ids[i] = find(words[i]) for i < n (the lookups' cache misses overlapped).
    void find_batch(const std::string_view* words, std::size_t n, std::int32_t* ids) const;
    // The id of `word`, added at the end when new.
    std::int32_t add(std::string_view word);
    const std::string& word(std::int32_t id) const { return words_[static_cast<std::size_t>(id)]; }

    // Tokenizes `text` (lines = sentences, including empty lines, except an empty last segment
    // after a final newline) and appends each sentence's ids to `ids` and its end to `offsets`.
    // Unknown words are added when `grow`, else mapped to <unk> (0). When `counts` is given, it
    // gets +1 per token at the token's id (resized as needed). With `check_utf8` (text that
    // came as bytes), a line that is not UTF-8 throws std::invalid_argument naming it (lines
    // numbered from `first_line`); on any error the vocabulary is as it was before the call.
    void encode_lines(std::string_view text, bool grow, std::vector<std::int32_t>& ids,
                      std::vector<std::int64_t>& offsets,
                      std::vector<std::uint64_t>* counts = nullptr, bool check_utf8 = false,
                      std::int64_t first_line = 1);
    // Drops the words of ids >= `size` (size >= 3): undoes the words added since the
    // vocabulary had `size` ids.
    void truncate(std::int64_t size);

private:
    // (the slot holding `word`, or the empty slot where it would go; its id or -1).
    std::pair<std::size_t, std::int32_t> probe(std::string_view word, std::uint64_t hash) const;
    void rehash(std::size_t size);

    std::vector<std::string> words_;
    std::vector<std::uint64_t> hashes_;  // by id (growing the table does not hash again)
    std::vector<std::int32_t> slots_;    // id + 1, 0 = empty; power-of-two size, <= half full
};

// Whether `c` separates words (ASCII whitespace other than the newline between sentences).
inline bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

// The offset of the first byte of `text` that is not part of well-formed UTF-8 (overlong
// forms, surrogates and values past U+10FFFF are not), or std::string_view::npos.
std::size_t invalid_utf8_at(std::string_view text);

// Whether `text` is well-formed UTF-8.
inline bool valid_utf8(std::string_view text) {
    return invalid_utf8_at(text) == std::string_view::npos;
}

// Whether `word` can be a word of a vocabulary read from or written to a file: non-empty,
// UTF-8, without whitespace (ARPA lines split on it).
inline bool valid_word(std::string_view word) {
    if (word.empty() || !valid_utf8(word)) return false;
    for (char c : word) {
        if (is_space(c) || c == '\n') return false;
    }
    return true;
}

}  // namespace rnnkit::ngram
