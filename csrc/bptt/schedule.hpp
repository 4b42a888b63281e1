// Which batch rows run at which step of a time loop, for variable lengths and either direction.
//
// The rows are sorted by length, longest first (stable), so that at step s the rows still
// running are the first n_s of them: every recurrent GEMM and pointwise pass covers exactly
// the real tokens, with no padding work (the layout of PyTorch's PackedSequence, built here
// from a lengths array). Step s of sorted row i reads time
//   t = s                    (forward direction)
//   t = length[i] - 1 - s    (reverse: each sequence starts at its own last step),
// so the set of running rows is the same in both directions.
//
// Packed layout: the values of step s, row i < n_s, sit at row offset[s] + i of a [N, cols]
// array, N the number of real tokens. Without lengths in the forward direction (`identity`),
// packed row s*B + i is row t*B + b of the caller's [T, B, cols] array, so nothing is copied.
//
// The caller's arrays may themselves be packed (`from_batch_sizes`, PyTorch's PackedSequence
// data): [N, cols] with the batch already in that order, time t of row i at row offset[t] + i.
// Then a forward pass is the identity too, and a reverse one gathers without any padding.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace rnnkit::bptt {

class Schedule {
public:
    // lengths: [B] values in [0, T], or null for "all T". The caller validates the values.
    Schedule(std::int64_t T, std::int64_t B, const std::int64_t* lengths, bool reverse);
    // The caller's arrays are packed: batch_sizes [T] (non-increasing, values >= 0; the caller
    // validates them) rows run at time t, B = batch_sizes[0].
    static Schedule from_batch_sizes(std::int64_t T, const std::int64_t* batch_sizes, bool reverse);

    std::int64_t T() const { return T_; }
    std::int64_t B() const { return B_; }
    bool reverse() const { return reverse_; }
    // Packed rows coincide with the caller's rows.
    bool identity() const { return identity_; }
    // The caller's arrays are packed [N, cols] rather than [T, B, cols].
    bool packed_input() const { return packed_input_; }
    // Rows of the caller's x, y, dy and dx arrays: N when packed, else T*B.
    std::int64_t caller_rows() const { return packed_input_ ? rows() : T_ * B_; }
    // Number of steps: the longest length.
    std::int64_t steps() const { return static_cast<std::int64_t>(active_.size()) - 1; }
    // Rows running at step s (0 for s == steps()).
    std::int64_t active(std::int64_t s) const { return active_[static_cast<std::size_t>(s)]; }
    // Packed row of (step s, row 0); offset(steps()) == rows().
    std::int64_t offset(std::int64_t s) const { return offset_[static_cast<std::size_t>(s)]; }
    // N: real tokens.
    std::int64_t rows() const { return offset_.back(); }
    // Batch index of sorted row i.
    std::int64_t batch_of(std::int64_t i) const { return order_[static_cast<std::size_t>(i)]; }
    std::int64_t length_of(std::int64_t i) const { return length_[static_cast<std::size_t>(i)]; }
    // Row of the caller's arrays that (step s, sorted row i) reads or writes.
    std::int64_t source_row(std::int64_t s, std::int64_t i) const {
        const std::int64_t t = reverse_ ? length_of(i) - 1 - s : s;
        return packed_input_ ? offset(t) + i : t * B_ + batch_of(i);
    }

    // Row copies between layouts, `row_bytes` bytes per row (out of line: these run in every
    // ISA variant of the kernels, see bptt/kernels.hpp).
    // dst[packed rows of steps s0..s1)] = src[source rows].
    void gather(std::int64_t s0, std::int64_t s1, const void* src, std::size_t row_bytes,
                void* dst) const;
    // The inverse of gather over all steps; rows of dst that no token maps to (padding of a
    // [T, B, cols] array) are zeroed.
    void scatter(const void* src, std::size_t row_bytes, void* dst) const;
    // dst[i] = src[batch_of(i)] (to sorted order), and back.
    void sort_rows(const void* src, std::size_t row_bytes, void* dst) const;
    void unsort_rows(const void* src, std::size_t row_bytes, void* dst) const;

private:
    // Steps, active rows and offsets from length_ (non-increasing).
    void build_steps();

    std::int64_t T_, B_;
    bool reverse_;
    bool identity_;
    bool packed_input_ = false;
    std::vector<std::int64_t> order_;   // [B] sorted row -> batch index
    std::vector<std::int64_t> length_;  // [B] length of sorted row (non-increasing)
    std::vector<std::int64_t> active_;  // [S+1] rows running at step s; active_[S] = 0
    std::vector<std::int64_t> offset_;  // [S+1] packed row of (s, 0)
};

}  // namespace rnnkit::bptt
