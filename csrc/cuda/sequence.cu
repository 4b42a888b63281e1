// The GPU backend (backend.hpp): the loops of sequence_loops.hpp on the device executor, whose
// for_each launches one CUDA thread per element of a cell functor and whose gemm is cuBLAS's.
// Everything is queued on the caller's stream; workspace comes from the stream-ordered pool
// (cudaMallocAsync), so a call allocates nothing that outlives it and never synchronizes.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <atomic>
#include <climits>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

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
std::atomic<std::int64_t> g_persistent_max_batch{64};

// The persistent recurrence (sequence_loops.hpp, RecurrenceShape): block k owns hidden units
// [k*U, k*U + U) and keeps their G*U rows of w_hh in shared memory for all T steps. Per step:
// h_t into shared memory; the dot products of the block's rows of w_hh with every row of h_t
// into rec [B, G*H] (below); the cell step of the block's units (it reads only their columns
// of rec, written by this block); then a barrier, grid-wide unless one block holds the whole
// layer, after which every block sees the whole h_{t+1}. (Measured on an H100 and dropped:
// rec in shared memory instead of global memory, and the next step's gate inputs prefetched
// into L1 before the barrier; no faster, and the prefetches cost 2-5%.)
//
// A warp takes a tile of 1, 2 or 4 rows of w_hh (or a slice of their columns, when the block
// has fewer tiles than warps) and reads each value of h_t once for the tile's rows and each
// weight once for up to 8 rows of h_t, with a register accumulator per (row of w_hh, row of
// h_t): the tile and the chunk of h_t are compile-time (chunks of 8, 4, 2, 1 rows of h_t), so
// no lane works on an absent row, and a tile of R rows cuts the shared-memory loads per
// multiply-add from (NB + 1) / NB to (NB + R) / (NB * R). The sums are then reduced across the
// warp by halving exchanges (each level keeps half of the values, so 8 sums take 3 + 2
// shuffles instead of 8 * 5). Indices into shared memory are 32-bit: 64-bit index arithmetic
// costs two instructions per operation on the GPU.
constexpr int kRecurrenceThreads = 512;
constexpr int kRecurrenceWarps = kRecurrenceThreads / 32;
constexpr int kMaxTile = 4;
constexpr int kLoadUnroll = 8;
constexpr std::int64_t kPersistentMaxWork = std::int64_t(1) << 26;  // multiply-adds per step
// The persistent backward reads all of dg_t ([B, G*H]) in every block at every step: past this
// many values the L2 traffic costs more than the step loop's launches (measured on an H200:
// slower from LSTM B=64 H=256 and GRU B=64 H=512; faster below).
constexpr std::int64_t kPersistentBackwardMaxGates = std::int64_t(1) << 16;

// How the persistent forward kernel splits its work: rows of w_hh per warp (1, 2, 4; 0 for
// the rule in tile_for) and hidden units per block (0: as few as spread the layer over the
// device's multiprocessors). Benchmarks and tests set them (set_persistent_layout).
std::atomic<std::int64_t> g_rows_per_warp{0};
std::atomic<std::int64_t> g_units_per_block{0};

// The tile of rows per warp for blocks of `units` hidden units (tiles stay within a gate):
// larger tiles need fewer shared-memory loads per multiply-add, but with few rows per gate
// they leave warps idle or split the columns into short slices. Measured on an H100 against
// one row per warp: tiles of 4 were 2-15% faster with 8 units per block (H = 1024, B = 1 and
// 8), within 2% with 4 (H = 512) and up to 8% slower with 2 (H = 256).
int tile_for(std::int64_t units) {
    const std::int64_t forced = g_rows_per_warp.load();
    if (forced > 0) return static_cast<int>(forced);
    return units >= 8 ? 4 : 1;
}

// Consecutive rows of w_hh, w_step values apart, and where their sums go: out + r * out_step
// + b * out_stride for row r of the tile and row b of h. Offsets, not arrays of pointers: an
// array indexed at run time would live in local memory.
template <typename T>
struct RowTile {
    const T* w;
    int w_step;
    T* out;
    std::int64_t out_step;
};

