// Argument validation for every function the extension exposes: the one place where Python
// objects are checked and turned into typed, C-contiguous arrays. Messages name the argument
// and give the expected and actual value, and where the expected sizes come from:
//     h0 must have shape (B, H) = (8, 32) (B from x, H from w_ih), got (8, 16)
// Kinds and dtypes raise TypeError; shapes and values raise ValueError. No silent casts: an
// array of another dtype is an error. Every array is checked as given (checked_array) before
// any is copied to C order (c_array), so a wrong one is refused before any copy.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/pool.hpp"

namespace rnnkit::bindings {

namespace py = pybind11;

inline std::string type_name(py::handle obj) {
    return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
}

inline std::string shape_string(const std::vector<std::int64_t>& dims) {
    std::ostringstream out;
    out << '(';
    for (std::size_t i = 0; i < dims.size(); ++i) {
        if (i) out << ", ";
        out << dims[i];
    }
    if (dims.size() == 1) out << ',';
    out << ')';
    return out.str();
}

inline std::vector<std::int64_t> shape_of(const py::array& a) {
    return std::vector<std::int64_t>(a.shape(), a.shape() + a.ndim());
}

inline std::string dtype_string(const py::dtype& dt) {
    return py::str(static_cast<const py::handle&>(dt)).cast<std::string>();
}

// Python's bool or NumPy's bool_.
inline bool is_bool(py::handle obj) {
    if (py::isinstance<py::bool_>(obj)) return true;
    const std::string type = Py_TYPE(obj.ptr())->tp_name;
    return type == "numpy.bool" || type == "numpy.bool_";
}

// A flag: a bool (is_bool), else TypeError naming it. pybind11's own bool conversion would
// take None as False and anything with __bool__ (2, a list) as a flag, and a str would get its
// generic "incompatible function arguments" message with every array in it.
inline bool require_bool(py::handle obj, const char* name) {
    if (is_bool(obj)) return PyObject_IsTrue(obj.ptr()) == 1;
    throw py::type_error(std::string(name) + " must be a bool, got " + type_name(obj));
}

// The floating dtype of the weights decides the dtype of the whole call.
enum class Dtype { Float32, Float64 };

inline Dtype weight_dtype(py::handle w, const char* name) {
    if (w.is_none()) throw py::type_error(std::string(name) + " must be a numpy.ndarray, got None");
    if (!py::isinstance<py::array>(w)) {
        throw py::type_error(std::string(name) + " must be a numpy.ndarray, got " + type_name(w));
    }
    const auto arr = py::reinterpret_borrow<py::array>(w);
    const py::dtype dt = arr.dtype();
    if (dt.kind() == 'f' && dt.byteorder() != '>') {
        if (dt.itemsize() == 4) return Dtype::Float32;
        if (dt.itemsize() == 8) return Dtype::Float64;
    }
    throw py::type_error(std::string(name) +
                         " must have dtype float32 or float64 (native byte order), got " +
                         dtype_string(dt));
}

inline const char* dtype_name(Dtype d) {
    return d == Dtype::Float32 ? "float32" : "float64";
}

template <typename T>
constexpr Dtype dtype_of() {
    return sizeof(T) == 4 ? Dtype::Float32 : Dtype::Float64;
}

// An array argument's expected shape: `kAny` where the argument itself decides the size (x's T
// and B, w_ih's I).
constexpr std::int64_t kAny = -1;

// What an array argument must be, for checked_array and its messages.
struct ArraySpec {
    const char* name;
    const char* dims;                 // the dimensions' names: "(T, B, I)"
    std::vector<std::int64_t> shape;  // the expected sizes (kAny: any), and so the ndim
    std::string source = {};          // where the expected sizes come from: "I from w_ih"
    std::string note = {};            // after `dims` in a wrong shape's message: " with G = 4"
};

// `obj` as given (borrowed, never copied), checked against `spec`: an ndarray of exactly dtype
// T (`dtype_from` names the argument whose dtype decides) with the expected dimensions, else
// TypeError/ValueError, e.g.
//     h0 must have shape (B, H) = (8, 32) (B from x, H from w_ih), got (8, 16)
// Only the shape is read, so a wrong array is refused before any copy (c_array), even a
// broadcast view whose C-order copy could never be allocated.
template <typename T>
py::array checked_array(py::handle obj, const ArraySpec& spec, const char* dtype_from) {
    const std::string name = spec.name;
    if (!py::isinstance<py::array>(obj)) {
        throw py::type_error(name + " must be a numpy.ndarray, got " +
                             (obj.is_none() ? std::string("None") : type_name(obj)));
    }
    auto arr = py::reinterpret_borrow<py::array>(obj);
    const py::dtype dt = arr.dtype();
    const bool native = dt.byteorder() != '>';
    if (!(dt.kind() == 'f' && dt.itemsize() == static_cast<py::ssize_t>(sizeof(T)) && native)) {
        throw py::type_error(name + " must have dtype " + dtype_name(dtype_of<T>()) +
                             " (the dtype of " + dtype_from + "), got " + dtype_string(dt) +
                             (dt.kind() == 'f' && !native ? " (non-native byte order)" : ""));
    }
    const std::vector<std::int64_t> got = shape_of(arr);
    if (got.size() != spec.shape.size()) {
        throw py::value_error(name + " must be " + std::to_string(spec.shape.size()) +
                              "-dimensional " + spec.dims + ", got shape " + shape_string(got));
    }
    std::vector<std::int64_t> want = spec.shape;
    for (std::size_t i = 0; i < want.size(); ++i) {
        if (want[i] == kAny) want[i] = got[i];
    }
    if (got != want) {
        const std::string source = spec.source.empty() ? "" : " (" + spec.source + ")";
        throw py::value_error(name + " must have shape " + spec.dims + spec.note + " = " +
                              shape_string(want) + source + ", got " + shape_string(got));
    }
    return arr;
}

// Like checked_array; None gives no array (meaning zeros).
template <typename T>
std::optional<py::array> checked_optional(py::handle obj, const ArraySpec& spec,
                                          const char* dtype_from) {
    if (obj.is_none()) return std::nullopt;
    return checked_array<T>(obj, spec, dtype_from);
}

template <typename T>
using CArray = py::array_t<T, py::array::c_style>;

// A checked array as the kernels read it: itself when C-contiguous, else its C-order copy
// (MemoryError naming it when that copy cannot be allocated).
template <typename T>
CArray<T> c_array(const py::array& arr, const char* name) {
    // ensure() returns a null handle (and clears the error) when the copy fails.
    auto contiguous = CArray<T>::ensure(arr);
    if (!contiguous) {
        PyErr_SetString(PyExc_MemoryError,
                        (std::string("could not copy ") + name + " (shape " +
                         shape_string(shape_of(arr)) + ") to a C-contiguous array")
                            .c_str());
        throw py::error_already_set();
    }
    return contiguous;
}

template <typename T>
std::optional<CArray<T>> c_array(const std::optional<py::array>& arr, const char* name) {
    if (!arr) return std::nullopt;
    return c_array<T>(*arr, name);
}

template <typename T>
const T* data_or_null(const std::optional<CArray<T>>& arr) {
    return arr ? arr->data() : nullptr;
}

// A new C-ordered array whose memory comes from rnnkit's pool of large blocks and goes back
// to it when the array is freed (common/pool.hpp): a training loop's caches and gradients then
// reuse pages that are already mapped. (Such arrays do not own their data in NumPy's sense:
// `a.base` is the capsule that returns the block.)
template <typename T>
py::array_t<T> new_array(std::initializer_list<std::int64_t> dims) {
    std::size_t count = 1;
    for (const std::int64_t d : dims) count *= static_cast<std::size_t>(d);
    struct Block {
        void* data;
        std::size_t bytes;
    };
    const std::size_t bytes = count * sizeof(T);
    auto* block = new Block{pool::allocate(bytes), bytes};
    py::capsule owner(block, [](void* p) {
        auto* b = static_cast<Block*>(p);
        pool::release(b->data, b->bytes);
        delete b;
    });
    return py::array_t<T>(std::vector<py::ssize_t>(dims.begin(), dims.end()),
                          static_cast<T*>(block->data), owner);
}

}  // namespace rnnkit::bindings
