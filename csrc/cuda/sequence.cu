// The GPU backend (backend.hpp): the loops of sequence_loops.hpp on the device executor, whose
// for_each launches one CUDA thread per element of a cell functor and whose gemm is cuBLAS's.
// Everything is queued on the caller's stream; workspace comes from the stream-ordered pool
// (cudaMallocAsync), so a call allocates nothing that outlives it and never synchronizes.
#include <cuda_runtime.h>

#include <atomic>
#include <climits>
#include <stdexcept>
#include <string>

#include "cuda/backend.hpp"
#include "cuda/cublas_loader.hpp"
#include "cuda/dispatch.hpp"

namespace rnnkit::cuda {

namespace {

void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess) {
        throw std::runtime_error(std::string("CUDA error in ") + what + ": " +
                                 cudaGetErrorString(status));
    }
}

void check_blas(int status, const char* what) {
    if (status != 0) {
        throw std::runtime_error(std::string("cuBLAS error in ") + what + ": status " +
                                 std::to_string(status));
    }
}

int blas_int(std::int64_t v, const char* what) {
    if (v > INT_MAX) {
        throw std::invalid_argument(std::string("a GEMM dimension (") + what + " = " +
                                    std::to_string(v) + ") exceeds cuBLAS's 32-bit limit");
    }
    return static_cast<int>(v);
}

constexpr int kThreadsPerBlock = 256;

template <typename F>
__global__ void __launch_bounds__(kThreadsPerBlock) for_each_kernel(std::int64_t n, F f) {
    const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
    for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += stride) {
        f(i);
    }
}

std::atomic<bool> g_allow_tf32{false};

struct DeviceExecutor {
    cudaStream_t stream;
    CublasHandle blas;

    DeviceExecutor(Stream s, bool single_precision)
        : stream(reinterpret_cast<cudaStream_t>(s)), blas(Cublas::handle()) {
        const Cublas& api = Cublas::get();
        check_blas(api.set_stream(blas, stream), "cublasSetStream");
        const bool tf32 = single_precision && g_allow_tf32.load();
        check_blas(api.set_math_mode(blas, tf32 ? kCublasTf32TensorOpMath : kCublasDefaultMath),
                   "cublasSetMathMode");
    }

    template <typename T>
    T* alloc(std::int64_t count) {
        void* p = nullptr;
        check(cudaMallocAsync(&p, static_cast<std::size_t>(count) * sizeof(T), stream),
              "cudaMallocAsync");
        return static_cast<T*>(p);
    }
    void free(void* p) { cudaFreeAsync(p, stream); }
    void zero(void* p, std::int64_t bytes) {
        check(cudaMemsetAsync(p, 0, static_cast<std::size_t>(bytes), stream), "cudaMemsetAsync");
    }
    void copy(void* dst, const void* src, std::int64_t bytes) {
        check(cudaMemcpyAsync(dst, src, static_cast<std::size_t>(bytes), cudaMemcpyDeviceToDevice,
                              stream),
              "cudaMemcpyAsync");
    }

    template <typename F>
    void for_each(std::int64_t n, const F& f) {
        if (n <= 0) return;
        // Enough blocks to fill any current GPU; the grid-stride loop covers the rest.
        const std::int64_t wanted = (n + kThreadsPerBlock - 1) / kThreadsPerBlock;
        const unsigned blocks = static_cast<unsigned>(wanted < 65536 ? wanted : 65536);
        for_each_kernel<<<blocks, kThreadsPerBlock, 0, stream>>>(n, f);
        check(cudaGetLastError(), "a kernel launch");
    }

    template <typename T>
    void gemm(Op op_a, Op op_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
              const T* A, std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C,
              std::int64_t ldc) {
        if (m == 0 || n == 0) return;
        const Cublas& api = Cublas::get();
        const int ta = op_a == Op::N ? kCublasOpN : kCublasOpT;
        const int tb = op_b == Op::N ? kCublasOpN : kCublasOpT;
        const int mi = blas_int(m, "m"), ni = blas_int(n, "n"), ki = blas_int(k, "k");
        const int la = blas_int(lda, "lda"), lb = blas_int(ldb, "ldb"), lc = blas_int(ldc, "ldc");
        int status;
        if constexpr (sizeof(T) == 4) {
            status = api.sgemm(blas, ta, tb, mi, ni, ki, &alpha, A, la, B, lb, &beta, C, lc);
        } else {
            status = api.dgemm(blas, ta, tb, mi, ni, ki, &alpha, A, la, B, lb, &beta, C, lc);
        }
        check_blas(status, "gemm");
    }
};

