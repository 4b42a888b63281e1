// Python bindings of the recurrent kernels: lstm/gru/rnn {sequence, cell} {forward, backward}.
// Every check happens here, once, before any work; then outputs are allocated, the GIL is
// released and the core (csrc/bptt, no Python) runs. dtype dispatch happens in one place,
// `dispatch`, on the dtype of w_ih.
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "bindings/arrays.hpp"
#include "bptt/sequence.hpp"
#include "common/blas.hpp"

namespace rnnkit::bindings {

namespace {

enum class CellKind { Lstm, Gru, Rnn };

std::int64_t gate_count(CellKind kind) {
    switch (kind) {
        case CellKind::Lstm:
            return 4;
        case CellKind::Gru:
            return 3;
        case CellKind::Rnn:
            return 1;
    }
    return 1;
}

const char* cell_name(CellKind kind) {
    switch (kind) {
        case CellKind::Lstm:
            return "lstm";
        case CellKind::Gru:
            return "gru";
        case CellKind::Rnn:
            return "rnn";
    }
    return "?";
}

std::string producer_name(CellKind kind, bool is_cell) {
    return std::string(cell_name(kind)) + (is_cell ? "_cell_forward" : "_forward");
}

rnn::Nonlinearity parse_nonlinearity(py::handle obj) {
    if (!py::isinstance<py::str>(obj)) {
        throw py::type_error("nonlinearity must be 'tanh' or 'relu', got " + type_name(obj));
    }
    const auto name = obj.cast<std::string>();
    if (name == "tanh") return rnn::Nonlinearity::Tanh;
    if (name == "relu") return rnn::Nonlinearity::Relu;
    throw py::value_error("nonlinearity must be 'tanh' or 'relu', got '" + name + "'");
}

// The keyword options of every forward function (each cell reads the ones it has).
struct Options {
    rnn::Nonlinearity act = rnn::Nonlinearity::Tanh;
    bool reverse = false;
    bool input_forget = false;
    bool linear_before_reset = true;
    double clip = std::numeric_limits<double>::infinity();  // none
};

double parse_clip(py::handle clip) {
    if (clip.is_none()) return std::numeric_limits<double>::infinity();
    // A real number: int, float, a NumPy integer or floating scalar (numbers.Real). bool is an
    // int in Python, but clip=True is a mistake, not 1.0; an array (even of one element) is
    // not a number (its __float__ would pass pybind11's check, then fail its cast with a
    // message that names nothing).
    // (Leaked on purpose: a static py::object would be released after the interpreter.)
    static const py::handle real =
        py::object(py::module_::import("numbers").attr("Real")).release();
    const bool number = !py::isinstance<py::bool_>(clip) && py::isinstance(clip, real);
    if (!number) throw py::type_error("clip must be a number or None, got " + type_name(clip));
    const double value = PyFloat_AsDouble(clip.ptr());
    if (value == -1.0 && PyErr_Occurred()) {  // an int too large for a double (OverflowError)
        PyErr_Clear();
        throw py::value_error(
            "clip must be a positive finite number or None, got an int too large for a float");
    }
    if (!(value > 0.0) || !std::isfinite(value)) {
        throw py::value_error("clip must be a positive finite number or None, got " +
                              py::repr(py::float_(value)).cast<std::string>());
    }
    return value;
}

// `obj` as int64 values, each in [0, hi]: an integer array (any integer dtype; not bool, not
// float) of one axis, `length` long (any length when negative). In errors, `shape` is the
// documented shape ("(B,)") and `range` the bound ("[0, T] = [0, 6]").
std::vector<std::int64_t> bounded_integers(py::handle obj, const std::string& name,
                                           const std::string& shape, std::int64_t length,
                                           std::int64_t hi, const std::string& range) {
    py::array arr = py::array::ensure(obj);
    if (!arr) {
        throw py::type_error(name + " must be an integer array of shape " + shape + ", got " +
                             type_name(obj));
    }
    const char kind = arr.dtype().kind();
    // (An empty list arrives as float64: with no value to lose, it is taken as empty.)
    const bool empty_list = kind == 'f' && arr.ndim() == 1 && arr.size() == 0;
    if (kind != 'i' && kind != 'u' && !empty_list) {
        throw py::type_error(name + " must have an integer dtype, got " +
                             dtype_string(arr.dtype()));
    }
    if (empty_list) arr = py::array_t<std::int64_t>(0);
    if (arr.ndim() != 1 || (length >= 0 && arr.shape(0) != length)) {
        const std::string want = length >= 0 ? " = (" + std::to_string(length) + ",)" : "";
        throw py::value_error(name + " must have shape " + shape + want + ", got " +
                              shape_string(shape_of(arr)));
    }
    const std::int64_t n = arr.shape(0);
    const auto out_of_range = [&](std::int64_t i, const std::string& value) {
        return py::value_error(name + "[" + std::to_string(i) + "] = " + value +
                               " is out of range " + range);
    };
    // uint64 values above INT64_MAX are out of range anyway; check before converting.
    if (kind == 'u' && arr.itemsize() == 8) {
        const auto big = py::array_t<std::uint64_t, py::array::forcecast>::ensure(arr);
        for (std::int64_t i = 0; i < n; ++i) {
            if (big.at(i) > static_cast<std::uint64_t>(hi))
                throw out_of_range(i, std::to_string(big.at(i)));
        }
    }
    const auto values = py::array_t<std::int64_t, py::array::forcecast>::ensure(arr);
    std::vector<std::int64_t> out(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
        const std::int64_t v = values.at(i);
        if (v < 0 || v > hi) throw out_of_range(i, std::to_string(v));
        out[static_cast<std::size_t>(i)] = v;
    }
    return out;
}

// lengths: None, or integers [B] in [0, T].
std::optional<std::vector<std::int64_t>> parse_lengths(py::handle obj, std::int64_t T,
                                                       std::int64_t B) {
    if (obj.is_none()) return std::nullopt;
    return bounded_integers(obj, "lengths", "(B,)", B, T,
                            "[0, T] = [0, " + std::to_string(T) + "]");
}

// batch_sizes: None, or integers [T] (PyTorch's PackedSequence.batch_sizes): how many
// sequences run at each time step, non-increasing, summing to the N rows of the packed x.
std::optional<std::vector<std::int64_t>> parse_batch_sizes(py::handle obj, std::int64_t N) {
    if (obj.is_none()) return std::nullopt;
    std::vector<std::int64_t> out = bounded_integers(
        obj, "batch_sizes", "(T,)", -1, N,
        "[0, N] = [0, " + std::to_string(N) + "] (N = x.shape[0], the packed rows)");
    std::int64_t total = 0;  // <= T * N: no overflow for any array that fits in memory
    for (std::size_t t = 0; t < out.size(); ++t) {
        if (t > 0 && out[t] > out[t - 1]) {
            throw py::value_error(
                "batch_sizes must be non-increasing (a PackedSequence's order: longest "
                "sequence first), got batch_sizes[" +
                std::to_string(t) + "] = " + std::to_string(out[t]) + " after batch_sizes[" +
                std::to_string(t - 1) + "] = " + std::to_string(out[t - 1]));
        }
        total += out[t];
    }
    if (total != N) {
        throw py::value_error("batch_sizes must sum to x.shape[0] = " + std::to_string(N) +
                              " (the packed rows), got a sum of " + std::to_string(total));
    }
    return out;
}

// What forward keeps for backward. In inference mode (training=False) it keeps only the
// metadata, so that backward can refuse it with a clear message.
struct RecurrentCache {
    CellKind kind = CellKind::Lstm;
    bool is_cell = false;
    bool training = false;
    Options options;
    Dtype dtype = Dtype::Float32;
    std::int64_t T = 0, B = 0, I = 0, H = 0, R = 0;
    bool has_bias_ih = false, has_bias_hh = false;
    std::shared_ptr<const bptt::Schedule> schedule;
    // References to the (contiguous) inputs forward used, and the training buffers.
    py::object x, w_ih, w_hh, b_ih, b_hh, w_hr, peepholes;
    py::object gates, h, c, hn, m;

