#include "bptt/schedule.hpp"

#include <algorithm>
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
    const std::int64_t longest = B > 0 ? length_[0] : 0;
    active_.assign(static_cast<std::size_t>(longest) + 1, 0);
    offset_.assign(static_cast<std::size_t>(longest) + 1, 0);
    std::int64_t running = B;
    for (std::int64_t s = 0; s < longest; ++s) {
        while (running > 0 && length_[running - 1] <= s) --running;
        active_[s] = running;
        offset_[s + 1] = offset_[s] + running;
    }
    identity_ = !reverse && rows() == T * B;
}

}  // namespace rnnkit::bptt