template <int NB, int NR, bool kAdd, typename T>
__device__ void dot_rows(const RowTile<T>& tile, int b0, const T* h, int R, int k_begin, int k_end,
                         int lane, std::int64_t out_stride) {
    h += b0 * R;                      // rows b0 .. b0 + NB - 1 of h
    constexpr int kValues = NB * NR;  // accumulator v = r * NB + b
    T acc[kValues];
#pragma unroll
    for (int v = 0; v < kValues; ++v) acc[v] = T(0);
    // Unrolled so that several iterations' shared-memory loads are in flight: a block has
    // only 16 warps to hide their latency.
    constexpr int kUnroll = kValues >= 16 ? 2 : 4;
#pragma unroll kUnroll
    for (int k = k_begin + lane; k < k_end; k += 32) {
        T hk[NB];
#pragma unroll
        for (int b = 0; b < NB; ++b) hk[b] = h[b * R + k];
#pragma unroll
        for (int r = 0; r < NR; ++r) {
            const T wk = tile.w[r * tile.w_step + k];
#pragma unroll
            for (int b = 0; b < NB; ++b) acc[r * NB + b] += wk * hk[b];
        }
    }
    // Level l exchanges with lane ^ (16 >> l): the lanes with that bit set keep the upper half
    // of their values, the others the lower half, each adding the partner's copy of it.
    constexpr int kLevels = kValues == 32   ? 5
                            : kValues == 16 ? 4
                            : kValues == 8  ? 3
                            : kValues == 4  ? 2
                            : kValues == 2  ? 1
                                            : 0;
    static_assert(kValues == (1 << kLevels), "a power of two up to 32 sums per warp");
    int index = 0;  // which of the values this lane's sum belongs to, in the end
#pragma unroll
    for (int level = 0; level < kLevels; ++level) {
        const int half = kValues >> (level + 1);
        const int offset = 16 >> level;
        const bool upper = (lane & offset) != 0;
#pragma unroll
        for (int i = 0; i < kValues / 2; ++i) {
            if (i < half) {
                const T send = upper ? acc[i] : acc[i + half];
                const T keep = upper ? acc[i + half] : acc[i];
                acc[i] = keep + __shfl_xor_sync(0xffffffffu, send, offset);
            }
        }
        if (upper) index += half;
    }
    T sum = acc[0];
#pragma unroll
    for (int offset = 16 >> kLevels; offset > 0; offset /= 2) {
        sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    }
    if ((lane & ((32 >> kLevels) - 1)) == 0) {
        T& target = tile.out[index / NB * tile.out_step + (b0 + index % NB) * out_stride];
        target = kAdd ? target + sum : sum;
    }
}

// A tile of rows of w_hh with all B rows of h [B][R], in chunks of 8, then 4, 2 and 1 rows;
// the sums are stored (kAdd false) or added to the tile's outputs (kAdd true).
template <bool kAdd, int NR, typename T>
__device__ void dot_all_rows(const RowTile<T>& tile, const T* h, int B, int R, int k_begin,
                             int k_end, int lane, std::int64_t out_stride) {
    int b0 = 0;
    for (; b0 + 8 <= B; b0 += 8) {
        dot_rows<8, NR, kAdd>(tile, b0, h, R, k_begin, k_end, lane, out_stride);
    }
    if (B - b0 >= 4) {
        dot_rows<4, NR, kAdd>(tile, b0, h, R, k_begin, k_end, lane, out_stride);
        b0 += 4;
    }
    if (B - b0 >= 2) {
        dot_rows<2, NR, kAdd>(tile, b0, h, R, k_begin, k_end, lane, out_stride);
        b0 += 2;
    }
    if (B - b0 >= 1) dot_rows<1, NR, kAdd>(tile, b0, h, R, k_begin, k_end, lane, out_stride);
}

