// The host backend (backend.hpp): the CUDA backend's loops on the host executor.
#include <cstdlib>
#include <cstring>

#include "cuda/dispatch.hpp"
#include "cuda/host_executor.hpp"

namespace rnnkit::cuda {

namespace {

class HostBackend final : public Backend {
public:
    std::string name() const override { return "host"; }
    bool on_device() const override { return false; }
    int device() const override { return -1; }
    void set_device(int) override {}

    void* alloc(std::int64_t bytes, Stream) override {
        // Never a null pointer for 0 bytes: the bindings tell "absent" by null.
        void* p = std::malloc(static_cast<std::size_t>(bytes > 0 ? bytes : 1));
        if (p == nullptr) throw std::bad_alloc();
        return p;
    }
    void free(void* p, Stream, int) noexcept override { std::free(p); }
    void upload(void* dst, const void* src, std::int64_t bytes, Stream) override {
        if (bytes > 0) std::memcpy(dst, src, static_cast<std::size_t>(bytes));
    }
    void download(void* dst, const void* src, std::int64_t bytes, Stream stream) override {
        upload(dst, src, bytes, stream);
    }
    void synchronize(Stream) override {}
    void set_allow_tf32(bool allow) override { tf32_ = allow; }  // no tensor cores here
    bool allow_tf32() const override { return tf32_; }
    void set_persistent_max_batch(std::int64_t batch) override { persistent_max_batch_ = batch; }
    std::int64_t persistent_max_batch() const override { return persistent_max_batch_; }
    // The host has no warps: rows_per_warp is only kept; units_per_block sets the emulated
    // blocks' size (0: the executor's default).
    void set_persistent_layout(std::int64_t rows_per_warp, std::int64_t units_per_block) override {
        layout_ = {rows_per_warp, units_per_block};
    }
    std::pair<std::int64_t, std::int64_t> persistent_layout() const override { return layout_; }

#define RNNKIT_HOST_METHODS(T)                                                                     \
    void forward(Cell cell, const Dims& d, const std::int32_t* lengths, const Weights<T>& w,       \
                 const Options& o, const T* x, const T* h0, const T* c0, T* y, T* h_n, T* c_n,     \
                 const Cache<T>* cache, Stream) override {                                         \
        HostExecutor ex;                                                                           \
        ex.persistent_max_batch = persistent_max_batch_;                                           \
        if (layout_.second > 0) ex.units_per_block = layout_.second;                               \
        run_forward(ex, cell, d, lengths, w, o, x, h0, c0, y, h_n, c_n, cache);                    \
    }                                                                                              \
    void backward(Cell cell, const Dims& d, const std::int32_t* lengths, const Weights<T>& w,      \
                  const Options& o, const T* x, const Cache<T>& cache, const T* dy, const T* dh_n, \
                  const T* dc_n, T* dx, T* dh0, T* dc0, const Grads<T>& g, Stream) override {      \
        HostExecutor ex;                                                                           \
        if (layout_.second > 0) ex.units_per_block = layout_.second;                               \
        run_backward(ex, cell, d, lengths, w, o, x, cache, dy, dh_n, dc_n, dx, dh0, dc0, g);       \
    }
    RNNKIT_HOST_METHODS(float)
    RNNKIT_HOST_METHODS(double)
#undef RNNKIT_HOST_METHODS

private:
    bool tf32_ = false;
    std::int64_t persistent_max_batch_ = 8;
    std::pair<std::int64_t, std::int64_t> layout_{0, 0};
};

}  // namespace

Backend& host_backend() {
    static HostBackend backend;
    return backend;
}

#if !defined(RNNKIT_WITH_CUDA)
Backend* device_backend() {
    return nullptr;
}
int device_count() {
    return 0;
}
#endif

}  // namespace rnnkit::cuda
