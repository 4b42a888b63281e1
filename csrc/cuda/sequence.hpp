// The CUDA backend's whole-sequence forward and BPTT backward for one layer and one direction
// of the LSTM, GRU and vanilla RNN: the device mirror of bptt/sequence.hpp (same weights,
// gate order and options; see that file).
//
// Layouts are PyTorch's and time-major: x [T, B, I], y [T, B, R], states [B, R] (R = P for
// an LSTM with projection, else H), w_ih [G*H, I], w_hh [G*H, R]; every pointer is device
// memory (host memory for the host executor). The training cache is time-indexed: the state
// before step t is h[t] (h[0] the initial state, h[T] the final one), so backward's weight
// gradients are single GEMMs over all T*B rows.
//
// Variable lengths: `lengths` is a device int32 [B] array or null (all T); a row stops at its
// length, keeping its state, with zero outputs past it. Reverse runs each sequence from its own
// last step: the loops reverse each row's first lengths[b] steps of x (and of dy), run forward
// in time, and reverse y (and dx) back.
//
// The loops are templates over an executor (sequence_loops.hpp): the CUDA executor
// (device_executor.cuh, kernels and cuBLAS) and the host executor (host_executor.hpp), which
// runs the same loops on the CPU so that CI checks them against the reference without a GPU.
#pragma once

#include <cstdint>

#include "common/recurrent_types.hpp"
#include "cuda/gates.hpp"

namespace rnnkit::cuda {

using Dims = SeqShape;  // T, B, I, H, R
template <typename T>
using Weights = CellWeights<T>;
// Written, not accumulated; a null pointer is a gradient the caller does not want (no bias,
// no projection, no peepholes).
template <typename T>
using Grads = WeightGrads<T>;

enum class Cell { Lstm = 0, Gru = 1, Rnn = 2 };

struct Options {
    bool reverse = false;
    bool input_forget = false;          // LSTM CIFG
    bool linear_before_reset = true;    // GRU
    Activation act = Activation::Tanh;  // RNN
    double clip = INFINITY;             // +inf: off
};

inline std::int64_t gate_count(Cell cell) {
    return cell == Cell::Lstm ? 4 : (cell == Cell::Gru ? 3 : 1);
}

// The training cache; which buffers a cell uses, and their sizes, come from cache_sizes.
template <typename T>
struct Cache {
    T* x_rev;  // [T, B, I] the row-reversed input (reverse only)
    T* gates;  // [T, B, G*H] activated gates (LSTM, GRU)
    T* h;      // [T+1, B, R]
    T* c;      // [T+1, B, H] (LSTM)
    T* m;      // [T, B, H] o * tanh(c) (LSTM with projection)
    T* hn;     // [T, B, H] W_hn h + b_hn, or r * h (GRU)
};

// Element counts of each Cache buffer (0: unused).
struct CacheSizes {
    std::int64_t x_rev, gates, h, c, m, hn;
};

inline CacheSizes cache_sizes(Cell cell, const Dims& d, bool projected, bool reverse) {
    const std::int64_t rows = d.T * d.B;
    CacheSizes s{};
    s.x_rev = reverse ? rows * d.I : 0;
    s.h = (d.T + 1) * d.B * d.R;
    if (cell != Cell::Rnn) s.gates = rows * gate_count(cell) * d.H;
    if (cell == Cell::Lstm) {
        s.c = (d.T + 1) * d.B * d.H;
        s.m = projected ? rows * d.H : 0;
    }
    if (cell == Cell::Gru) s.hn = rows * d.H;
    return s;
}

}  // namespace rnnkit::cuda
