// Whole-sequence forward and BPTT backward for one layer and one direction of the LSTM, GRU
// and vanilla RNN. Time-major: x [T, B, I], states [B, H], y [T, B, H].
//
// Weights are PyTorch's, unchanged: w_ih [G*H, I], w_hh [G*H, H], b_ih, b_hh [G*H] (either
// bias may be null), gates LSTM (i, f, g, o), GRU (r, z, n), RNN one gate. Any state or
// incoming-gradient pointer documented as nullable means "zeros".
//
// The training cache is owned by the caller (the binding allocates it as NumPy arrays), so
// forward writes into it and backward only reads it: a cache can be used for several
// backward calls. Its gate buffers use rnnkit's internal block-interleaved layout (see
// engine.hpp); h and c are plain [T+1, B, H] with index 0 the initial state.
//
// All functions are pure C++ (no Python), run on rnnkit::get_num_threads() threads and are
// bit-deterministic for any thread count. Outputs may not alias inputs.
#pragma once

#include <cstdint>

#include "rnn/gates.hpp"

namespace rnnkit::bptt {

struct SeqShape {
    std::int64_t T;  // time steps
    std::int64_t B;  // batch
    std::int64_t I;  // input size
    std::int64_t H;  // hidden size
};

template <typename T>
struct CellWeights {
    const T* w_ih;  // [G*H, I]
    const T* w_hh;  // [G*H, H]
    const T* b_ih;  // [G*H] or null
    const T* b_hh;  // [G*H] or null
};

// Gradients of the weights, written (not accumulated) in PyTorch's layout.
template <typename T>
struct WeightGrads {
    T* dw_ih;  // [G*H, I]
    T* dw_hh;  // [G*H, H]
    T* db_ih;  // [G*H] or null (no bias)
    T* db_hh;  // [G*H] or null (no bias)
};

// ---------------------------------------------------------------- LSTM (G = 4)
template <typename T>
struct LstmCache {
    T* gates;  // [T, B, 4H] activated i, f, g, o (block-interleaved)
    T* h;      // [T+1, B, H]
    T* c;      // [T+1, B, H]
};

template <typename T>
void lstm_sequence_forward(const SeqShape& s, const CellWeights<T>& w, const T* x, const T* h0,
                           const T* c0, T* y, T* h_n, T* c_n, const LstmCache<T>* cache);

template <typename T>
void lstm_sequence_backward(const SeqShape& s, const CellWeights<T>& w, const T* x,
                            const LstmCache<T>& cache, const T* dy, const T* dh_n, const T* dc_n,
                            T* dx, T* dh0, T* dc0, const WeightGrads<T>& dw);

// ---------------------------------------------------------------- GRU (G = 3)
// PyTorch formulation: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1-z) n + z h.
template <typename T>
struct GruCache {
    T* gates;  // [T, B, 3H] activated r, z, n (block-interleaved)
    T* hn;     // [T, B, H] W_hn h_{t-1} + b_hn, the term the reset gate scales
    T* h;      // [T+1, B, H]
};

template <typename T>
void gru_sequence_forward(const SeqShape& s, const CellWeights<T>& w, const T* x, const T* h0, T* y,
                          T* h_n, const GruCache<T>* cache);

template <typename T>
void gru_sequence_backward(const SeqShape& s, const CellWeights<T>& w, const T* x,
                           const GruCache<T>& cache, const T* dy, const T* dh_n, T* dx, T* dh0,
                           const WeightGrads<T>& dw);

// ---------------------------------------------------------------- RNN (G = 1)
// h' = act(W_ih x + b_ih + W_hh h + b_hh), act = tanh or relu. The cache is h alone: the
// activation's output is the state itself.
template <typename T>
struct RnnCache {
    T* h;  // [T+1, B, H]
};

template <typename T>
void rnn_sequence_forward(const SeqShape& s, const CellWeights<T>& w, rnn::Nonlinearity act,
                          const T* x, const T* h0, T* y, T* h_n, const RnnCache<T>* cache);

template <typename T>
void rnn_sequence_backward(const SeqShape& s, const CellWeights<T>& w, rnn::Nonlinearity act,
                           const T* x, const RnnCache<T>& cache, const T* dy, const T* dh_n, T* dx,
                           T* dh0, const WeightGrads<T>& dw);

}  // namespace rnnkit::bptt
