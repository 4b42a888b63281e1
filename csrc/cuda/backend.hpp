// The CUDA backend as the bindings see it: plain C++ (no CUDA headers), so that the
// extension's g++-compiled bindings call kernels compiled by nvcc through this interface.
// Two implementations: the GPU (sequence.cu, built with RNNKIT_CUDA=ON) and the host
// executor (host_emulation.cpp, always built: CI's check of the loops without a GPU).
//
// Every pointer is memory of the backend (device memory on a GPU). `stream` is a
// cudaStream_t as an integer (0: the legacy default stream; ignored on the host). Calls are
// asynchronous on a GPU: they return once the work is queued on `stream`.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "cuda/sequence.hpp"

namespace rnnkit::cuda {

using Stream = std::intptr_t;

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;
    virtual bool on_device() const = 0;       // false: the host emulation
    virtual int device() const = 0;           // the current device (-1 on the host)
    virtual void set_device(int device) = 0;  // for this host thread (cudaSetDevice)

    // Memory, ordered on `stream` (cudaMallocAsync / cudaFreeAsync).
    virtual void* alloc(std::int64_t bytes, Stream stream) = 0;
    // On `device` (made current for the call, then restored): a buffer may outlive the
    // device that was current when it was made.
    virtual void free(void* p, Stream stream, int device) noexcept = 0;
    virtual void upload(void* dst, const void* src, std::int64_t bytes, Stream stream) = 0;
    // Into host memory; returns when the bytes are there (after the work queued before).
    virtual void download(void* dst, const void* src, std::int64_t bytes, Stream stream) = 0;
    virtual void synchronize(Stream stream) = 0;

    // TF32 tensor cores for float32 GEMMs (off by default: float32 results as on a CPU).
    virtual void set_allow_tf32(bool allow) = 0;
    virtual bool allow_tf32() const = 0;

    // Forward runs as one persistent kernel (sequence_loops.hpp, RecurrenceShape) for batches
    // up to this size (default 64), where the device can and the work per step is small
    // enough for it to win; 0 turns it off.
    virtual void set_persistent_max_batch(std::int64_t batch) = 0;
    virtual std::int64_t persistent_max_batch() const = 0;
    // How the persistent forward kernel splits its work, for tests and tuning: rows of w_hh
    // per warp (1, 2 or 4) and hidden units per block (at most one block per multiprocessor
    // runs); 0 leaves either to the kernel's own rule.
    virtual void set_persistent_layout(std::int64_t rows_per_warp,
                                       std::int64_t units_per_block) = 0;
    virtual std::pair<std::int64_t, std::int64_t> persistent_layout() const = 0;

#define RNNKIT_CUDA_BACKEND_METHODS(T)                                                             \
    virtual void forward(Cell cell, const Dims& d, const std::int32_t* lengths,                    \
                         const Weights<T>& w, const Options& o, const T* x, const T* h0,           \
                         const T* c0, T* y, T* h_n, T* c_n, const Cache<T>* cache,                 \
                         Stream stream) = 0;                                                       \
    virtual void backward(Cell cell, const Dims& d, const std::int32_t* lengths,                   \
                          const Weights<T>& w, const Options& o, const T* x,                       \
                          const Cache<T>& cache, const T* dy, const T* dh_n, const T* dc_n, T* dx, \
                          T* dh0, T* dc0, const Grads<T>& g, Stream stream) = 0;
    RNNKIT_CUDA_BACKEND_METHODS(float)
    RNNKIT_CUDA_BACKEND_METHODS(double)
#undef RNNKIT_CUDA_BACKEND_METHODS
};

// The loops of one cell, for any executor (the implementations' shared dispatch).
template <class Exec, typename T>
void run_forward(Exec& ex, Cell cell, const Dims& d, const std::int32_t* lengths,
                 const Weights<T>& w, const Options& o, const T* x, const T* h0, const T* c0, T* y,
                 T* h_n, T* c_n, const Cache<T>* cache);
template <class Exec, typename T>
void run_backward(Exec& ex, Cell cell, const Dims& d, const std::int32_t* lengths,
                  const Weights<T>& w, const Options& o, const T* x, const Cache<T>& cache,
                  const T* dy, const T* dh_n, const T* dc_n, T* dx, T* dh0, T* dc0,
                  const Grads<T>& g);

Backend& host_backend();
// CUDA devices this process sees (0 without a driver or a GPU, or in a build without CUDA).
int device_count();
// The GPU backend, or null when rnnkit was built without CUDA.
Backend* device_backend();

}  // namespace rnnkit::cuda
