#include "cuda/cublas_loader.hpp"

#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

namespace rnnkit::cuda {

namespace {

template <typename Fn>
Fn symbol(void* lib, const char* name) {
    void* p = dlsym(lib, name);
    if (p == nullptr) {
        throw std::runtime_error(std::string("cuBLAS has no symbol ") + name);
    }
    return reinterpret_cast<Fn>(p);
}

Cublas load() {
    // The toolkit's major versions that rnnkit's build supports, newest first.
    const char* names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so"};
    void* lib = nullptr;
    std::string tried;
    for (const char* name : names) {
        lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (lib != nullptr) break;
        tried += std::string(tried.empty() ? "" : ", ") + name;
    }
    if (lib == nullptr) {
        throw std::runtime_error(
            "rnnkit's CUDA backend needs cuBLAS and could not load it (tried " + tried +
            "): install the CUDA toolkit or the nvidia-cublas wheel, or add its directory to "
            "LD_LIBRARY_PATH");
    }
    Cublas c;
    c.create = symbol<Cublas::Create>(lib, "cublasCreate_v2");
    c.set_stream = symbol<Cublas::SetStream>(lib, "cublasSetStream_v2");
    c.set_math_mode = symbol<Cublas::SetMathMode>(lib, "cublasSetMathMode");
    c.sgemm = symbol<Cublas::Sgemm>(lib, "cublasSgemm_v2");
    c.dgemm = symbol<Cublas::Dgemm>(lib, "cublasDgemm_v2");
    return c;
}

}  // namespace

const Cublas& Cublas::get() {
    static std::once_flag once;
    static Cublas cublas;
    static std::string error;
    std::call_once(once, [] {
        try {
            cublas = load();
        } catch (const std::exception& e) {
            error = e.what();
        }
    });
    if (!error.empty()) throw std::runtime_error(error);
    return cublas;
}

CublasHandle Cublas::handle() {
    thread_local std::map<int, CublasHandle> handles;
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess) {
        throw std::runtime_error("cudaGetDevice failed: no usable CUDA device");
    }
    auto it = handles.find(device);
    if (it != handles.end()) return it->second;
    CublasHandle h = nullptr;
    const int status = get().create(&h);
    if (status != 0) {
        throw std::runtime_error("cublasCreate failed with status " + std::to_string(status));
    }
    handles.emplace(device, h);
    return h;
}

}  // namespace rnnkit::cuda
