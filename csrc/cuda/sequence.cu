// The GPU backend (backend.hpp): the loops of sequence_loops.hpp on the device executor, whose
// for_each launches one CUDA thread per element of a cell functor and whose gemm is cuBLAS's.
// Everything is queued on the caller's stream; workspace comes from the stream-ordered pool
// (cudaMallocAsync), so a call allocates nothing that outlives it and never synchronizes.
#include <cooperative_groups.h>
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
std::atomic<std::int64_t> g_persistent_max_batch{8};

// The persistent recurrence (sequence_loops.hpp, RecurrenceShape): block k owns hidden units
// [k*U, k*U + U) and keeps their G*U rows of w_hh in shared memory for all T steps. Per step:
// h_t into shared memory; one warp per (row b, gate g, unit j) dot product, reduced with
// shuffles, into rec [B, G*H]; the cell step of the block's units (it reads only their
// columns of rec, written by this block); then a grid-wide barrier, after which every block
// sees the whole h_{t+1}.
template <typename T, class Maker>
__global__ void __launch_bounds__(kThreadsPerBlock)
    recurrence_kernel(RecurrenceShape s, std::int64_t units, const T* w_hh, T* rec, Maker make) {
    namespace cg = cooperative_groups;
    cg::grid_group grid = cg::this_grid();
    extern __shared__ __align__(16) unsigned char shared_bytes[];
    T* w = reinterpret_cast<T*>(shared_bytes);  // [G][units][R]
    T* hs = w + s.G * units * s.R;              // [B][R]
    const std::int64_t u0 = static_cast<std::int64_t>(blockIdx.x) * units;
    const std::int64_t nu = s.H - u0 < units ? s.H - u0 : units;
    for (std::int64_t i = threadIdx.x; i < s.G * nu * s.R; i += blockDim.x) {
        const std::int64_t g = i / (nu * s.R), j = i % (nu * s.R) / s.R, k = i % s.R;
        w[(g * units + j) * s.R + k] = w_hh[(g * s.H + u0 + j) * s.R + k];
    }
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    const std::int64_t GH = s.G * s.H, items = s.B * s.G * nu;
    for (std::int64_t t = 0; t < s.T; ++t) {
        const T* hp = make.h_prev(t);
        for (std::int64_t i = threadIdx.x; i < s.B * s.R; i += blockDim.x) hs[i] = hp[i];
        __syncthreads();
        for (std::int64_t item = warp; item < items; item += warps) {
            const std::int64_t b = item / (s.G * nu), g = item % (s.G * nu) / nu, j = item % nu;
            const T* row = w + (g * units + j) * s.R;
            const T* h = hs + b * s.R;
            T sum = T(0);
            for (std::int64_t k = lane; k < s.R; k += 32) sum += row[k] * h[k];
            for (int offset = 16; offset > 0; offset /= 2) {
                sum += __shfl_down_sync(0xffffffffu, sum, offset);
            }
            if (lane == 0) rec[b * GH + g * s.H + u0 + j] = sum;
        }
        __syncthreads();
        const auto step = make.step(t);
        for (std::int64_t i = threadIdx.x; i < s.B * nu; i += blockDim.x) {
            step(i / nu * s.H + u0 + i % nu);
        }
        grid.sync();  // also orders the writes of h_{t+1} before the next step's reads
    }
}

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
    void free(void* p) {
        if (cudaFreeAsync(p, stream) != cudaSuccess) cudaGetLastError();
    }
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

    template <typename T, class Maker>
    bool recurrence(const RecurrenceShape& s, const T* w_hh, T* rec, const Maker& make) {
        if (s.B > g_persistent_max_batch.load() || s.T == 0) return false;
        int device = 0, sms = 0, cooperative = 0, max_shared = 0;
        check(cudaGetDevice(&device), "cudaGetDevice");
        check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "attribute");
        check(cudaDeviceGetAttribute(&cooperative, cudaDevAttrCooperativeLaunch, device),
              "attribute");
        check(cudaDeviceGetAttribute(&max_shared, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
              "attribute");
        if (!cooperative || sms <= 0) return false;
        // One block per multiprocessor at most: all blocks must be resident for the barrier.
        const std::int64_t units = (s.H + sms - 1) / sms;
        const std::int64_t blocks = (s.H + units - 1) / units;
        const std::int64_t shared = (s.G * units * s.R + s.B * s.R) * std::int64_t(sizeof(T));
        if (shared > max_shared) return false;
        auto kernel = recurrence_kernel<T, Maker>;
        check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   static_cast<int>(shared)),
              "cudaFuncSetAttribute");
        int per_sm = 0;
        check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreadsPerBlock,
                                                            static_cast<std::size_t>(shared)),
              "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
        if (static_cast<std::int64_t>(per_sm) * sms < blocks) return false;
        RecurrenceShape shape = s;
        std::int64_t units_arg = units;
        const T* w_arg = w_hh;
        T* rec_arg = rec;
        Maker maker = make;
        void* args[] = {&shape, &units_arg, &w_arg, &rec_arg, &maker};
        const cudaError_t status = cudaLaunchCooperativeKernel(
            reinterpret_cast<const void*>(kernel), dim3(static_cast<unsigned>(blocks)),
            dim3(kThreadsPerBlock), args, static_cast<std::size_t>(shared), stream);
        if (status == cudaErrorCooperativeLaunchTooLarge) {
            // Fewer multiprocessors usable than the device has (MPS limits, green contexts):
            // run step by step instead.
            cudaGetLastError();
            return false;
        }
        check(status, "cudaLaunchCooperativeKernel");
        return true;
    }

    template <typename T>
    void gemm(Op op_a, Op op_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* A,
              std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
        if (m == 0 || n == 0) return;
        if (k == 0) {
            // C = beta C; cuBLAS would refuse the leading dimension of an empty operand. The
            // loops pass beta 0 (clear C) or 1 (leave it).
            if (beta == T(0)) {
                check(cudaMemset2DAsync(C, static_cast<std::size_t>(ldc) * sizeof(T), 0,
                                        static_cast<std::size_t>(m) * sizeof(T),
                                        static_cast<std::size_t>(n), stream),
                      "cudaMemset2DAsync");
            }
            return;
        }
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
    void free(void* p, Stream stream, int device) noexcept override {
        if (p == nullptr) return;
        int current = -1;
        const bool switch_device = cudaGetDevice(&current) == cudaSuccess && current != device;
        if (switch_device) cudaSetDevice(device);
        if (cudaFreeAsync(p, reinterpret_cast<cudaStream_t>(stream)) != cudaSuccess) {
            cudaGetLastError();  // a destructor cannot report it; do not leave it to the next check
        }
        if (switch_device) cudaSetDevice(current);
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
    void set_persistent_max_batch(std::int64_t batch) override {
        g_persistent_max_batch.store(batch);
    }
    std::int64_t persistent_max_batch() const override { return g_persistent_max_batch.load(); }

#define RNNKIT_GPU_METHODS(T)                                                                      \
    void forward(Cell cell, const Dims& d, const std::int32_t* lengths, const Weights<T>& w,       \
                 const Options& o, const T* x, const T* h0, const T* c0, T* y, T* h_n, T* c_n,     \
                 const Cache<T>* cache, Stream stream) override {                                  \
        DeviceExecutor ex(stream, sizeof(T) == 4);                                                 \
        run_forward(ex, cell, d, lengths, w, o, x, h0, c0, y, h_n, c_n, cache);                    \
    }                                                                                              \
    void backward(Cell cell, const Dims& d, const std::int32_t* lengths, const Weights<T>& w,      \
                  const Options& o, const T* x, const Cache<T>& cache, const T* dy, const T* dh_n, \
                  const T* dc_n, T* dx, T* dh0, T* dc0, const Grads<T>& g, Stream stream)          \
        override {                                                                                 \
        DeviceExecutor ex(stream, sizeof(T) == 4);                                                 \
        run_backward(ex, cell, d, lengths, w, o, x, cache, dy, dh_n, dc_n, dx, dh0, dc0, g);       \
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
