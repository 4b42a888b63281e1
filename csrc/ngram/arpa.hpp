// ARPA text output of an NgramModel, with lmplz's conventions (lm/common/print.cc): a header
// of counts, then per order one line per n-gram, `log10 prob<TAB>words[<TAB>log10 backoff]`
// (no backoff column at the top order), values as the shortest text that reads back as the
// same float32. Lines come in storage order (unigrams by id, then the partitions by first
// word), not lmplz's suffix order: readers do not care, and sorting cost more than the rest.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "ngram/model.hpp"
#include "ngram/vocab.hpp"

namespace rnnkit::ngram {

// The shortest text of a float32 that reads back as the same value, in plain decimal when its
// decimal exponent is in [-6, 20] and as `1.5e-7` otherwise (double-conversion's
// ToShortestSingle with decimal range [-6, 21), which KenLM uses). Writes at most 32 bytes
// into `out`; returns the length.
int format_float(float value, char* out);

// Writes the model to `path` (created or truncated). Throws std::runtime_error on I/O errors.
void write_arpa(const NgramModel& model, const Vocabulary& vocab, const std::string& path);

// The lines of `rows` n-grams of order n (words row-major [rows, n], their log10 probabilities
// and backoffs; no backoff column when n is the top order), appended to `text`.
void append_arpa_lines(std::string& text, const Vocabulary& vocab, int n, int top,
                       const std::int32_t* words, const float* probs, const float* backoffs,
                       std::size_t rows);
// An ARPA file put together from pieces: the header of `sizes` (n-grams of orders 1..N), then
// for each order n its section, whose lines body(n, put) passes to put in order.
void write_arpa_pieces(
    const std::string& path, const std::vector<std::int64_t>& sizes,
    const std::function<void(int, const std::function<void(const std::string&)>&)>& body);

// Reads an ARPA file, streaming: lmplz's, and what KenLM reads besides (SRILM's comment lines
// before \data\ and -99 for <s>, read as 0: <s> is never predicted; missing backoffs; CRLF
// line ends; fields separated by tabs or spaces; no blank line before a section header, blank
// lines inside a section; a '+' sign on a number). Unigrams' words are added to `vocab` (which
// must be fresh: the 3 special words only) in file order. A missing <unk> gets log10 prob
// -100, as in KenLM. The n-grams of orders >= 2 are read on the calling thread and added to
// the model on another (a parallel region of two threads when there are two). Throws
// std::invalid_argument "path:line: message" for a malformed file (the first error in the
// file's order), std::runtime_error when it cannot be read.
NgramModel read_arpa(const std::string& path, Vocabulary& vocab);

}  // namespace rnnkit::ngram