class GpuBackend final : public Backend {
public:
    std::string name() const override { return "cuda"; }
    bool on_device() const override { return true; }
    int device() const override {
        int d = -1;
        check(cudaGetDevice(&d), "cudaGetDevice");
        return d;
    }
    void set_device(int device) override { check(cudaSetDevice(device), "cudaSetDevice"); }

    void* alloc(std::int64_t bytes, Stream stream) override {
        void* p = nullptr;
        // Never a null pointer for 0 bytes: the bindings tell "absent" by null.
        const std::size_t size = static_cast<std::size_t>(bytes > 0 ? bytes : 1);
        const cudaError_t status =
            cudaMallocAsync(&p, size, reinterpret_cast<cudaStream_t>(stream));
        if (status == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            throw std::bad_alloc();
        }
        check(status, "cudaMallocAsync");
        return p;
    }
    void free(void* p, Stream stream) noexcept override {
        if (p != nullptr) cudaFreeAsync(p, reinterpret_cast<cudaStream_t>(stream));
    }
    void upload(void* dst, const void* src, std::int64_t bytes, Stream stream) override {
        if (bytes <= 0) return;
        // From pageable memory: returns once the host buffer has been read.
        check(cudaMemcpyAsync(dst, src, static_cast<std::size_t>(bytes), cudaMemcpyHostToDevice,
                              reinterpret_cast<cudaStream_t>(stream)),
              "cudaMemcpyAsync");
    }
    void download(void* dst, const void* src, std::int64_t bytes, Stream stream) override {
        if (bytes <= 0) return;
        const auto s = reinterpret_cast<cudaStream_t>(stream);
        check(cudaMemcpyAsync(dst, src, static_cast<std::size_t>(bytes), cudaMemcpyDeviceToHost, s),
              "cudaMemcpyAsync");
        check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
    }
    void synchronize(Stream stream) override {
        check(cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(stream)),
              "cudaStreamSynchronize");
    }
    void set_allow_tf32(bool allow) override { g_allow_tf32.store(allow); }
    bool allow_tf32() const override { return g_allow_tf32.load(); }

#define RNNKIT_GPU_METHODS(T)                                                                    \
    void forward(Cell cell, const Dims& d, const std::int32_t* lengths, const Weights<T>& w,     \
                 const Options& o, const T* x, const T* h0, const T* c0, T* y, T* h_n, T* c_n,   \
                 const Cache<T>* cache, Stream stream) override {                                \
        DeviceExecutor ex(stream, sizeof(T) == 4);                                               \
        run_forward(ex, cell, d, lengths, w, o, x, h0, c0, y, h_n, c_n, cache);                  \
    }                                                                                            \
    void backward(Cell cell, const Dims& d, const std::int32_t* lengths, const Weights<T>& w,    \
                  const Options& o, const T* x, const Cache<T>& cache, const T* dy,              \
                  const T* dh_n, const T* dc_n, T* dx, T* dh0, T* dc0, const Grads<T>& g,        \
                  Stream stream) override {                                                      \
        DeviceExecutor ex(stream, sizeof(T) == 4);                                               \
        run_backward(ex, cell, d, lengths, w, o, x, cache, dy, dh_n, dc_n, dx, dh0, dc0, g);     \
    }
    RNNKIT_GPU_METHODS(float)
    RNNKIT_GPU_METHODS(double)
#undef RNNKIT_GPU_METHODS
};

}  // namespace

int device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // no driver or no device: not an error for the caller
        return 0;
    }
    return n;
}

Backend* device_backend() {
    static GpuBackend backend;
    return &backend;
}

}  // namespace rnnkit::cuda
