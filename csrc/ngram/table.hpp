// The open-addressing tables shared by the count store and the model: n-gram keys
// (prefix entry, last word) packed in 64 bits, linear probing over a power-of-two array of
// entry index + 1 (0 = empty), kept at most half full. `Table` is any struct with a vector
// `slots` (uint32) and the members size(), prefix_at(e), word_at(e) and append(prefix, word)
// (a new entry with zero values): the count store keeps its columns apart, the model keeps
// each entry's key and values in one record (one cache line per lookup).
#pragma once

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

namespace rnnkit::ngram::table {

constexpr std::size_t kInitialSlots = 1024;

inline std::uint64_t pack(std::uint32_t prefix, std::uint32_t word) {
    return (static_cast<std::uint64_t>(prefix) << 32) | word;
}

// A 64-bit finaliser (MurmurHash3's fmix64): every key bit reaches every slot bit, so the
// slot index can be the low bits.
inline std::uint64_t mix(std::uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

template <typename Table>
std::int64_t find(const Table& t, std::uint32_t prefix, std::uint32_t word) {
    const std::size_t mask = t.slots.size() - 1;
    for (std::size_t slot = mix(pack(prefix, word)) & mask;; slot = (slot + 1) & mask) {
        const std::uint32_t e = t.slots[slot];
        if (e == 0) return -1;
        if (t.prefix_at(e - 1) == prefix && t.word_at(e - 1) == word) return e - 1;
    }
}

// Doubles the slot array and places every entry again.
template <typename Table>
void grow(Table& t) {
    const std::size_t size = t.slots.size() * 2;
    t.slots.assign(size, 0);
    const std::size_t mask = size - 1;
    for (std::size_t e = 0; e < t.size(); ++e) {
        std::size_t slot = mix(pack(t.prefix_at(e), t.word_at(e))) & mask;
        while (t.slots[slot] != 0) slot = (slot + 1) & mask;
        t.slots[slot] = static_cast<std::uint32_t>(e + 1);
    }
}

// Slots sized for the entries there are (as rebuild), every entry placed; false as soon as
// an entry repeats the key of an earlier one (a damaged serialized store).
template <typename Table>
bool rebuild_unique(Table& t) {
    std::size_t size = kInitialSlots;
    while (size < 2 * t.size()) size *= 2;
    t.slots.assign(size, 0);
    const std::size_t mask = size - 1;
    for (std::size_t e = 0; e < t.size(); ++e) {
        const std::uint32_t prefix = t.prefix_at(e), word = t.word_at(e);
        std::size_t slot = mix(pack(prefix, word)) & mask;
        for (; t.slots[slot] != 0; slot = (slot + 1) & mask) {
            const std::uint32_t other = t.slots[slot] - 1;
            if (t.prefix_at(other) == prefix && t.word_at(other) == word) return false;
        }
        t.slots[slot] = static_cast<std::uint32_t>(e + 1);
    }
    return true;
}

// Slots sized for the entries there are, every entry placed.
template <typename Table>
void rebuild(Table& t) {
    std::size_t size = kInitialSlots;
    while (size < 2 * t.size()) size *= 2;
    t.slots.assign(size / 2, 0);
    grow(t);
}

// The entry of (prefix, word), appended when new; `added` says which.
template <typename Table>
std::uint32_t find_or_add(Table& t, std::uint32_t prefix, std::uint32_t word, bool* added) {
    const std::size_t mask = t.slots.size() - 1;
    std::size_t slot = mix(pack(prefix, word)) & mask;
    for (;; slot = (slot + 1) & mask) {
        const std::uint32_t e = t.slots[slot];
        if (e == 0) break;
        if (t.prefix_at(e - 1) == prefix && t.word_at(e - 1) == word) {
            *added = false;
            return e - 1;
        }
    }
    const std::size_t index = t.size();
    if (index >= std::numeric_limits<std::uint32_t>::max() - 1) {
        throw std::length_error(
            "more than 2^32 - 2 distinct n-grams of one order in one partition");
    }
    t.append(prefix, word);
    *added = true;
    if (2 * (index + 1) > t.slots.size()) {
        grow(t);  // re-places every entry, this one included
    } else {
        t.slots[slot] = static_cast<std::uint32_t>(index + 1);
    }
    return static_cast<std::uint32_t>(index);
}

}  // namespace rnnkit::ngram::table