// n values from global memory (written by other blocks: read from L2, not L1) into shared
// memory, several loads in flight per thread.
template <typename T>
__device__ void load_shared(T* dst, const T* src, int n) {
    for (int base = threadIdx.x; base < n; base += kRecurrenceThreads * kLoadUnroll) {
        T v[kLoadUnroll];
#pragma unroll
        for (int u = 0; u < kLoadUnroll; ++u) {
            const int i = base + u * kRecurrenceThreads;
            v[u] = i < n ? __ldcg(src + i) : T(0);
        }
#pragma unroll
        for (int u = 0; u < kLoadUnroll; ++u) {
            const int i = base + u * kRecurrenceThreads;
            if (i < n) dst[i] = v[u];
        }
    }
}

// Column slices per output row: when a block has fewer rows than warps, each row's columns
// are split in `slices` (a power of two, at least 32 columns each) so that every warp works.
struct Slicing {
    int slices, length;
    __device__ Slicing(int rows, int columns) : slices(1) {
        while (2 * slices * rows <= kRecurrenceWarps && columns / (2 * slices) >= 32) slices *= 2;
        length = ((columns + slices - 1) / slices + 31) / 32 * 32;
    }
};

__device__ inline void persistent_barrier() {
    // Orders every block's global writes of this step before any block's reads of the next
    // (a block's own writes are visible to it after __syncthreads).
    if (gridDim.x == 1) {
        __syncthreads();
    } else {
        cooperative_groups::this_grid().sync();
    }
}

// Rows j, j + 1, ... of gate g among the block's rows of w_hh (units u0 + j, ...) and where
// their sums go: rec [B, G*H], or the partial sums of a slice of columns.
template <typename T>
struct RowPlace {
    const T* w;  // [G][units][R]
    T* rec;
    T* partial;  // [rows][slices][B], row = g * nu + j
    int units, nu, R, u0, H, slices, B;

    __device__ RowTile<T> tile(int g, int j, int slice) const {
        if (slices == 1) return {w + (g * units + j) * R, R, rec + g * H + u0 + j, 1};
        return {w + (g * units + j) * R, R, partial + ((g * nu + j) * slices + slice) * B,
                std::int64_t(slices) * B};
    }
};

// The products of `count` rows from row j of gate g: a tile of NR rows, or fewer row by row.
template <int NR, typename T>
__device__ void tile_products(const RowPlace<T>& place, int g, int j, int count, int slice,
                              const T* hs, int B, int R, int k_begin, int k_end, int lane,
                              std::int64_t out_stride) {
    if (count == NR) {
        dot_all_rows<false, NR>(place.tile(g, j, slice), hs, B, R, k_begin, k_end, lane,
                                out_stride);
    } else {  // the last tile of a gate, short
        for (int r = 0; r < count; ++r) {
            dot_all_rows<false, 1>(place.tile(g, j + r, slice), hs, B, R, k_begin, k_end, lane,
                                   out_stride);
        }
    }
}

