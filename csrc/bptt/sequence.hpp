// Whole-sequence forward and BPTT backward for one layer and one direction of the LSTM, GRU
// and vanilla RNN. Time-major: x [T, B, I], states [B, H] (LSTM with a projection: h [B, P]),
// y [T, B, R] with R the size of the recurrent state (P or H).
//
// Weights are PyTorch's, unchanged: w_ih [G*H, I], w_hh [G*H, R], b_ih, b_hh [G*H] (either
// bias may be null), gates LSTM (i, f, g, o), GRU (r, z, n), RNN one gate. Any state or
// incoming-gradient pointer documented as nullable means "zeros".
//
// Variable lengths and direction come in a Schedule (schedule.hpp): outputs past a sequence's
// length are zero, its final state is the state after its last real step, and a reverse pass
// starts at each sequence's own last step.
//
// The training cache is owned by the caller (the binding allocates it as NumPy arrays of the
// sizes the *_cache_sizes functions give), so forward writes into it and backward only reads
// it: a cache can be used for several backward calls. Its buffers use rnnkit's internal
// layouts (length-sorted packed rows, block-interleaved gates; see engine.hpp).
//
// All functions are pure C++ (no Python), run on rnnkit::get_num_threads() threads and are
// bit-deterministic for any thread count. Outputs may not alias inputs.
#pragma once

#include <cstdint>
#include <limits>

#include "bptt/schedule.hpp"
#include "common/recurrent_types.hpp"
#include "rnn/gates.hpp"

namespace rnnkit::bptt {

using rnnkit::CellWeights;
using rnnkit::SeqShape;
using rnnkit::WeightGrads;

// Gate pre-activation clipping (ONNX `clip`): no clipping when infinite.
template <typename T>
constexpr T kNoClip = std::numeric_limits<T>::infinity();

// ---------------------------------------------------------------- LSTM (G = 4)
template <typename T>
struct LstmOptions {
    bool input_forget = false;  // CIFG: f = 1 - i
    T clip = kNoClip<T>;
};

// N = schedule.rows(). Packed rows as in schedule.hpp.
template <typename T>
struct LstmCache {
    T* gates;  // [N, 4H] activated i, f, g, o (block-interleaved)
    T* h;      // [N + B, R] state before each step, then the sorted final states
    T* c;      // [N + B, H] likewise for the cell state
    T* m;      // [N, H] o * tanh(c) before the projection, or null without projection
};

template <typename T>
void lstm_sequence_forward(const SeqShape& s, const Schedule& sc, const CellWeights<T>& w,
                           const LstmOptions<T>& opt, const T* x, const T* h0, const T* c0, T* y,
                           T* h_n, T* c_n, const LstmCache<T>* cache);

template <typename T>
void lstm_sequence_backward(const SeqShape& s, const Schedule& sc, const CellWeights<T>& w,
                            const LstmOptions<T>& opt, const T* x, const LstmCache<T>& cache,
                            const T* dy, const T* dh_n, const T* dc_n, T* dx, T* dh0, T* dc0,
                            const WeightGrads<T>& dw);

// ---------------------------------------------------------------- GRU (G = 3)
// linear_before_reset (PyTorch, cuDNN): n = tanh(W_in x + b_in + r * (W_hn h + b_hn));
// otherwise (ONNX default, Keras reset_after=False): n = tanh(W_in x + b_in + W_hn (r*h) + b_hn).
// Then h' = (1-z) n + z h.
template <typename T>
struct GruOptions {
    bool linear_before_reset = true;
    T clip = kNoClip<T>;
};

template <typename T>
struct GruCache {
    T* gates;  // [N, 3H] activated r, z, n (block-interleaved)
    T* hn;     // [N, H] W_hn h + b_hn (linear_before_reset) or r * h (otherwise)
    T* h;      // [N + B, H] state before each step, then the sorted final states
};

template <typename T>
void gru_sequence_forward(const SeqShape& s, const Schedule& sc, const CellWeights<T>& w,
                          const GruOptions<T>& opt, const T* x, const T* h0, T* y, T* h_n,
                          const GruCache<T>* cache);

template <typename T>
void gru_sequence_backward(const SeqShape& s, const Schedule& sc, const CellWeights<T>& w,
                           const GruOptions<T>& opt, const T* x, const GruCache<T>& cache,
                           const T* dy, const T* dh_n, T* dx, T* dh0, const WeightGrads<T>& dw);

// ---------------------------------------------------------------- RNN (G = 1)
// h' = act(W_ih x + b_ih + W_hh h + b_hh), act = tanh or relu.
template <typename T>
struct RnnOptions {
    rnn::Nonlinearity act = rnn::Nonlinearity::Tanh;
    T clip = kNoClip<T>;
};

// The activation's output is the new state, so the cache is the states alone.
template <typename T>
struct RnnCache {
    T* h;  // [N + B, H] state before each step, then the sorted final states
};

template <typename T>
void rnn_sequence_forward(const SeqShape& s, const Schedule& sc, const CellWeights<T>& w,
                          const RnnOptions<T>& opt, const T* x, const T* h0, T* y, T* h_n,
                          const RnnCache<T>* cache);

template <typename T>
void rnn_sequence_backward(const SeqShape& s, const Schedule& sc, const CellWeights<T>& w,
                           const RnnOptions<T>& opt, const T* x, const RnnCache<T>& cache,
                           const T* dy, const T* dh_n, T* dx, T* dh0, const WeightGrads<T>& dw);

}  // namespace rnnkit::bptt
