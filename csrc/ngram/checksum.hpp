// The checksum of rnnkit's binary formats (the n-gram model file, the count store's bytes
// from format version 2): four FNV-style multiply-xor lanes over the 8-byte words of each
// 32-byte block, so that it runs at memory speed, then the byte count of the blocks and the
// bytes left over folded in one by one. Words are read in the host's byte order (the formats
// are little-endian, as every host rnnkit builds for).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace rnnkit::ngram {

// Checksum of a byte stream fed in pieces: four independent multiply-xor lanes over 8-byte
// words (so it runs at memory speed), bytes that do not fill a word carried to the next piece.
class Checksum {
public:
    void add(const void* data, std::size_t n) {
        const auto* p = static_cast<const unsigned char*>(data);
        while (n > 0 && pending_ > 0) {
            push_byte(*p++);
            --n;
        }
        while (n >= 32) {
            for (int lane = 0; lane < 4; ++lane) {
                std::uint64_t w;
                std::memcpy(&w, p + 8 * lane, 8);
                mix(lane, w);
            }
            p += 32;
            n -= 32;
        }
        while (n-- > 0) push_byte(*p++);
    }
    std::uint64_t value() const {
        std::uint64_t h = 0xcbf29ce484222325ULL ^ total_;
        for (int lane = 0; lane < 4; ++lane) h = (h ^ lanes_[lane]) * kPrime;
        for (std::size_t i = 0; i < pending_; ++i) h = (h ^ buffer_[i]) * kPrime;
        return h;
    }

private:
    static constexpr std::uint64_t kPrime = 0x100000001b3ULL;
    void mix(int lane, std::uint64_t w) {
        lanes_[lane] = (lanes_[lane] ^ w) * kPrime;
        total_ += 8;
    }
    void push_byte(unsigned char b) {
        buffer_[pending_++] = b;
        if (pending_ == 32) {
            for (int lane = 0; lane < 4; ++lane) {
                std::uint64_t w;
                std::memcpy(&w, buffer_ + 8 * lane, 8);
                mix(lane, w);
            }
            pending_ = 0;
        }
    }
    std::uint64_t lanes_[4] = {0xcbf29ce484222325ULL, 1, 2, 3};
    std::uint64_t total_ = 0;
    unsigned char buffer_[32] = {};
    std::size_t pending_ = 0;
};

}  // namespace rnnkit::ngram
