// The sequence kernels of one instruction set, rnnkit::bptt::RNNKIT_ISA_NS::*_sequence_*, and
// the list of their signatures. The public functions of sequence.hpp (dispatch.cpp) forward to
// the variant that the CPU supports; see common/isa.hpp. No include guard: dispatch.cpp
// includes this once per instruction set, with RNNKIT_ISA_NS defined to each.
#include "bptt/sequence.hpp"
#include "common/isa.hpp"

// X(name, (parameters), (arguments)) for each kernel, the same signatures as sequence.hpp's.
#ifndef RNNKIT_SEQUENCE_KERNELS
#define RNNKIT_SEQUENCE_KERNELS(X)                                                                \
    X(lstm_sequence_forward,                                                                      \
      (const SeqShape& s, const Schedule& sc, const CellWeights<T>& w, const LstmOptions<T>& opt, \
       const T* x, const T* h0, const T* c0, T* y, T* h_n, T* c_n, const LstmCache<T>* cache),    \
      (s, sc, w, opt, x, h0, c0, y, h_n, c_n, cache))                                             \
    X(lstm_sequence_backward,                                                                     \
      (const SeqShape& s, const Schedule& sc, const CellWeights<T>& w, const LstmOptions<T>& opt, \
       const T* x, const LstmCache<T>& cache, const T* dy, const T* dh_n, const T* dc_n, T* dx,   \
       T* dh0, T* dc0, const WeightGrads<T>& dw),                                                 \
      (s, sc, w, opt, x, cache, dy, dh_n, dc_n, dx, dh0, dc0, dw))                                \
    X(gru_sequence_forward,                                                                       \
      (const SeqShape& s, const Schedule& sc, const CellWeights<T>& w, const GruOptions<T>& opt,  \
       const T* x, const T* h0, T* y, T* h_n, const GruCache<T>* cache),                          \
      (s, sc, w, opt, x, h0, y, h_n, cache))                                                      \
    X(gru_sequence_backward,                                                                      \
      (const SeqShape& s, const Schedule& sc, const CellWeights<T>& w, const GruOptions<T>& opt,  \
       const T* x, const GruCache<T>& cache, const T* dy, const T* dh_n, T* dx, T* dh0,           \
       const WeightGrads<T>& dw),                                                                 \
      (s, sc, w, opt, x, cache, dy, dh_n, dx, dh0, dw))                                           \
    X(rnn_sequence_forward,                                                                       \
      (const SeqShape& s, const Schedule& sc, const CellWeights<T>& w, const RnnOptions<T>& opt,  \
       const T* x, const T* h0, T* y, T* h_n, const RnnCache<T>* cache),                          \
      (s, sc, w, opt, x, h0, y, h_n, cache))                                                      \
    X(rnn_sequence_backward,                                                                      \
      (const SeqShape& s, const Schedule& sc, const CellWeights<T>& w, const RnnOptions<T>& opt,  \
       const T* x, const RnnCache<T>& cache, const T* dy, const T* dh_n, T* dx, T* dh0,           \
       const WeightGrads<T>& dw),                                                                 \
      (s, sc, w, opt, x, cache, dy, dh_n, dx, dh0, dw))
#define RNNKIT_DECLARE_KERNEL(name, params, args) \
    template <typename T>                         \
    void name params;
#endif

namespace rnnkit::bptt::RNNKIT_ISA_NS {
RNNKIT_SEQUENCE_KERNELS(RNNKIT_DECLARE_KERNEL)
}  // namespace rnnkit::bptt::RNNKIT_ISA_NS
