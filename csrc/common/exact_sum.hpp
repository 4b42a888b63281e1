// The correctly rounded sum of a stream of doubles: the same number as Python's math.fsum of
// the same values (the sign of a zero sum aside: this one is +0), in any order and split
// among any number of partial sums.
//
// Shewchuk's method ("Adaptive precision floating-point arithmetic and fast robust geometric
// predicates", 1997): the running sum is kept exactly as a few non-overlapping partials, each
// added value is folded into them with error-free two-sums, and the final rounding reads the
// partials from the largest down, correcting a half-way case the way round-half-even would
// have rounded the exact sum.
#pragma once

#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <utility>
#include <vector>

namespace rnnkit {

class ExactSum {
public:
    void add(double x) {
        if (!std::isfinite(x)) {  // IEEE arithmetic (math.fsum raises where inf + -inf is NaN)
            special_ += x;
            has_special_ = true;
            return;
        }
        if (x == 0.0) return;
        std::size_t kept = 0;
        for (std::size_t i = 0; i < partials_.size(); ++i) {
            double y = partials_[i];
            if (std::fabs(x) < std::fabs(y)) std::swap(x, y);
            const double hi = x + y;
            const double lo = y - (hi - x);  // exact: hi + lo == x + y
            if (lo != 0.0) partials_[kept++] = lo;
            x = hi;
        }
        if (!std::isfinite(x)) {
            // (math.fsum raises OverflowError too; no sum of log probabilities gets here)
            throw std::overflow_error("intermediate overflow in an exact sum");
        }
        partials_.resize(kept);
        partials_.push_back(x);
    }

    // Adds every value that `other` has summed (exactly: its partials are its exact sum).
    void add(const ExactSum& other) {
        for (const double p : other.partials_) add(p);
        if (other.has_special_) add(other.special_);
    }

    double value() const {
        if (has_special_) return special_;
        std::size_t n = partials_.size();
        if (n == 0) return 0.0;
        double hi = partials_[--n];
        double lo = 0.0;
        while (n > 0) {
            const double x = hi;
            const double y = partials_[--n];
            hi = x + y;
            lo = y - (hi - x);
            if (lo != 0.0) break;
        }
        // hi + lo is the sum of the partials read so far, and the ones left below are
        // smaller than half an ulp of hi. When lo is exactly half an ulp and they push the
        // same way, the exact sum lies past the half-way point: round away from hi.
        if (n > 0 &&
            ((lo < 0.0 && partials_[n - 1] < 0.0) || (lo > 0.0 && partials_[n - 1] > 0.0))) {
            const double twice = lo * 2.0;
            const double x = hi + twice;
            if (twice == x - hi) hi = x;
        }
        return hi;
    }

private:
    std::vector<double> partials_;  // non-overlapping, by increasing magnitude
    double special_ = 0.0;
    bool has_special_ = false;
};

}  // namespace rnnkit
