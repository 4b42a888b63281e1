// Python bindings of the CUDA backend (csrc/cuda, through cuda/backend.hpp): the submodules
// rnnkit._core._cuda (the GPU; only in a build with RNNKIT_CUDA=ON) and _core._cuda_host (the
// same loops on the host executor, which CI tests without a GPU).
//
// These functions take raw device pointers: rnnkit/_device.py has already checked every
// array (kind, dtype, shape, contiguity, device) in one place, as the numpy binding
// (bind_rnn.cpp) does for host arrays. Outputs are DeviceBuffer objects that own backend
// memory and expose __cuda_array_interface__; rnnkit/cuda.py hands them back as the caller's
// kind of array (torch tensor, CuPy array) without a copy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cuda/backend.hpp"

namespace py = pybind11;

namespace rnnkit::bindings {

namespace {

using cuda::Backend;
using cuda::Stream;

// Backend memory with a shape: freed, in order on the stream it was made on, when the last
// Python reference goes.
struct DeviceBuffer {
    Backend* backend = nullptr;
    void* ptr = nullptr;
    std::vector<std::int64_t> shape;
    std::string typestr;  // "<f4", "<f8" or "<i4"
    std::int64_t itemsize = 0;
    Stream stream = 0;
    int device = -1;

    DeviceBuffer(Backend& b, std::vector<std::int64_t> dims, std::string type, std::int64_t size,
                 Stream s)
        : backend(&b),
          shape(std::move(dims)),
          typestr(std::move(type)),
          itemsize(size),
          stream(s),
          device(b.device()) {
        ptr = backend->alloc(nbytes(), stream);
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() { backend->free(ptr, stream, device); }

    std::int64_t size() const {
        std::int64_t n = 1;
        for (const std::int64_t d : shape) n *= d;
        return n;
    }
    std::int64_t nbytes() const { return size() * itemsize; }

    py::tuple shape_tuple() const {
        py::tuple t(shape.size());
        for (std::size_t i = 0; i < shape.size(); ++i) t[i] = shape[i];
        return t;
    }
    py::dict cuda_array_interface() const {
        py::dict d;
        d["shape"] = shape_tuple();
        d["typestr"] = typestr;
        d["data"] = py::make_tuple(reinterpret_cast<std::uintptr_t>(ptr), false);
        d["strides"] = py::none();
        d["version"] = 3;
        // The consumer orders its work after ours on this stream (0 is spelled 1, the legacy
        // default stream; the spec reserves 0). The host backend has no streams.
        if (backend->on_device()) {
            d["stream"] = stream == 0 ? Stream(1) : stream;
        } else {
            d["stream"] = py::none();
        }
        return d;
    }
};

using BufferPtr = std::shared_ptr<DeviceBuffer>;

std::uintptr_t pointer_at(const py::tuple& t, std::size_t i) {
    return t[i].cast<std::uintptr_t>();
}

// (T, B, I, H, R) from Python.
cuda::Dims dims_of(const py::tuple& t) {
    return {t[0].cast<std::int64_t>(), t[1].cast<std::int64_t>(), t[2].cast<std::int64_t>(),
            t[3].cast<std::int64_t>(), t[4].cast<std::int64_t>()};
}

// What forward keeps for backward: the shapes and options, and the pointers of the inputs,
// the lengths and the training buffers. The memory belongs to the Python objects that
// rnnkit/cuda.py keeps alive with the cache (`inputs`: the caller's arrays and the buffers it
// allocated for the cache).
struct DeviceCache {
    Backend* backend = nullptr;
    cuda::Cell cell = cuda::Cell::Lstm;
    bool double_precision = false;
    bool training = false;
    cuda::Dims dims{};
    cuda::Options options{};
    std::uintptr_t x = 0, w_ih = 0, w_hh = 0, b_ih = 0, b_hh = 0, w_hr = 0, peepholes = 0;
    std::uintptr_t lengths = 0;
    std::uintptr_t x_rev = 0, gates = 0, h = 0, c = 0, m = 0, hn = 0;
    std::int64_t cache_bytes = 0;
    py::object inputs = py::none();
};

template <typename T>
T* ptr_of(std::uintptr_t p) {
    return reinterpret_cast<T*>(p);
}

template <typename T>
cuda::Weights<T> weights_of(const DeviceCache& c) {
    return {ptr_of<const T>(c.w_ih), ptr_of<const T>(c.w_hh), ptr_of<const T>(c.b_ih),
            ptr_of<const T>(c.b_hh), ptr_of<const T>(c.w_hr), ptr_of<const T>(c.peepholes)};
}

template <typename T>
cuda::Cache<T> cache_view(const DeviceCache& c) {
    return {ptr_of<T>(c.x_rev), ptr_of<T>(c.gates), ptr_of<T>(c.h),
            ptr_of<T>(c.c),     ptr_of<T>(c.m),     ptr_of<T>(c.hn)};
}

template <typename T>
void forward_impl(const DeviceCache& cache, std::uintptr_t h0, std::uintptr_t c0,
                  const py::tuple& outputs, Stream stream) {
    const cuda::Weights<T> w = weights_of<T>(cache);
    const cuda::Cache<T> view = cache_view<T>(cache);
    T* y = ptr_of<T>(outputs[0].cast<std::uintptr_t>());
    T* h_n = ptr_of<T>(outputs[1].cast<std::uintptr_t>());
    T* c_n = ptr_of<T>(outputs[2].cast<std::uintptr_t>());
    py::gil_scoped_release release;
    cache.backend->forward(cache.cell, cache.dims, ptr_of<const std::int32_t>(cache.lengths), w,
                           cache.options, ptr_of<const T>(cache.x), ptr_of<const T>(h0),
                           ptr_of<const T>(c0), y, h_n, c_n, cache.training ? &view : nullptr,
                           stream);
}

template <typename T>
void backward_impl(const DeviceCache& cache, std::uintptr_t dy, std::uintptr_t dh_n,
                   std::uintptr_t dc_n, const py::tuple& out, Stream stream) {
    const auto at = [&](std::size_t i) {
        return ptr_of<T>(out[i].cast<std::uintptr_t>());
    };
    const cuda::Grads<T> g{at(3), at(4), at(5), at(6), at(7), at(8)};
    const cuda::Weights<T> w = weights_of<T>(cache);
    const cuda::Cache<T> view = cache_view<T>(cache);
    T* dx = at(0);
    T* dh0 = at(1);
    T* dc0 = at(2);
    py::gil_scoped_release release;
    cache.backend->backward(cache.cell, cache.dims, ptr_of<const std::int32_t>(cache.lengths), w,
                            cache.options, ptr_of<const T>(cache.x), view, ptr_of<const T>(dy),
                            ptr_of<const T>(dh_n), ptr_of<const T>(dc_n), dx, dh0, dc0, g, stream);
}

void register_backend(py::module_& m, Backend& backend) {
    Backend* b = &backend;
    m.attr("name") = backend.name();
    m.attr("on_device") = backend.on_device();
    m.def("device", [b]() { return b->device(); }, "The current CUDA device (-1 on the host).");
    m.def(
        "set_device", [b](int device) { b->set_device(device); }, py::arg("device"),
        "Makes `device` current for this host thread (cudaSetDevice).");
    m.def(
        "synchronize",
        [b](Stream stream) {
            py::gil_scoped_release release;
            b->synchronize(stream);
        },
        py::arg("stream") = 0, "Waits for the work queued on `stream`.");
    m.def("set_allow_tf32", [b](bool allow) { b->set_allow_tf32(allow); }, py::arg("allow"));
    m.def("allow_tf32", [b]() { return b->allow_tf32(); });
    m.def(
        "set_persistent_max_batch", [b](std::int64_t batch) { b->set_persistent_max_batch(batch); },
        py::arg("batch"));
    m.def("persistent_max_batch", [b]() { return b->persistent_max_batch(); });
    m.def(
        "set_persistent_layout",
        [b](std::int64_t rows_per_warp, std::int64_t units_per_block) {
            b->set_persistent_layout(rows_per_warp, units_per_block);
        },
        py::arg("rows_per_warp"), py::arg("units_per_block"));
    m.def("persistent_layout", [b]() { return b->persistent_layout(); });
    m.def(
        "empty",
        [b](std::vector<std::int64_t> shape, const std::string& typestr, Stream stream) {
            const std::int64_t itemsize = typestr == "<f8" ? 8 : 4;
            return std::make_shared<DeviceBuffer>(*b, std::move(shape), typestr, itemsize, stream);
        },
        py::arg("shape"), py::arg("typestr"), py::arg("stream") = 0,
        "Uninitialised backend memory (internal: tests and the host emulation).");
    m.def(
        "upload",
        [b](std::uintptr_t dst, const py::buffer& src, Stream stream) {
            const py::buffer_info info = src.request();
            const std::int64_t bytes = static_cast<std::int64_t>(info.size) * info.itemsize;
            py::gil_scoped_release release;
            b->upload(reinterpret_cast<void*>(dst), info.ptr, bytes, stream);
        },
        py::arg("dst"), py::arg("src"), py::arg("stream") = 0,
        "Copies a C-contiguous host buffer to device memory at `dst` (internal: cuda.to_device).");
    m.def(
        "download",
        [b](const py::buffer& dst, std::uintptr_t src, Stream stream) {
            const py::buffer_info info = dst.request(true);
            const std::int64_t bytes = static_cast<std::int64_t>(info.size) * info.itemsize;
            py::gil_scoped_release release;
            b->download(info.ptr, reinterpret_cast<const void*>(src), bytes, stream);
        },
        py::arg("dst"), py::arg("src"), py::arg("stream") = 0,
        "Copies device memory at `src` into a writable C-contiguous host buffer and waits for "
        "it (internal: cuda.to_host).");
    m.def(
        "cache_sizes",
        [](int cell, const py::tuple& dims, bool projected, bool reverse) {
            const cuda::CacheSizes s =
                cuda::cache_sizes(static_cast<cuda::Cell>(cell), dims_of(dims), projected, reverse);
            return py::make_tuple(s.x_rev, s.gates, s.h, s.c, s.m, s.hn);
        },
        py::arg("cell"), py::arg("dims"), py::arg("projected"), py::arg("reverse"),
        "Elements of each training-cache buffer (x_rev, gates, h, c, m, hn); 0: unused.");
    m.def(
        "forward",
        [b](int cell, bool double_precision, const py::tuple& dims, const py::tuple& ptrs,
            std::uintptr_t lengths, const py::tuple& options, bool training,
            const py::tuple& outputs, const py::tuple& cache_ptrs, Stream stream) {
            auto cache = std::make_unique<DeviceCache>();
            cache->backend = b;
            cache->cell = static_cast<cuda::Cell>(cell);
            cache->double_precision = double_precision;
            cache->training = training;
            cache->dims = dims_of(dims);
            cache->x = pointer_at(ptrs, 0);
            cache->w_ih = pointer_at(ptrs, 3);
            cache->w_hh = pointer_at(ptrs, 4);
            cache->b_ih = pointer_at(ptrs, 5);
            cache->b_hh = pointer_at(ptrs, 6);
            cache->w_hr = pointer_at(ptrs, 7);
            cache->peepholes = pointer_at(ptrs, 8);
            cache->lengths = lengths;
            cache->options.reverse = options[0].cast<bool>();
            cache->options.input_forget = options[1].cast<bool>();
            cache->options.linear_before_reset = options[2].cast<bool>();
            cache->options.act =
                options[3].cast<bool>() ? cuda::Activation::Relu : cuda::Activation::Tanh;
            cache->options.clip = options[4].cast<double>();
            if (training) {
                cache->x_rev = pointer_at(cache_ptrs, 0);
                cache->gates = pointer_at(cache_ptrs, 1);
                cache->h = pointer_at(cache_ptrs, 2);
                cache->c = pointer_at(cache_ptrs, 3);
                cache->m = pointer_at(cache_ptrs, 4);
                cache->hn = pointer_at(cache_ptrs, 5);
                cache->cache_bytes = cache_ptrs[6].cast<std::int64_t>();
            }
            const std::uintptr_t h0 = pointer_at(ptrs, 1), c0 = pointer_at(ptrs, 2);
            if (double_precision) {
                forward_impl<double>(*cache, h0, c0, outputs, stream);
            } else {
                forward_impl<float>(*cache, h0, c0, outputs, stream);
            }
            return cache;
        },
        py::arg("cell"), py::arg("double_precision"), py::arg("dims"), py::arg("ptrs"),
        py::arg("lengths"), py::arg("options"), py::arg("training"), py::arg("outputs"),
        py::arg("cache_ptrs"), py::arg("stream"),
        "Internal (rnnkit/cuda.py): one layer-direction forward on checked device pointers, "
        "into the outputs (y, h_n, c_n or 0) and cache buffers the caller allocated.");
    m.def(
        "backward",
        [](const DeviceCache& cache, std::uintptr_t dy, std::uintptr_t dh_n, std::uintptr_t dc_n,
           const py::tuple& outputs, Stream stream) {
            if (cache.double_precision) {
                backward_impl<double>(cache, dy, dh_n, dc_n, outputs, stream);
            } else {
                backward_impl<float>(cache, dy, dh_n, dc_n, outputs, stream);
            }
        },
        py::arg("cache"), py::arg("dy"), py::arg("dh_n"), py::arg("dc_n"), py::arg("outputs"),
        py::arg("stream"),
        "Internal (rnnkit/cuda.py): the backward of `forward`, into (dx, dh0, dc0, dw_ih, "
        "dw_hh, db_ih, db_hh, dw_hr, dpeepholes), 0 for a gradient not wanted.");
}

}  // namespace

void register_cuda(py::module_& m) {
    py::class_<DeviceBuffer, BufferPtr>(
        m, "DeviceBuffer",
        "Memory of rnnkit's CUDA backend with a shape; exposes __cuda_array_interface__ "
        "(torch.as_tensor and cupy.asarray take it without a copy).")
        .def_property_readonly(
            "ptr", [](const DeviceBuffer& b) { return reinterpret_cast<std::uintptr_t>(b.ptr); })
        .def_property_readonly("shape", &DeviceBuffer::shape_tuple)
        .def_property_readonly("typestr", [](const DeviceBuffer& b) { return b.typestr; })
        .def_property_readonly("nbytes", &DeviceBuffer::nbytes)
        .def_property_readonly("device", [](const DeviceBuffer& b) { return b.device; })
        .def_property_readonly("__cuda_array_interface__", &DeviceBuffer::cuda_array_interface)
        .def_property_readonly("_host_array_interface", [](const DeviceBuffer& b) -> py::object {
            // The host emulation's memory is host memory: numpy may read it (tests).
            if (b.backend->on_device()) return py::none();
            py::dict d = b.cuda_array_interface();
            d.attr("pop")("stream");
            return d;
        });
    py::class_<DeviceCache>(m, "DeviceCache",
                            "What a CUDA forward call keeps for its backward call.")
        .def_readwrite("inputs", &DeviceCache::inputs)
        .def_readonly("training", &DeviceCache::training)
        .def_property_readonly("dims",
                               [](const DeviceCache& c) {
                                   return py::make_tuple(c.dims.T, c.dims.B, c.dims.I, c.dims.H,
                                                         c.dims.R);
                               })
        .def_readonly("nbytes", &DeviceCache::cache_bytes)
        .def_property_readonly("has_inputs", [](const DeviceCache& c) {
            return py::make_tuple(c.b_ih != 0, c.b_hh != 0, c.w_hr != 0, c.peepholes != 0);
        });

    py::module_ host = m.def_submodule("_cuda_host",
                                       "The CUDA backend's loops on the host "
                                       "executor (internal: tests without a GPU).");
    register_backend(host, cuda::host_backend());
    if (Backend* device = cuda::device_backend()) {
        py::module_ gpu = m.def_submodule("_cuda", "The CUDA backend (built with RNNKIT_CUDA=ON).");
        register_backend(gpu, *device);
        gpu.def("device_count", []() { return cuda::device_count(); });
    }
}

}  // namespace rnnkit::bindings