template <typename T, class Maker>
__global__ void __launch_bounds__(kRecurrenceThreads)
    recurrence_kernel(RecurrenceShape s, int units, int tile, const T* w_hh, T* rec, Maker make) {
    extern __shared__ __align__(16) unsigned char shared_bytes[];
    const int B = static_cast<int>(s.B), R = static_cast<int>(s.R), G = static_cast<int>(s.G);
    const int H = static_cast<int>(s.H);
    const int GH = G * H;
    T* w = reinterpret_cast<T*>(shared_bytes);  // [G][units][R]
    T* hs = w + G * units * R;                  // [B][R]
    T* partial = hs + B * R;                    // [rows][slices][B], rows * slices <= warps * tile
    const int u0 = static_cast<int>(blockIdx.x) * units;
    const int nu = H - u0 < units ? H - u0 : units;
    for (int i = threadIdx.x; i < G * nu * R; i += blockDim.x) {
        const int g = i / (nu * R), j = i % (nu * R) / R, k = i % R;
        w[(g * units + j) * R + k] = w_hh[(std::int64_t(g) * H + u0 + j) * R + k];
    }
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int rows = G * nu;
    // Tiles of `tile` rows within a gate (a gate's last tile may be short).
    const int gate_tiles = (nu + tile - 1) / tile;
    const Slicing slicing(G * gate_tiles, R);
    const int slices = slicing.slices;
    const int items = G * gate_tiles * slices;
    const RowPlace<T> place{w, rec, partial, units, nu, R, u0, H, slices, B};
    const std::int64_t out_stride = slices == 1 ? GH : 1;
    for (std::int64_t t = 0; t < s.T; ++t) {
        load_shared(hs, make.h_prev(t), B * R);
        __syncthreads();
        for (int item = warp; item < items; item += kRecurrenceWarps) {
            const int g = item / (gate_tiles * slices);
            const int j = item / slices % gate_tiles * tile, slice = item % slices;
            const int count = nu - j < tile ? nu - j : tile;
            const int k_begin = slice * slicing.length;
            const int k_end = k_begin + slicing.length < R ? k_begin + slicing.length : R;
            if (sizeof(T) == 4 && tile == 4) {  // float64 stops at 2 (tile_for)
                tile_products<sizeof(T) == 4 ? 4 : 2>(place, g, j, count, slice, hs, B, R, k_begin,
                                                      k_end, lane, out_stride);
            } else if (tile == 2) {
                tile_products<2>(place, g, j, count, slice, hs, B, R, k_begin, k_end, lane,
                                 out_stride);
            } else {
                tile_products<1>(place, g, j, count, slice, hs, B, R, k_begin, k_end, lane,
                                 out_stride);
            }
        }
        if (slices > 1) {
            __syncthreads();
            for (int i = threadIdx.x; i < rows * B; i += blockDim.x) {
                const int row = i / B, b = i % B;
                T sum = T(0);
                for (int slice = 0; slice < slices; ++slice) {
                    sum += partial[(row * slices + slice) * B + b];
                }
                rec[b * GH + row / nu * H + u0 + row % nu] = sum;
            }
        }
        __syncthreads();
        const auto step = make.step(t);
        for (int i = threadIdx.x; i < B * nu; i += blockDim.x) {
            step(std::int64_t(i / nu) * H + u0 + i % nu);
        }
        persistent_barrier();
    }
}

// The backward recurrence (sequence_loops.hpp, BackStepMakers): block k owns hidden units
// [k*U, k*U + U) and keeps their columns of w_hh in shared memory, transposed: [U][G*H].
// Before the loop, the cell backward of the last step for the block's units; then per step
// t, dg_t (every block's gates) comes into shared memory `chunk` rows of the batch at a time,
// and each warp adds the dot products of one column of w_hh (or a slice of it) with those
// rows to dh_run of its unit, after which the block runs the cell backward of step t-1 for
// its units (it reads only their dh_run), and all blocks meet at the barrier.
template <typename T, class Maker>
__global__ void __launch_bounds__(kRecurrenceThreads)
    recurrence_backward_kernel(RecurrenceShape s, int units, int chunk, const T* w_hh, T* dh_run,
                               Maker make) {
    extern __shared__ __align__(16) unsigned char shared_bytes[];
    const int B = static_cast<int>(s.B), R = static_cast<int>(s.R), H = static_cast<int>(s.H);
    const int GH = static_cast<int>(s.G * s.H);
    T* wt = reinterpret_cast<T*>(shared_bytes);  // [units][GH]
    T* vs = wt + units * GH;                     // [chunk][GH]
    T* partial = vs + chunk * GH;                // [warps][chunk]
    const int u0 = static_cast<int>(blockIdx.x) * units;
    const int nu = H - u0 < units ? H - u0 : units;
    for (int i = threadIdx.x; i < GH * nu; i += blockDim.x) {
        const int row = i / nu, k = i % nu;  // consecutive threads read consecutive columns
        wt[k * GH + row] = w_hh[std::int64_t(row) * R + u0 + k];
    }
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const Slicing slicing(nu, GH);
    const int slices = slicing.slices;
    const int items = nu * slices;
    const auto step_units = [&](std::int64_t t) {
        const auto step = make.step(t);
        for (int i = threadIdx.x; i < B * nu; i += blockDim.x) {
            step(std::int64_t(i / nu) * H + u0 + i % nu);
        }
    };
    step_units(s.T - 1);
    persistent_barrier();
    for (std::int64_t t = s.T - 1; t >= 0; --t) {
        const T* dg = make.products(t);
        for (int b0 = 0; b0 < B; b0 += chunk) {
            const int nb = B - b0 < chunk ? B - b0 : chunk;
            load_shared(vs, dg + std::int64_t(b0) * GH, nb * GH);
            __syncthreads();
            T* out = dh_run + std::int64_t(b0) * R + u0;
            for (int item = warp; item < items; item += kRecurrenceWarps) {
                const int k = item / slices, slice = item % slices;
                const int r_begin = slice * slicing.length;
                const int r_end = r_begin + slicing.length < GH ? r_begin + slicing.length : GH;
                if (slices == 1) {
                    dot_all_rows<true, 1>(RowTile<T>{wt + k * GH, 0, out + k, 0}, vs, nb, GH,
                                          r_begin, r_end, lane, R);
                } else {
                    dot_all_rows<false, 1>(RowTile<T>{wt + k * GH, 0, partial + item * chunk, 0},
                                           vs, nb, GH, r_begin, r_end, lane, std::int64_t(1));
                }
            }
            if (slices > 1) {
                __syncthreads();
                for (int i = threadIdx.x; i < nu * nb; i += blockDim.x) {
                    const int k = i / nb, b = i % nb;
                    T sum = T(0);
                    for (int slice = 0; slice < slices; ++slice) {
                        sum += partial[(k * slices + slice) * chunk + b];
                    }
                    out[std::int64_t(b) * R + k] += sum;
                }
            }
            __syncthreads();  // vs and partial are refilled next; the step reads dh_run
        }
        if (t > 0) step_units(t - 1);
        persistent_barrier();
    }
}