    std::int64_t nbytes() const {
        std::int64_t total = 0;
        for (const py::object* buf : {&gates, &h, &c, &hn, &m}) {
            if (*buf && !buf->is_none()) total += py::reinterpret_borrow<py::array>(*buf).nbytes();
        }
        return total;
    }
};

// The weights as given (borrowed, checked, not yet copied) and the sizes they define: w_ih the
// dtype (see `forward`), I (its columns) and H (its rows are G*H); w_hr, when given, P. Every
// other weight is compared with them, and its message says where the sizes come from.
struct CheckedWeights {
    py::array w_ih, w_hh;
    std::optional<py::array> b_ih, b_hh, w_hr, peepholes;
    std::int64_t I = 0, H = 0, R = 0;  // R: the recurrent state's size, P or H
};

template <typename T>
CheckedWeights check_weights(CellKind kind, py::handle w_ih, py::handle w_hh, py::handle b_ih,
                             py::handle b_hh, py::handle w_hr, py::handle peepholes) {
    const std::int64_t G = gate_count(kind);
    const std::string g_note = " with G = " + std::to_string(G) + " (" + cell_name(kind) + ")";
    CheckedWeights w;
    w.w_ih = checked_array<T>(w_ih, {"w_ih", "(G*H, I)", {kAny, kAny}}, "w_ih");
    const std::int64_t GH = w.w_ih.shape(0);
    if (GH == 0 || GH % G != 0) {
        const std::string rows =
            G > 1 ? " (a positive multiple of " + std::to_string(G) + " rows)" : "";
        throw py::value_error("w_ih must have shape (G*H, I)" + g_note + " and H > 0" + rows +
                              ", got " + shape_string(shape_of(w.w_ih)));
    }
    w.I = w.w_ih.shape(1);
    w.H = w.R = GH / G;
    const std::string h_from = "H from w_ih";
    std::string r_from = h_from;
    if (!w_hr.is_none()) {  // LSTM with projection: the recurrent state is h [B, P]
        w.w_hr = checked_array<T>(w_hr, {"w_hr", "(P, H)", {kAny, w.H}, h_from}, "w_ih");
        w.R = w.w_hr->shape(0);
        if (w.R == 0) {
            throw py::value_error("w_hr must have shape (P, H) with P > 0, got " +
                                  shape_string(shape_of(*w.w_hr)));
        }
        r_from = "H from w_ih, P from w_hr";
    }
    const char* hh_dims = w.w_hr ? "(G*H, P)" : "(G*H, H)";
    w.w_hh = checked_array<T>(w_hh, {"w_hh", hh_dims, {GH, w.R}, r_from, g_note}, "w_ih");
    w.b_ih = checked_optional<T>(b_ih, {"b_ih", "(G*H,)", {GH}, h_from}, "w_ih");
    w.b_hh = checked_optional<T>(b_hh, {"b_hh", "(G*H,)", {GH}, h_from}, "w_ih");
    w.peepholes = checked_optional<T>(peepholes, {"peepholes", "(3, H)", {3, w.H}, h_from}, "w_ih");
    return w;
}

// The checked weights as the kernels read them (C-contiguous copies where needed).
template <typename T>
struct Weights {
    CArray<T> w_ih, w_hh;
    std::optional<CArray<T>> b_ih, b_hh, w_hr, peepholes;

