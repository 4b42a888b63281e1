// run_forward / run_backward (backend.hpp): the cell dispatch shared by both executors.
#pragma once

#include "cuda/backend.hpp"
#include "cuda/sequence_loops.hpp"

namespace rnnkit::cuda {

template <class Exec, typename T>
void run_forward(Exec& ex, Cell cell, const Dims& d, const std::int32_t* lengths,
                 const Weights<T>& w, const Options& o, const T* x, const T* h0, const T* c0, T* y,
                 T* h_n, T* c_n, const Cache<T>* cache) {
    switch (cell) {
        case Cell::Lstm:
            lstm_forward(ex, d, lengths, w, o, x, h0, c0, y, h_n, c_n, cache);
            break;
        case Cell::Gru:
            gru_forward(ex, d, lengths, w, o, x, h0, y, h_n, cache);
            break;
        case Cell::Rnn:
            rnn_forward(ex, d, lengths, w, o, x, h0, y, h_n, cache);
            break;
    }
}

template <class Exec, typename T>
void run_backward(Exec& ex, Cell cell, const Dims& d, const std::int32_t* lengths,
                  const Weights<T>& w, const Options& o, const T* x, const Cache<T>& cache,
                  const T* dy, const T* dh_n, const T* dc_n, T* dx, T* dh0, T* dc0,
                  const Grads<T>& g) {
    switch (cell) {
        case Cell::Lstm:
            lstm_backward(ex, d, lengths, w, o, x, cache, dy, dh_n, dc_n, dx, dh0, dc0, g);
            break;
        case Cell::Gru:
            gru_backward(ex, d, lengths, w, o, x, cache, dy, dh_n, dx, dh0, g);
            break;
        case Cell::Rnn:
            rnn_backward(ex, d, lengths, w, o, x, cache, dy, dh_n, dx, dh0, g);
            break;
    }
}

}  // namespace rnnkit::cuda