// How many blocks of a persistent kernel fit on one multiprocessor with `shared` bytes of
// dynamic shared memory. The answers and each kernel's shared-memory limit are set up once per
// device (each costs microseconds; every call of the loops needs them).
int resident_blocks(const void* kernel, int device, std::int64_t shared, int max_shared) {
    static std::mutex mutex;
    static std::set<std::pair<const void*, int>> configured;                 // kernel, device
    static std::map<std::tuple<const void*, int, std::int64_t>, int> known;  // ... shared
    const std::lock_guard<std::mutex> lock(mutex);
    if (configured.count({kernel, device}) == 0) {
        check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, max_shared),
              "cudaFuncSetAttribute");
        configured.insert({kernel, device});
    }
    const auto key = std::make_tuple(kernel, device, shared);
    const auto it = known.find(key);
    if (it != known.end()) return it->second;
    int per_sm = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kRecurrenceThreads,
                                                        static_cast<std::size_t>(shared)),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    known.emplace(key, per_sm);
    return per_sm;
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

    // Where the persistent kernels may run: the device's multiprocessors and the shared memory
    // a block may use, and the blocks of hidden units; sms is 0 when the batch, the work per
    // step or the device rule them out.
    struct PersistentPlan {
        int device = 0, sms = 0, max_shared = 0;
        std::int64_t units = 0, blocks = 0;
    };
    static PersistentPlan plan_persistent(const RecurrenceShape& s) {
        PersistentPlan p;
        if (s.B > g_persistent_max_batch.load() || s.T == 0) return p;
        // Past this much work per step cuBLAS's GEMM does the products faster than the
        // blocks' dot products do, even with a launch per step (measured on an H200:
        // BENCHMARKS.md, CUDA).
        if (s.B * s.G * s.H * s.R >= kPersistentMaxWork) return p;
        int cooperative = 0, sms = 0;
        check(cudaGetDevice(&p.device), "cudaGetDevice");
        check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, p.device), "attribute");
        check(cudaDeviceGetAttribute(&cooperative, cudaDevAttrCooperativeLaunch, p.device),
              "attribute");
        check(cudaDeviceGetAttribute(&p.max_shared, cudaDevAttrMaxSharedMemoryPerBlockOptin,
                                     p.device),
              "attribute");
        if (!cooperative || sms <= 0) return p;
        // One block per multiprocessor at most: all blocks must be resident for the barrier.
        p.sms = sms;
        const std::int64_t forced = g_units_per_block.load();
        p.units = forced > 0 ? (forced < s.H ? forced : s.H) : (s.H + sms - 1) / sms;
        p.blocks = (s.H + p.units - 1) / p.units;
        return p;
    }

    // Launches a persistent kernel if all its blocks can be resident; false otherwise.
    template <typename Kernel>
    bool launch_persistent(Kernel kernel, const PersistentPlan& p, std::int64_t shared,
                           void** args) {
        if (shared > p.max_shared) return false;
        const void* entry = reinterpret_cast<const void*>(kernel);
        const int per_sm = resident_blocks(entry, p.device, shared, p.max_shared);
        if (static_cast<std::int64_t>(per_sm) * p.sms < p.blocks) return false;
        const cudaError_t status = cudaLaunchCooperativeKernel(
            entry, dim3(static_cast<unsigned>(p.blocks)), dim3(kRecurrenceThreads), args,
            static_cast<std::size_t>(shared), stream);
        if (status == cudaErrorCooperativeLaunchTooLarge) {
            // Fewer multiprocessors usable than the device has (MPS limits, green contexts):
            // run step by step instead.
            cudaGetLastError();
            return false;
        }
        check(status, "cudaLaunchCooperativeKernel");
        return true;
    }

    template <typename T, class Maker>
    bool recurrence(const RecurrenceShape& s, const T* w_hh, T* rec, const Maker& make) {
        const PersistentPlan p = plan_persistent(s);
        if (p.sms == 0) return false;
        // 32 float64 accumulators would not fit in registers beside the rest.
        const int tile = sizeof(T) == 8 && tile_for(p.units) > 2 ? 2 : tile_for(p.units);
        const std::int64_t shared =
            ((s.G * p.units + s.B) * s.R + kRecurrenceWarps * kMaxTile * s.B) *
            std::int64_t(sizeof(T));
        RecurrenceShape shape = s;
        int units_arg = static_cast<int>(p.units);
        int tile_arg = tile;
        const T* w_arg = w_hh;
        T* rec_arg = rec;
        Maker maker = make;
        void* args[] = {&shape, &units_arg, &tile_arg, &w_arg, &rec_arg, &maker};
        return launch_persistent(recurrence_kernel<T, Maker>, p, shared, args);
    }

    template <typename T, class Maker>
    bool recurrence_backward(const RecurrenceShape& s, const T* w_hh, T* dh_run,
                             const Maker& make) {
        if (s.B * s.G * s.H >= kPersistentBackwardMaxGates) return false;
        const PersistentPlan p = plan_persistent(s);
        if (p.sms == 0) return false;
        // dg_t comes into shared memory in chunks of batch rows: the largest that fits.
        const std::int64_t GH = s.G * s.H;
        const auto bytes = [&](std::int64_t chunk) {
            return (p.units * GH + chunk * GH + kRecurrenceWarps * chunk) * std::int64_t(sizeof(T));
        };
        std::int64_t chunk = s.B;
        while (chunk > 1 && bytes(chunk) > p.max_shared) chunk = (chunk + 1) / 2;
        RecurrenceShape shape = s;
        int units_arg = static_cast<int>(p.units);
        int chunk_arg = static_cast<int>(chunk);
        const T* w_arg = w_hh;
        T* dh_arg = dh_run;
        Maker maker = make;
        void* args[] = {&shape, &units_arg, &chunk_arg, &w_arg, &dh_arg, &maker};
        return launch_persistent(recurrence_backward_kernel<T, Maker>, p, bytes(chunk), args);
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
    void set_persistent_layout(std::int64_t rows_per_warp, std::int64_t units_per_block) override {
        g_rows_per_warp.store(rows_per_warp);
        g_units_per_block.store(units_per_block);
    }
    std::pair<std::int64_t, std::int64_t> persistent_layout() const override {
        return {g_rows_per_warp.load(), g_units_per_block.load()};
    }

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
