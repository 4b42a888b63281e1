#include "bptt/schedule.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace rnnkit::bptt {

Schedule::Schedule(std::int64_t T, std::int64_t B, const std::int64_t* lengths, bool reverse)
    : T_(T), B_(B), reverse_(reverse), order_(static_cast<std::size_t>(B)) {
    std::iota(order_.begin(), order_.end(), std::int64_t{0});
    length_.assign(static_cast<std::size_t>(B), T);
    if (lengths) {
        // Longest first; ties keep batch order, so the schedule is a function of the lengths.
        std::stable_sort(order_.begin(), order_.end(),
                         [&](std::int64_t a, std::int64_t b) { return lengths[a] > lengths[b]; });
        for (std::int64_t i = 0; i < B; ++i) length_[i] = lengths[order_[i]];
    }
    build_steps();
    identity_ = !reverse && rows() == T * B;
}

Schedule Schedule::from_batch_sizes(std::int64_t T, const std::int64_t* batch_sizes, bool reverse) {
    const std::int64_t B = T > 0 ? batch_sizes[0] : 0;
    Schedule sc(0, B, nullptr, reverse);
    sc.T_ = T;
    // Row i runs at the times t with batch_sizes[t] > i: its length counts them.
    std::fill(sc.length_.begin(), sc.length_.end(), std::int64_t{0});
    for (std::int64_t t = 0; t < T; ++t) {
        for (std::int64_t i = 0; i < batch_sizes[t]; ++i) ++sc.length_[static_cast<std::size_t>(i)];
    }
    sc.build_steps();
    sc.packed_input_ = true;
    sc.identity_ = !reverse;
    return sc;
}

void Schedule::build_steps() {
    const std::int64_t longest = B_ > 0 ? length_[0] : 0;
    active_.assign(static_cast<std::size_t>(longest) + 1, 0);
    offset_.assign(static_cast<std::size_t>(longest) + 1, 0);
    std::int64_t running = B_;
    for (std::int64_t s = 0; s < longest; ++s) {
        while (running > 0 && length_[running - 1] <= s) --running;
        active_[s] = running;
        offset_[s + 1] = offset_[s] + running;
    }
}

void Schedule::gather(std::int64_t s0, std::int64_t s1, const void* src, std::size_t row_bytes,
                      void* dst) const {
    const auto* in = static_cast<const unsigned char*>(src);
    auto* out = static_cast<unsigned char*>(dst);
    for (std::int64_t s = s0; s < s1; ++s) {
        for (std::int64_t i = 0; i < active(s); ++i) {
            std::memcpy(out + static_cast<std::size_t>(offset(s) - offset(s0) + i) * row_bytes,
                        in + static_cast<std::size_t>(source_row(s, i)) * row_bytes, row_bytes);
        }
    }
}

void Schedule::scatter(const void* src, std::size_t row_bytes, void* dst) const {
    const auto* in = static_cast<const unsigned char*>(src);
    auto* out = static_cast<unsigned char*>(dst);
    if (rows() < caller_rows()) {
        std::memset(out, 0, static_cast<std::size_t>(caller_rows()) * row_bytes);
    }
    for (std::int64_t s = 0; s < steps(); ++s) {
        for (std::int64_t i = 0; i < active(s); ++i) {
            std::memcpy(out + static_cast<std::size_t>(source_row(s, i)) * row_bytes,
                        in + static_cast<std::size_t>(offset(s) + i) * row_bytes, row_bytes);
        }
    }
}

void Schedule::sort_rows(const void* src, std::size_t row_bytes, void* dst) const {
    const auto* in = static_cast<const unsigned char*>(src);
    auto* out = static_cast<unsigned char*>(dst);
    for (std::int64_t i = 0; i < B_; ++i) {
        std::memcpy(out + static_cast<std::size_t>(i) * row_bytes,
                    in + static_cast<std::size_t>(batch_of(i)) * row_bytes, row_bytes);
    }
}

void Schedule::unsort_rows(const void* src, std::size_t row_bytes, void* dst) const {
    const auto* in = static_cast<const unsigned char*>(src);
    auto* out = static_cast<unsigned char*>(dst);
    for (std::int64_t i = 0; i < B_; ++i) {
        std::memcpy(out + static_cast<std::size_t>(batch_of(i)) * row_bytes,
                    in + static_cast<std::size_t>(i) * row_bytes, row_bytes);
    }
}

}  // namespace rnnkit::bptt