    explicit Weights(const CheckedWeights& w)
        : w_ih(c_array<T>(w.w_ih, "w_ih")),
          w_hh(c_array<T>(w.w_hh, "w_hh")),
          b_ih(c_array<T>(w.b_ih, "b_ih")),
          b_hh(c_array<T>(w.b_hh, "b_hh")),
          w_hr(c_array<T>(w.w_hr, "w_hr")),
          peepholes(c_array<T>(w.peepholes, "peepholes")) {}

    bptt::CellWeights<T> view() const {
        return {w_ih.data(),        w_hh.data(),        data_or_null(b_ih),
                data_or_null(b_hh), data_or_null(w_hr), data_or_null(peepholes)};
    }
};

// rows: of x, T*B, or N when packed.
void check_sizes(std::int64_t rows, const char* rows_name, std::int64_t I, std::int64_t H,
                 std::int64_t R, std::int64_t G) {
    blas::check_blas_int(rows, rows_name);
    blas::check_blas_int(G * H, "G*H");
    blas::check_blas_int(I, "I");
    blas::check_blas_int(R, "P");
}

// T*B, the rows of a padded x. Where the product would overflow int64 (NumPy allows no such
// shape, but nothing here relies on it), the larger factor alone is past the 32-bit limit.
std::int64_t padded_rows(std::int64_t T, std::int64_t B) {
    if (B > 0 && T > std::numeric_limits<std::int64_t>::max() / B) {
        blas::check_blas_int(std::max(T, B), T >= B ? "T" : "B");
    }
    return T * B;
}

template <typename T>
bptt::LstmOptions<T> lstm_options(const Options& o) {
    return {o.input_forget, static_cast<T>(o.clip)};
}
template <typename T>
bptt::GruOptions<T> gru_options(const Options& o) {
    return {o.linear_before_reset, static_cast<T>(o.clip)};
}
template <typename T>
bptt::RnnOptions<T> rnn_options(const Options& o) {
    return {o.act, static_cast<T>(o.clip)};
}

// ------------------------------------------------------------------------------ forward
template <typename T>
py::tuple forward_impl(CellKind kind, bool is_cell, py::handle x_obj, py::handle h0_obj,
                       py::handle c0_obj, py::handle w_ih, py::handle w_hh, py::handle b_ih,
                       py::handle b_hh, py::handle w_hr, py::handle peepholes,
                       py::handle lengths_obj, py::handle batch_sizes_obj, const Options& options,
                       bool training) {
    const std::int64_t G = gate_count(kind);
    const bool packed = !batch_sizes_obj.is_none();
    if (packed && !lengths_obj.is_none()) {
        throw py::value_error(
            "pass lengths (padded x [T, B, I]) or batch_sizes (packed x [N, I]), not both");
    }
    // Every array is checked as given first; only then are non-contiguous ones copied.
    const CheckedWeights cw = check_weights<T>(kind, w_ih, w_hh, b_ih, b_hh, w_hr, peepholes);
    const std::int64_t I = cw.I, H = cw.H, R = cw.R;
    const char* i_from = "I from w_ih";
    const ArraySpec x_spec = is_cell  ? ArraySpec{"x", "(B, I)", {kAny, I}, i_from}
                             : packed ? ArraySpec{"x", "(N, I)", {kAny, I}, i_from}
                                      : ArraySpec{"x", "(T, B, I)", {kAny, kAny, I}, i_from};
    const py::array x_arg = checked_array<T>(x_obj, x_spec, "w_ih");
    // x decides T and B (batch_sizes when packed).
    std::int64_t T_ = 1, B = x_arg.shape(0);
    std::string b_from = "B from x";
    std::shared_ptr<const bptt::Schedule> schedule;
    if (is_cell) {
        check_sizes(B, "B", I, H, R, G);
        schedule = std::make_shared<const bptt::Schedule>(T_, B, nullptr, options.reverse);
    } else if (packed) {
        const std::int64_t N = x_arg.shape(0);
        check_sizes(N, "N", I, H, R, G);
        const auto batch_sizes = parse_batch_sizes(batch_sizes_obj, N);
        T_ = static_cast<std::int64_t>(batch_sizes->size());
        B = T_ > 0 ? batch_sizes->front() : 0;
        b_from = "B from batch_sizes[0]";
        schedule = std::make_shared<const bptt::Schedule>(
            bptt::Schedule::from_batch_sizes(T_, batch_sizes->data(), options.reverse));
    } else {
        T_ = x_arg.shape(0);
        B = x_arg.shape(1);
        check_sizes(padded_rows(T_, B), "T*B", I, H, R, G);
        const auto lengths = parse_lengths(lengths_obj, T_, B);
        schedule = std::make_shared<const bptt::Schedule>(
            T_, B, lengths ? lengths->data() : nullptr, options.reverse);
    }
    const char* h_name = is_cell ? "h" : "h0";
    const char* c_name = is_cell ? "c" : "c0";
    const char* h_doc = cw.w_hr ? "(B, P)" : "(B, H)";
    const std::string r_from = b_from + (cw.w_hr ? ", P from w_hr" : ", H from w_ih");
    const auto h0_arg = checked_optional<T>(h0_obj, {h_name, h_doc, {B, R}, r_from}, "w_ih");
    std::optional<py::array> c0_arg;
    if (kind == CellKind::Lstm) {
        const std::string c_from = b_from + ", H from w_ih";
        c0_arg = checked_optional<T>(c0_obj, {c_name, "(B, H)", {B, H}, c_from}, "w_ih");
    }
    const Weights<T> w(cw);
    const CArray<T> x = c_array<T>(x_arg, "x");
    const auto h0 = c_array<T>(h0_arg, h_name);
    const auto c0 = c_array<T>(c0_arg, c_name);
    const std::int64_t N = schedule->rows();

    auto y = packed ? new_array<T>({N, R}) : new_array<T>({T_, B, R});
    auto h_n = new_array<T>({B, R});
    std::optional<py::array_t<T>> c_n;
    if (kind == CellKind::Lstm) c_n = new_array<T>({B, H});

    auto cache = std::make_unique<RecurrentCache>();
    cache->kind = kind;
    cache->is_cell = is_cell;
    cache->training = training;
    cache->options = options;
    cache->dtype = dtype_of<T>();
    cache->T = T_;
    cache->B = B;
    cache->I = I;
    cache->H = H;
    cache->R = R;
    cache->has_bias_ih = w.b_ih.has_value();
    cache->has_bias_hh = w.b_hh.has_value();
    cache->schedule = schedule;
    cache->gates = cache->h = cache->c = cache->hn = cache->m = py::none();
    cache->x = cache->w_ih = cache->w_hh = cache->b_ih = cache->b_hh = py::none();
    cache->w_hr = cache->peepholes = py::none();

    const bptt::SeqShape shape{T_, B, I, H, R};
    const bptt::CellWeights<T> wv = w.view();
    const bptt::Schedule& sc = *schedule;
    const T* xp = x.data();
    const T* h0p = data_or_null(h0);
    const T* c0p = data_or_null(c0);
    T* yp = y.mutable_data();
    T* hnp = h_n.mutable_data();
    T* cnp = c_n ? c_n->mutable_data() : nullptr;
    const auto keep = [](const std::optional<CArray<T>>& a) {
        return a ? py::object(*a) : py::object(py::none());
    };

    if (training) {
        cache->x = x;
        cache->w_ih = w.w_ih;
        cache->w_hh = w.w_hh;
        cache->b_ih = keep(w.b_ih);
        cache->b_hh = keep(w.b_hh);
        cache->w_hr = keep(w.w_hr);
        cache->peepholes = keep(w.peepholes);
        auto h_buf = new_array<T>({N + B, R});
        cache->h = h_buf;
        T* hp = h_buf.mutable_data();
        if (kind == CellKind::Lstm) {
            auto gates = new_array<T>({N, G * H});
            auto c_buf = new_array<T>({N + B, H});
            cache->gates = gates;
            cache->c = c_buf;
            T* mp = nullptr;
            if (w.w_hr) {
                auto m_buf = new_array<T>({N, H});
                cache->m = m_buf;
                mp = m_buf.mutable_data();
            }
            const bptt::LstmCache<T> lc{gates.mutable_data(), hp, c_buf.mutable_data(), mp};
            const auto opt = lstm_options<T>(options);
            py::gil_scoped_release release;
            bptt::lstm_sequence_forward<T>(shape, sc, wv, opt, xp, h0p, c0p, yp, hnp, cnp, &lc);
        } else if (kind == CellKind::Gru) {
            auto gates = new_array<T>({N, G * H});
            auto hn = new_array<T>({N, H});
            cache->gates = gates;
            cache->hn = hn;
            const bptt::GruCache<T> gc{gates.mutable_data(), hn.mutable_data(), hp};
            const auto opt = gru_options<T>(options);
            py::gil_scoped_release release;
            bptt::gru_sequence_forward<T>(shape, sc, wv, opt, xp, h0p, yp, hnp, &gc);
        } else {
            const bptt::RnnCache<T> rc{hp};
            const auto opt = rnn_options<T>(options);
            py::gil_scoped_release release;
            bptt::rnn_sequence_forward<T>(shape, sc, wv, opt, xp, h0p, yp, hnp, &rc);
        }
    } else {
        py::gil_scoped_release release;
        if (kind == CellKind::Lstm) {
            bptt::lstm_sequence_forward<T>(shape, sc, wv, lstm_options<T>(options), xp, h0p, c0p,
                                           yp, hnp, cnp, nullptr);
        } else if (kind == CellKind::Gru) {
            bptt::gru_sequence_forward<T>(shape, sc, wv, gru_options<T>(options), xp, h0p, yp, hnp,
                                          nullptr);
        } else {
            bptt::rnn_sequence_forward<T>(shape, sc, wv, rnn_options<T>(options), xp, h0p, yp, hnp,
                                          nullptr);
        }
    }

    py::object cache_obj = py::cast(std::move(cache));
    // A cell returns h1 (= y[0]) instead of the [1, B, R] sequence output.
    py::object y_out = is_cell ? py::object(y.reshape({B, R})) : py::object(y);
    if (kind == CellKind::Lstm) {
        if (is_cell) return py::make_tuple(y_out, *c_n, cache_obj);
        return py::make_tuple(y_out, h_n, *c_n, cache_obj);
    }
    if (is_cell) return py::make_tuple(y_out, cache_obj);
    return py::make_tuple(y_out, h_n, cache_obj);
}

// ----------------------------------------------------------------------------- backward
const RecurrentCache& require_cache(py::handle obj, CellKind kind, bool is_cell) {
    const std::string want = producer_name(kind, is_cell);
    if (!py::isinstance<RecurrentCache>(obj)) {
        throw py::type_error("cache must be the cache returned by " + want + ", got " +
                             type_name(obj));
    }
    const RecurrentCache& cache = obj.cast<const RecurrentCache&>();
    if (cache.kind != kind || cache.is_cell != is_cell) {
        throw py::type_error("cache must be the cache returned by " + want + ", got a cache from " +
                             producer_name(cache.kind, cache.is_cell));
    }
    if (!cache.training) {
        throw py::value_error("cache was made by " + want +
                              "(..., training=False), which keeps nothing for backward; "
                              "call forward with training=True");
    }
    return cache;
}

template <typename T>
CArray<T> cached(const py::object& obj) {
    return py::reinterpret_borrow<CArray<T>>(obj);
}

template <typename T>
const T* cached_or_null(const py::object& obj) {
    return obj.is_none() ? nullptr : cached<T>(obj).data();
}

template <typename T>
py::tuple backward_impl(const RecurrentCache& cache, py::handle dy_obj, py::handle dh_obj,
                        py::handle dc_obj) {
    const CellKind kind = cache.kind;
    const bool is_cell = cache.is_cell;
    const std::int64_t G = gate_count(kind);
    const std::int64_t T_ = cache.T, B = cache.B, I = cache.I, H = cache.H, R = cache.R;
    const bool projected = !cache.w_hr.is_none();
    const char* from = "the cache";
    const bool packed = cache.schedule->packed_input();
    const std::int64_t N = cache.schedule->rows();
    const char* y_doc =
        packed ? (projected ? "(N, P)" : "(N, H)") : (projected ? "(T, B, P)" : "(T, B, H)");
    const char* h_doc = projected ? "(B, P)" : "(B, H)";
    // Where the expected sizes come from: the arguments of the forward call that made the
    // cache, "(T, B from lstm_forward's x, H from its w_ih)", as forward's own messages say.
    const std::string forward_x = producer_name(kind, is_cell) + "'s x";
    const std::string b_from = packed
                                   ? "B from " + producer_name(kind, is_cell) + "'s batch_sizes[0]"
                                   : "B from " + forward_x;
    const std::string h_from = ", H from its w_ih";
    const std::string r_from = projected ? ", P from its w_hr" : h_from;
    const std::string y_from = (packed ? "N from " : "T, B from ") + forward_x + r_from;
    // Checked against the cache's sizes as given; only then are non-contiguous ones copied.
    const char* dy_name = "dy";
    const char* dh_name = is_cell ? "dh1" : "dh_n";
    const char* dc_name = is_cell ? "dc1" : "dc_n";
    std::optional<py::array> dy_arg, dc_arg;
    if (packed) {
        dy_arg = checked_optional<T>(dy_obj, {dy_name, y_doc, {N, R}, y_from}, from);
    } else if (!is_cell) {
        dy_arg = checked_optional<T>(dy_obj, {dy_name, y_doc, {T_, B, R}, y_from}, from);
    }
    const auto dh_arg =
        checked_optional<T>(dh_obj, {dh_name, h_doc, {B, R}, b_from + r_from}, from);
    if (kind == CellKind::Lstm)
        dc_arg = checked_optional<T>(dc_obj, {dc_name, "(B, H)", {B, H}, b_from + h_from}, from);
    const auto dy = c_array<T>(dy_arg, dy_name);
    const auto dh_n = c_array<T>(dh_arg, dh_name);
    const auto dc_n = c_array<T>(dc_arg, dc_name);

    auto dx = packed ? new_array<T>({N, I}) : new_array<T>({T_, B, I});
    auto dh0 = new_array<T>({B, R});
    std::optional<py::array_t<T>> dc0;
    if (kind == CellKind::Lstm) dc0 = new_array<T>({B, H});
    auto dw_ih = new_array<T>({G * H, I});
    auto dw_hh = new_array<T>({G * H, R});
    std::optional<py::array_t<T>> db_ih, db_hh, dw_hr, dpeep;
    if (cache.has_bias_ih) db_ih = new_array<T>({G * H});
    if (cache.has_bias_hh) db_hh = new_array<T>({G * H});
    if (projected) dw_hr = new_array<T>({R, H});
    if (!cache.peepholes.is_none()) dpeep = new_array<T>({3, H});
    const auto out_or_null = [](std::optional<py::array_t<T>>& a) {
        return a ? a->mutable_data() : nullptr;
    };

    const auto x = cached<T>(cache.x);
    const auto w_ih = cached<T>(cache.w_ih);
    const auto w_hh = cached<T>(cache.w_hh);
    const bptt::CellWeights<T> wv{w_ih.data(),
                                  w_hh.data(),
                                  cached_or_null<T>(cache.b_ih),
                                  cached_or_null<T>(cache.b_hh),
                                  cached_or_null<T>(cache.w_hr),
                                  cached_or_null<T>(cache.peepholes)};
    const bptt::WeightGrads<T> grads{dw_ih.mutable_data(), dw_hh.mutable_data(),
                                     out_or_null(db_ih),   out_or_null(db_hh),
                                     out_or_null(dw_hr),   out_or_null(dpeep)};
    const bptt::SeqShape shape{T_, B, I, H, R};
    const bptt::Schedule& sc = *cache.schedule;
    const T* dyp = data_or_null(dy);
    const T* dhp = data_or_null(dh_n);
    const T* dcp = data_or_null(dc_n);
    T* h_buf = cached<T>(cache.h).mutable_data();
    const auto mutable_or_null = [](const py::object& obj) {
        return obj.is_none() ? nullptr : cached<T>(obj).mutable_data();
    };
    {
        if (kind == CellKind::Lstm) {
            const bptt::LstmCache<T> lc{cached<T>(cache.gates).mutable_data(), h_buf,
                                        cached<T>(cache.c).mutable_data(),
                                        mutable_or_null(cache.m)};
            const auto opt = lstm_options<T>(cache.options);
            py::gil_scoped_release release;
            bptt::lstm_sequence_backward<T>(shape, sc, wv, opt, x.data(), lc, dyp, dhp, dcp,
                                            dx.mutable_data(), dh0.mutable_data(),
                                            dc0->mutable_data(), grads);
        } else if (kind == CellKind::Gru) {
            const bptt::GruCache<T> gc{cached<T>(cache.gates).mutable_data(),
                                       cached<T>(cache.hn).mutable_data(), h_buf};
            const auto opt = gru_options<T>(cache.options);
            py::gil_scoped_release release;
            bptt::gru_sequence_backward<T>(shape, sc, wv, opt, x.data(), gc, dyp, dhp,
                                           dx.mutable_data(), dh0.mutable_data(), grads);
        } else {
            const bptt::RnnCache<T> rc{h_buf};
            const auto opt = rnn_options<T>(cache.options);
            py::gil_scoped_release release;
            bptt::rnn_sequence_backward<T>(shape, sc, wv, opt, x.data(), rc, dyp, dhp,
                                           dx.mutable_data(), dh0.mutable_data(), grads);
        }
    }
    py::object dx_out = is_cell ? py::object(dx.reshape({B, I})) : py::object(dx);
    const auto or_none = [](const std::optional<py::array_t<T>>& a) {
        return a ? py::object(*a) : py::object(py::none());
    };
    if (kind == CellKind::Lstm) {
        return py::make_tuple(dx_out, dh0, *dc0, dw_ih, dw_hh, or_none(db_ih), or_none(db_hh),
                              or_none(dw_hr), or_none(dpeep));
    }
    return py::make_tuple(dx_out, dh0, dw_ih, dw_hh, or_none(db_ih), or_none(db_hh));
}

// ----------------------------------------------------------------------------- dispatch
template <typename Fn>
auto dispatch(Dtype dtype, Fn&& fn) {
    if (dtype == Dtype::Float32) return fn(float{});
    return fn(double{});
}

py::tuple forward(CellKind kind, bool is_cell, py::handle x, py::handle h0, py::handle c0,
                  py::handle w_ih, py::handle w_hh, py::handle b_ih, py::handle b_hh,
                  py::handle w_hr, py::handle peepholes, py::handle lengths, py::handle batch_sizes,
                  Options options, py::handle training_obj) {
    const bool training = require_bool(training_obj, "training");
    return dispatch(weight_dtype(w_ih, "w_ih"), [&](auto tag) {
        using T = decltype(tag);
        return forward_impl<T>(kind, is_cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, peepholes,
                               lengths, batch_sizes, options, training);
    });
}

py::tuple backward(CellKind kind, bool is_cell, py::handle cache_obj, py::handle dy, py::handle dh,
                   py::handle dc) {
    const RecurrentCache& cache = require_cache(cache_obj, kind, is_cell);
    return dispatch(cache.dtype, [&](auto tag) {
        using T = decltype(tag);
        return backward_impl<T>(cache, dy, dh, dc);
    });
}

}  // namespace

void register_rnn(py::module_& m) {
    py::class_<RecurrentCache>(m, "RecurrentCache",
                               "What a forward call keeps for its backward call. Opaque: pass "
                               "it to the matching *_backward function.")
        .def_property_readonly(
            "kind", [](const RecurrentCache& c) { return std::string(cell_name(c.kind)); })
        .def_property_readonly(
            "producer", [](const RecurrentCache& c) { return producer_name(c.kind, c.is_cell); })
        .def_property_readonly("training", [](const RecurrentCache& c) { return c.training; })
        .def_property_readonly("reverse", [](const RecurrentCache& c) { return c.options.reverse; })
        .def_property_readonly(
            "nonlinearity",
            [](const RecurrentCache& c) {
                return std::string(c.options.act == rnn::Nonlinearity::Tanh ? "tanh" : "relu");
            })
        .def_property_readonly(
            "dtype", [](const RecurrentCache& c) { return py::dtype(dtype_name(c.dtype)); })
        .def_property_readonly(
            "shape", [](const RecurrentCache& c) { return py::make_tuple(c.T, c.B, c.I, c.H); },
            "(T, B, I, H)")
        .def_property_readonly("nbytes", &RecurrentCache::nbytes,
                               "Bytes of the buffers kept for backward (0 when training=False).")
        .def("__repr__", [](const RecurrentCache& c) {
            return "<RecurrentCache from " + producer_name(c.kind, c.is_cell) +
                   ", dtype=" + dtype_name(c.dtype) +
                   ", (T, B, I, H)=" + shape_string({c.T, c.B, c.I, c.H}) +
                   ", training=" + (c.training ? "True" : "False") + ">";
        });

    const auto none = py::none();
    // The flags arrive as Python objects (not bool) so that require_bool names a wrong one;
    // the cells without an option pass its default.
    const auto parse_options = [](py::handle reverse, rnn::Nonlinearity act,
                                  py::handle input_forget, py::handle linear_before_reset,
                                  py::handle clip) {
        Options o;
        o.reverse = require_bool(reverse, "reverse");
        o.act = act;
        o.input_forget = require_bool(input_forget, "input_forget");
        o.linear_before_reset = require_bool(linear_before_reset, "linear_before_reset");
        o.clip = parse_clip(clip);
        return o;
    };
    // Borrowed handles of the immortal singletons: nothing owned is captured by the lambdas.
    const py::handle no(Py_False), yes(Py_True);
    const auto tanh = rnn::Nonlinearity::Tanh;
    // Sequences.
    m.def(
        "lstm_forward",
        [=](py::handle x, py::handle h0, py::handle c0, py::handle w_ih, py::handle w_hh,
            py::handle b_ih, py::handle b_hh, py::handle training, py::handle lengths,
            py::handle batch_sizes, py::handle reverse, py::handle w_hr, py::handle peepholes,
            py::handle input_forget, py::handle clip) {
            const Options o = parse_options(reverse, tanh, input_forget, yes, clip);
            return forward(CellKind::Lstm, false, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr,
                           peepholes, lengths, batch_sizes, o, training);
        },
        py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("w_ih"), py::arg("w_hh"),
        py::arg("b_ih") = none, py::arg("b_hh") = none, py::kw_only(), py::arg("training") = true,
        py::arg("lengths") = none, py::arg("batch_sizes") = none, py::arg("reverse") = false,
        py::arg("w_hr") = none, py::arg("peepholes") = none, py::arg("input_forget") = false,
        py::arg("clip") = none);
    m.def(
        "gru_forward",
        [=](py::handle x, py::handle h0, py::handle w_ih, py::handle w_hh, py::handle b_ih,
            py::handle b_hh, py::handle training, py::handle lengths, py::handle batch_sizes,
            py::handle reverse, py::handle linear_before_reset, py::handle clip) {
            const Options o = parse_options(reverse, tanh, no, linear_before_reset, clip);
            return forward(CellKind::Gru, false, x, h0, py::none(), w_ih, w_hh, b_ih, b_hh,
                           py::none(), py::none(), lengths, batch_sizes, o, training);
        },
        py::arg("x"), py::arg("h0"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih") = none,
        py::arg("b_hh") = none, py::kw_only(), py::arg("training") = true,
        py::arg("lengths") = none, py::arg("batch_sizes") = none, py::arg("reverse") = false,
        py::arg("linear_before_reset") = true, py::arg("clip") = none);
    m.def(
        "rnn_forward",
        [=](py::handle x, py::handle h0, py::handle w_ih, py::handle w_hh, py::handle b_ih,
            py::handle b_hh, py::handle nonlinearity, py::handle training, py::handle lengths,
            py::handle batch_sizes, py::handle reverse, py::handle clip) {
            const Options o =
                parse_options(reverse, parse_nonlinearity(nonlinearity), no, yes, clip);
            return forward(CellKind::Rnn, false, x, h0, py::none(), w_ih, w_hh, b_ih, b_hh,
                           py::none(), py::none(), lengths, batch_sizes, o, training);
        },
        py::arg("x"), py::arg("h0"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih") = none,
        py::arg("b_hh") = none, py::kw_only(), py::arg("nonlinearity") = "tanh",
        py::arg("training") = true, py::arg("lengths") = none, py::arg("batch_sizes") = none,
        py::arg("reverse") = false, py::arg("clip") = none);
    m.def(
        "lstm_backward",
        [](py::handle dy, py::handle dh_n, py::handle dc_n, py::handle cache) {
            return backward(CellKind::Lstm, false, cache, dy, dh_n, dc_n);
        },
        py::arg("dy"), py::arg("dh_n"), py::arg("dc_n"), py::arg("cache"));
    m.def(
        "gru_backward",
        [](py::handle dy, py::handle dh_n, py::handle cache) {
            return backward(CellKind::Gru, false, cache, dy, dh_n, py::none());
        },
        py::arg("dy"), py::arg("dh_n"), py::arg("cache"));
    m.def(
        "rnn_backward",
        [](py::handle dy, py::handle dh_n, py::handle cache) {
            return backward(CellKind::Rnn, false, cache, dy, dh_n, py::none());
        },
        py::arg("dy"), py::arg("dh_n"), py::arg("cache"));

    // Single steps: the T = 1 sequence.
    m.def(
        "lstm_cell_forward",
        [=](py::handle x, py::handle h, py::handle c, py::handle w_ih, py::handle w_hh,
            py::handle b_ih, py::handle b_hh, py::handle training, py::handle w_hr,
            py::handle peepholes, py::handle input_forget, py::handle clip) {
            const Options o = parse_options(no, tanh, input_forget, yes, clip);
            return forward(CellKind::Lstm, true, x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr, peepholes,
                           py::none(), py::none(), o, training);
        },
        py::arg("x"), py::arg("h"), py::arg("c"), py::arg("w_ih"), py::arg("w_hh"),
        py::arg("b_ih") = none, py::arg("b_hh") = none, py::kw_only(), py::arg("training") = true,
        py::arg("w_hr") = none, py::arg("peepholes") = none, py::arg("input_forget") = false,
        py::arg("clip") = none);
    m.def(
        "gru_cell_forward",
        [=](py::handle x, py::handle h, py::handle w_ih, py::handle w_hh, py::handle b_ih,
            py::handle b_hh, py::handle training, py::handle linear_before_reset, py::handle clip) {
            const Options o = parse_options(no, tanh, no, linear_before_reset, clip);
            return forward(CellKind::Gru, true, x, h, py::none(), w_ih, w_hh, b_ih, b_hh,
                           py::none(), py::none(), py::none(), py::none(), o, training);
        },
        py::arg("x"), py::arg("h"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih") = none,
        py::arg("b_hh") = none, py::kw_only(), py::arg("training") = true,
        py::arg("linear_before_reset") = true, py::arg("clip") = none);
    m.def(
        "rnn_cell_forward",
        [=](py::handle x, py::handle h, py::handle w_ih, py::handle w_hh, py::handle b_ih,
            py::handle b_hh, py::handle nonlinearity, py::handle training, py::handle clip) {
            const Options o = parse_options(no, parse_nonlinearity(nonlinearity), no, yes, clip);
            return forward(CellKind::Rnn, true, x, h, py::none(), w_ih, w_hh, b_ih, b_hh,
                           py::none(), py::none(), py::none(), py::none(), o, training);
        },
        py::arg("x"), py::arg("h"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih") = none,
        py::arg("b_hh") = none, py::kw_only(), py::arg("nonlinearity") = "tanh",
        py::arg("training") = true, py::arg("clip") = none);
    m.def(
        "lstm_cell_backward",
        [](py::handle dh1, py::handle dc1, py::handle cache) {
            return backward(CellKind::Lstm, true, cache, py::none(), dh1, dc1);
        },
        py::arg("dh1"), py::arg("dc1"), py::arg("cache"));
    m.def(
        "gru_cell_backward",
        [](py::handle dh1, py::handle cache) {
            return backward(CellKind::Gru, true, cache, py::none(), dh1, py::none());
        },
        py::arg("dh1"), py::arg("cache"));
    m.def(
        "rnn_cell_backward",
        [](py::handle dh1, py::handle cache) {
            return backward(CellKind::Rnn, true, cache, py::none(), dh1, py::none());
        },
        py::arg("dh1"), py::arg("cache"));
}

}  // namespace rnnkit::bindings
