// The shapes, weights and weight gradients of one recurrent layer-direction, shared by the CPU
// kernels (bptt/sequence.hpp) and the CUDA backend (cuda/sequence.hpp). Plain C++: the CUDA
// backend's headers include it in nvcc-compiled code.
#pragma once

#include <cstdint>

namespace rnnkit {

struct SeqShape {
    std::int64_t T;  // time steps
    std::int64_t B;  // batch
    std::int64_t I;  // input size
    std::int64_t H;  // hidden (cell) size
    std::int64_t R;  // recurrent state size: P for an LSTM with projection, else H
};

template <typename T>
struct CellWeights {
    const T* w_ih;       // [G*H, I]
    const T* w_hh;       // [G*H, R]
    const T* b_ih;       // [G*H] or null
    const T* b_hh;       // [G*H] or null
    const T* w_hr;       // LSTM projection [P, H] or null
    const T* peepholes;  // LSTM [3, H] (i, f, o) or null
};

// Gradients of the weights, written (not accumulated) in PyTorch's layout.
template <typename T>
struct WeightGrads {
    T* dw_ih;       // [G*H, I]
    T* dw_hh;       // [G*H, R]
    T* db_ih;       // [G*H] or null (no bias)
    T* db_hh;       // [G*H] or null (no bias)
    T* dw_hr;       // [P, H] or null (no projection)
    T* dpeepholes;  // [3, H] or null (no peepholes)
};

}  // namespace rnnkit
