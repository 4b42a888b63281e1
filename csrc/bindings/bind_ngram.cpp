// Python bindings of the n-gram core (csrc/ngram): the count store and the vocabulary with its
// tokenizer. Arrays are checked here (kind, dtype, shape; no casts); the Python classes in
// rnnkit.ngram add the conveniences (strings, iterables, files). Counting and tokenizing run
// with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bindings/arrays.hpp"
#include "common/exact_sum.hpp"
#include "common/parallel.hpp"
#include "ngram/arpa.hpp"
#include "ngram/counts.hpp"
#include "ngram/model.hpp"
#include "ngram/nltk_scores.hpp"
#include "ngram/vocab.hpp"

namespace rnnkit::bindings {

namespace {

using ngram::NgramCounts;
using ngram::NgramModel;
using ngram::NltkMethod;
using ngram::NltkScorer;
using ngram::Vocabulary;

// Each call claims the vocabularies and stores it uses, for reading or for changing, for its
// whole length (common/access.hpp): a call that would overlap another thread's change of the
// same object raises RuntimeError instead of reading tables that are being rehashed.
constexpr const char* kVocabularyName = "this vocabulary";
constexpr const char* kCountsName = "this n-gram count store";
AccessState::Read reading(const Vocabulary& v) {
    return {v.access, kVocabularyName};
}
AccessState::Write changing(Vocabulary& v) {
    return {v.access, kVocabularyName};
}
AccessState::Read reading(const NgramCounts& c) {
    return {c.access, kCountsName};
}
AccessState::Write changing(NgramCounts& c) {
    return {c.access, kCountsName};
}

// A claim held across several calls, by a Python `with` block in one thread (update: encoding,
// counting and the undoing of an error stay one change for every other thread).
class HeldAccess {
public:
    HeldAccess(AccessState& state, const char* what, bool change)
        : state_(state), what_(what), change_(change) {}
    void enter() {
        if (claim_) throw std::logic_error("this claim is held already");
        owner_ = std::this_thread::get_id();
        claim_.emplace(state_, what_, change_);
    }
    void exit() {
        if (std::this_thread::get_id() != owner_) {
            throw std::logic_error("a claim must be released by the thread that took it");
        }
        claim_.reset();
    }

private:
    AccessState& state_;
    const char* what_;
    bool change_;
    std::thread::id owner_;
    std::optional<AccessState::Claim> claim_;
};

// The `claim(change)` method of a class whose objects carry an AccessState `access`: a
// context manager holding the object (to change it, or to read it) for a block of calls.
template <typename Class>
void def_claim(py::class_<Class>& cls, const char* what) {
    cls.def(
        "claim",
        [what](Class& object, bool change) {
            return std::make_unique<HeldAccess>(object.access, what, change);
        },
        py::arg("change"), py::keep_alive<0, 1>(),
        "A context manager claiming the object (to change it, or to read it) for a block of "
        "calls in this thread.");
}

// A 1-D array of exactly `dtype` (no cast), C-contiguous (copied when not).
template <typename T>
py::array_t<T, py::array::c_style> vector_arg(py::handle obj, const char* name,
                                              const char* dtype_name) {
    if (!py::isinstance<py::array>(obj)) {
        throw py::type_error(std::string(name) + " must be a numpy.ndarray of " + dtype_name +
                             ", got " + type_name(obj));
    }
    const auto arr = py::reinterpret_borrow<py::array>(obj);
    if (!arr.dtype().equal(py::dtype::of<T>())) {
        throw py::type_error(std::string(name) + " must have dtype " + dtype_name + ", got " +
                             dtype_string(arr.dtype()));
    }
    if (arr.ndim() != 1) {
        throw py::value_error(std::string(name) + " must be 1-dimensional, got shape " +
                              shape_string(shape_of(arr)));
    }
    return py::array_t<T, py::array::c_style>::ensure(arr);
}

// The (ids int32, offsets int64 [S + 1]) of sentences, offsets within ids (the values are
// checked by NgramCounts::check_sentences).
std::pair<py::array_t<std::int32_t, py::array::c_style>,
          py::array_t<std::int64_t, py::array::c_style>>
sentence_arrays(py::handle ids_obj, py::handle offsets_obj) {
    auto ids = vector_arg<std::int32_t>(ids_obj, "ids", "int32");
    auto offsets = vector_arg<std::int64_t>(offsets_obj, "offsets", "int64");
    if (offsets.size() < 1) {
        throw py::value_error(
            "offsets must hold at least one value (the start of the first sentence), got an "
            "empty array");
    }
    const std::int64_t last = offsets.at(offsets.size() - 1);
    if (last > ids.size()) {
        throw py::value_error("offsets[-1] = " + std::to_string(last) +
                              " is past the end of ids (size " + std::to_string(ids.size()) + ")");
    }
    return {std::move(ids), std::move(offsets)};
}

int order_arg(const NgramCounts& c, py::handle n_obj) {
    if (!py::isinstance<py::int_>(n_obj) || py::isinstance<py::bool_>(n_obj)) {
        throw py::type_error("n must be an int, got " + type_name(n_obj));
    }
    const long long n = n_obj.cast<long long>();
    if (n < 1 || n > c.order()) {
        throw py::value_error("n must be in [1, " + std::to_string(c.order()) + "], got " +
                              std::to_string(n));
    }
    return static_cast<int>(n);
}

// The bytes of a str (its UTF-8, cached by Python) or bytes object, without a copy; valid while
// the object lives.
std::string_view text_view(py::handle text) {
    if (py::isinstance<py::bytes>(text)) {
        char* data = nullptr;
        Py_ssize_t size = 0;
        PyBytes_AsStringAndSize(text.ptr(), &data, &size);
        return {data, static_cast<std::size_t>(size)};
    }
    if (py::isinstance<py::str>(text)) {
        Py_ssize_t size = 0;
        const char* data = PyUnicode_AsUTF8AndSize(text.ptr(), &size);
        if (!data) throw py::error_already_set();
        return {data, static_cast<std::size_t>(size)};
    }
    throw py::type_error("text must be str or bytes, got " + type_name(text));
}

// A model state from Python: the stored n-grams ending at the previous word, each packed as
// (partition + 1) << 32 | index (partition -1: a unigram, index = its id), shortest first.
std::vector<ngram::EntryRef> parse_state(const NgramModel& model,
                                         const std::vector<std::int64_t>& state) {
    const auto order = static_cast<std::size_t>(model.order());
    if (state.size() >= order) {
        throw py::value_error("state holds " + std::to_string(state.size()) +
                              " n-grams; this model's states hold at most " +
                              std::to_string(order - 1));
    }
    std::vector<ngram::EntryRef> context(order);
    for (std::size_t k = 0; k < state.size(); ++k) {
        if (state[k] < 0 || (state[k] >> 32) > ngram::kPartitions) {
            throw py::value_error("state is not a state of this model");
        }
        context[k] = {static_cast<std::int32_t>((state[k] >> 32) - 1),
                      static_cast<std::uint32_t>(state[k] & 0xffffffff)};
    }
    if (!model.valid_context(context.data(), static_cast<int>(state.size()))) {
        throw py::value_error("state is not a state of this model");
    }
    return context;
}

template <typename T>
py::array_t<T> to_array(const std::vector<T>& values) {
    py::array_t<T> out(static_cast<py::ssize_t>(values.size()));
    if (!values.empty()) std::memcpy(out.mutable_data(), values.data(), values.size() * sizeof(T));
    return out;
}

// An nltk_compat model's scorer with nltk's vocabulary lookup done here, on Python strings: a
// word is itself when the vocabulary holds it (`in_vocab` by counter id) and unk_label
// otherwise, then its counter id (every vocabulary word has one: the Python layer adds them
// to the counter's word list before building this).
struct NltkLookupScorer {
    NltkScorer scorer;
    const NgramCounts* counts;  // (the scorer's store: claimed for reading by every call)
    const Vocabulary* words;
    std::vector<std::uint8_t> in_vocab;
    std::int32_t unk;

    // Read claims on the store and the words for one call.
    struct Reading {
        AccessState::Read counts, words;
    };
    Reading reading() const {
        return {{counts->access, kCountsName}, {words->access, kVocabularyName}};
    }

    std::int32_t lookup(py::handle word) const {
        if (!PyUnicode_Check(word.ptr())) {
            throw py::type_error("words must be str, got " + type_name(word));
        }
        Py_ssize_t size = 0;
        const char* data = PyUnicode_AsUTF8AndSize(word.ptr(), &size);
        if (!data) throw py::error_already_set();
        const std::int32_t id = words->find(std::string_view(data, static_cast<std::size_t>(size)));
        return id >= 0 && static_cast<std::size_t>(id) < in_vocab.size() && in_vocab[id] ? id : unk;
    }
    // ids of a sequence of words (its last one first checked to be a sequence, not a str),
    // each looked up by `lookup` (this scorer's, or a memo's).
    template <typename Lookup>
    static void lookup_all(py::handle seq, std::vector<std::int32_t>& ids, Lookup&& lookup) {
        if (PyUnicode_Check(seq.ptr())) {
            throw py::type_error("an n-gram or context must be a sequence of str, got a str");
        }
        for (py::handle w : py::iter(seq)) ids.push_back(lookup(w));
    }
    void lookup_all(py::handle seq, std::vector<std::int32_t>& ids) const {
        lookup_all(seq, ids, [&](py::handle w) { return lookup(w); });
    }
};

// The ids of the word objects seen in one call, by address: the n-grams of a text share its
// word objects (each is in up to n of them), so most lookups are found here without hashing
// the word's bytes. Each slot keeps a reference to its word, so that no address it holds can
// be reused by another string while it is there (n-grams from a generator are freed as the
// call goes on).
class WordMemo {
public:
    std::int32_t lookup(const NltkLookupScorer& s, py::handle word) {
        // (a short text, e.g. one sentence, is looked up directly)
        if (lookups_ < kDirect) {
            if (++lookups_ == kDirect) slots_.resize(kSlots);
            return s.lookup(word);
        }
        const auto key = reinterpret_cast<std::uintptr_t>(word.ptr());
        Slot& slot = slots_[(key >> 4) & (kSlots - 1)];
        if (slot.key != key) {
            slot.id = s.lookup(word);
            slot.key = key;
            slot.word = py::reinterpret_borrow<py::object>(word);
        }
        return slot.id;
    }
    void lookup_all(const NltkLookupScorer& s, py::handle seq, std::vector<std::int32_t>& ids) {
        NltkLookupScorer::lookup_all(seq, ids, [&](py::handle w) { return lookup(s, w); });
    }

private:
    static constexpr std::size_t kDirect = 256, kSlots = 4096;
    struct Slot {
        std::uintptr_t key = 0;
        std::int32_t id = 0;
        py::object word;
    };
    std::vector<Slot> slots_;
    std::size_t lookups_ = 0;
};

}  // namespace

void register_ngram(py::module_& m) {
    m.def(
        "_exact_sum",
        [](py::handle values_obj, int parts) {
            // (the nltk scorer's sum, exposed to test it against math.fsum, including the
            // merging of per-thread partial sums)
            const auto values = vector_arg<double>(values_obj, "values", "float64");
            if (parts < 1) {
                throw py::value_error("parts must be at least 1, got " + std::to_string(parts));
            }
            const double* data = values.data();
            const auto size = static_cast<std::int64_t>(values.size());
            ExactSum total;
            for (int p = 0; p < parts; ++p) {
                ExactSum part;
                for (std::int64_t i = size * p / parts; i < size * (p + 1) / parts; ++i) {
                    part.add(data[i]);
                }
                total.add(part);
            }
            return total.value();
        },
        py::arg("values"), py::arg("parts") = 1,
        "The correctly rounded sum of `values` (float64), summed in `parts` contiguous parts "
        "whose exact sums are then added.");
    py::class_<HeldAccess>(m, "_HeldAccess")
        .def("__enter__",
             [](HeldAccess& held) -> HeldAccess& {
                 held.enter();
                 return held;
             })
        .def("__exit__", [](HeldAccess& held, const py::args&) { held.exit(); });

    py::class_<Vocabulary> vocabulary(m, "_Vocabulary");
    def_claim(vocabulary, kVocabularyName);
    vocabulary.def(py::init<>())
        .def("__len__",
             [](const Vocabulary& v) {
                 const auto access = reading(v);
                 return v.size();
             })
        .def(
            "find",
            [](const Vocabulary& v, const py::str& w) -> std::int32_t {
                const auto access = reading(v);
                // A str that has no UTF-8 (a lone surrogate, as surrogateescape decoding
                // makes of invalid bytes) is no word of any vocabulary.
                Py_ssize_t size = 0;
                const char* data = PyUnicode_AsUTF8AndSize(w.ptr(), &size);
                if (!data) {
                    PyErr_Clear();
                    return -1;
                }
                return v.find(std::string_view(data, static_cast<std::size_t>(size)));
            },
            py::arg("word"))
        .def(
            "truncate",
            [](Vocabulary& v, std::int64_t size) {
                const auto access = changing(v);
                v.truncate(size);
            },
            py::arg("size"),
            "Drops the words of ids >= size: undoes the words added since it had size ids.")
        .def(
            "add",
            [](Vocabulary& v, const std::string& w) {
                const auto access = changing(v);
                return v.add(w);
            },
            py::arg("word"))
        .def(
            "add_words",
            [](Vocabulary& v, const std::vector<std::string>& words) {
                const auto access = changing(v);
                std::vector<std::int32_t> ids;
                ids.reserve(words.size());
                for (const std::string& w : words) ids.push_back(v.add(w));
                return to_array(ids);
            },
            py::arg("words"), "add() of each word: their ids (int32).")
        .def(
            "add_vocabulary",
            [](Vocabulary& v, const Vocabulary& other) {
                const auto access = changing(v);
                const auto other_access = reading(other);
                std::vector<std::int32_t> ids;
                ids.reserve(static_cast<std::size_t>(other.size()));
                for (std::int64_t i = 0; i < other.size(); ++i) {
                    ids.push_back(v.add(other.word(static_cast<std::int32_t>(i))));
                }
                return to_array(ids);
            },
            py::arg("other"),
            "add() of each of other's words, in other's order: their ids here (int32).")
        .def(
            "count_words",
            [](const Vocabulary& v, py::handle ids_obj) {
                const auto access = reading(v);
                // Counter(words[i] for i in ids), in one pass: the dict's keys come in order of
                // first appearance, as Counter.update would insert them.
                const auto ids = vector_arg<std::int32_t>(ids_obj, "ids", "int32");
                const std::int32_t* data = ids.data();
                const std::int64_t size = v.size();
                std::vector<std::uint64_t> counts(static_cast<std::size_t>(size), 0);
                std::vector<std::int32_t> first_seen;
                for (py::ssize_t k = 0; k < ids.size(); ++k) {
                    const std::int32_t id = data[k];
                    if (id < 0 || id >= size) {
                        throw py::value_error("ids[" + std::to_string(k) + "] must be in [0, " +
                                              std::to_string(size) + "), got " +
                                              std::to_string(id));
                    }
                    if (counts[static_cast<std::size_t>(id)]++ == 0) first_seen.push_back(id);
                }
                py::dict out;
                for (const std::int32_t id : first_seen) {
                    out[py::str(v.word(id))] = counts[static_cast<std::size_t>(id)];
                }
                return out;
            },
            py::arg("ids"),
            "{word: occurrences} of the words of `ids` (int32), in order of first appearance.")
        .def(
            "word",
            [](const Vocabulary& v, std::int64_t id) {
                const auto access = reading(v);
                if (id < 0 || id >= v.size()) {
                    throw py::value_error("id must be in [0, " + std::to_string(v.size()) +
                                          "), got " + std::to_string(id));
                }
                return py::str(v.word(static_cast<std::int32_t>(id)));
            },
            py::arg("id"))
        .def("words",
             [](const Vocabulary& v) {
                 const auto access = reading(v);
                 py::list out(static_cast<std::size_t>(v.size()));
                 for (std::int64_t i = 0; i < v.size(); ++i) {
                     out[static_cast<std::size_t>(i)] =
                         py::str(v.word(static_cast<std::int32_t>(i)));
                 }
                 return out;
             })
        .def(
            "encode_text",
            [](Vocabulary& v, py::handle text, bool grow, bool with_counts,
               std::int64_t first_line) {
                const AccessState::Claim access(v.access, kVocabularyName, grow);
                const std::string_view view = text_view(text);
                // A str's UTF-8 is valid by construction; bytes are checked while tokenized.
                const bool check_utf8 = py::isinstance<py::bytes>(text);
                std::vector<std::int32_t> ids;
                std::vector<std::int64_t> offsets{0};
                std::vector<std::uint64_t> counts;
                {
                    py::gil_scoped_release release;
                    v.encode_lines(view, grow, ids, offsets, with_counts ? &counts : nullptr,
                                   check_utf8, first_line);
                }
                py::object c = py::none();
                if (with_counts) c = to_array(counts);
                return py::make_tuple(to_array(ids), to_array(offsets), c);
            },
            py::arg("text"), py::arg("grow"), py::arg("with_counts") = false,
            py::arg("first_line") = 1,
            "(ids int32, offsets int64 [S + 1], per-id token counts uint64 or None) of text: "
            "lines are sentences, words are separated by ASCII whitespace. Bytes that are not "
            "UTF-8 raise ValueError naming the line (numbered from first_line), and leave the "
            "vocabulary as it was.")
        .def(
            "encode_sentences",
            [](Vocabulary& v, py::handle sentences, int pad) -> py::object {
                const auto access = changing(v);
                // encode_text of the sentences' tokens joined by spaces and lines, each
                // sentence between `pad` <s> and `pad` </s> (words added), without building
                // the text; None where that text would not give back the tokens (a sentence
                // that is not a list or tuple, a token that is not a str, is empty or holds
                // whitespace), so that the caller can take another way.
                if (!PyList_Check(sentences.ptr()) || pad < 0) return py::none();
                std::vector<std::int32_t> ids;
                std::vector<std::int64_t> offsets{0};
                std::vector<std::uint64_t> counts(3, 0);
                const Py_ssize_t num = PyList_GET_SIZE(sentences.ptr());
                for (Py_ssize_t s = 0; s < num; ++s) {
                    PyObject* sentence = PyList_GET_ITEM(sentences.ptr(), s);
                    if (!PyList_Check(sentence) && !PyTuple_Check(sentence)) return py::none();
                    PyObject** items = PySequence_Fast_ITEMS(sentence);
                    const Py_ssize_t len = PySequence_Fast_GET_SIZE(sentence);
                    for (int k = 0; k < pad; ++k)
                        ids.push_back(static_cast<std::int32_t>(ngram::kBos));
                    for (Py_ssize_t i = 0; i < len; ++i) {
                        if (!PyUnicode_Check(items[i])) return py::none();
                        Py_ssize_t size = 0;
                        const char* data = PyUnicode_AsUTF8AndSize(items[i], &size);
                        if (data == nullptr) throw py::error_already_set();
                        const std::string_view word(data, static_cast<std::size_t>(size));
                        if (word.empty()) return py::none();
                        for (char c : word) {
                            if (ngram::is_space(c) || c == '\n') return py::none();
                        }
                        const std::int32_t id = v.add(word);
                        ids.push_back(id);
                        if (static_cast<std::size_t>(id) >= counts.size()) {
                            counts.resize(static_cast<std::size_t>(id) + 1, 0);
                        }
                        ++counts[static_cast<std::size_t>(id)];
                    }
                    for (int k = 0; k < pad; ++k)
                        ids.push_back(static_cast<std::int32_t>(ngram::kEos));
                    counts[ngram::kBos] += static_cast<std::uint64_t>(pad);
                    counts[ngram::kEos] += static_cast<std::uint64_t>(pad);
                    offsets.push_back(static_cast<std::int64_t>(ids.size()));
                }
                return py::make_tuple(to_array(ids), to_array(offsets), to_array(counts));
            },
            py::arg("sentences"), py::arg("pad"),
            "(ids, offsets, per-id counts) of a list of token lists padded with `pad` <s> and "
            "</s>, words added; None when encode_text of their text would differ.");

    py::class_<NgramCounts> counts(m, "_NgramCounts");
    def_claim(counts, kCountsName);
    counts.def(py::init<int>(), py::arg("order"))
        .def_property_readonly("order", &NgramCounts::order)
        .def(
            "add",
            [](NgramCounts& c, py::handle ids_obj, py::handle offsets_obj, bool pad) {
                const auto access = changing(c);
                const auto [ids, offsets] = sentence_arrays(ids_obj, offsets_obj);
                const int threads = get_num_threads();
                py::gil_scoped_release release;
                c.add_sentences(ids.data(), offsets.data(), offsets.size() - 1, threads, pad);
            },
            py::arg("ids"), py::arg("offsets"), py::arg("pad") = true)
        .def(
            "add_ngrams",
            [](NgramCounts& c, py::handle words_obj, int n, py::handle counts_obj) {
                const auto access = changing(c);
                const auto words = vector_arg<std::int32_t>(words_obj, "ngrams", "int32");
                const auto counts = vector_arg<std::uint64_t>(counts_obj, "counts", "uint64");
                if (n < 1 || n > c.order()) {
                    throw py::value_error("n must be in [1, " + std::to_string(c.order()) +
                                          "], got " + std::to_string(n));
                }
                if (words.size() != counts.size() * n) {
                    throw py::value_error(
                        "ngrams must hold n * len(counts) = " + std::to_string(counts.size() * n) +
                        " ids, got " + std::to_string(words.size()));
                }
                py::gil_scoped_release release;
                c.add_ngrams(words.data(), n, counts.data(), counts.size());
            },
            py::arg("ngrams"), py::arg("n"), py::arg("counts"))
        .def(
            "followers",
            [](const NgramCounts& c, py::handle context_obj) {
                const auto access = reading(c);
                const auto context = vector_arg<std::int32_t>(context_obj, "context", "int32");
                std::vector<std::int32_t> words;
                std::vector<std::uint64_t> counts;
                c.followers(context.data(), static_cast<int>(context.size()), words, counts);
                return py::make_tuple(to_array(words), to_array(counts));
            },
            py::arg("context"))
        .def("size",
             [](const NgramCounts& c, py::handle n) {
                 const auto access = reading(c);
                 return c.size(order_arg(c, n));
             })
        .def("total",
             [](const NgramCounts& c, py::handle n) {
                 const auto access = reading(c);
                 return c.total(order_arg(c, n));
             })
        .def(
            "count",
            [](const NgramCounts& c, py::handle words_obj) -> std::uint64_t {
                const auto access = reading(c);
                const auto words = vector_arg<std::int32_t>(words_obj, "ngram", "int32");
                if (words.size() < 1 || words.size() > c.order()) {
                    throw py::value_error("an n-gram must have 1 to " + std::to_string(c.order()) +
                                          " words, got " + std::to_string(words.size()));
                }
                return c.count(words.data(), static_cast<int>(words.size()));
            },
            py::arg("ngram"))
        .def(
            "ngrams",
            [](const NgramCounts& c, py::handle n_obj) {
                const auto access = reading(c);
                const int n = order_arg(c, n_obj);
                const std::int64_t size = c.size(n);
                py::array_t<std::int32_t> words(
                    {static_cast<py::ssize_t>(size), static_cast<py::ssize_t>(n)});
                py::array_t<std::uint64_t> counts(static_cast<py::ssize_t>(size));
                {
                    py::gil_scoped_release release;
                    c.ngrams(n, words.mutable_data(), counts.mutable_data());
                }
                return py::make_tuple(words, counts);
            },
            py::arg("n"))
        .def(
            "count_of_counts",
            [](const NgramCounts& c, py::handle n, int max_count) {
                const auto access = reading(c);
                return to_array(c.count_of_counts(order_arg(c, n), max_count));
            },
            py::arg("n"), py::arg("max_count"))
        .def(
            "merge",
            [](NgramCounts& c, const NgramCounts& other, py::handle translate_obj) {
                // (c.merge(c): the change claimed first covers the read of the same store)
                const auto access = changing(c);
                const auto other_access = reading(other);
                if (translate_obj.is_none()) {
                    py::gil_scoped_release release;
                    c.merge(other);
                    return;
                }
                const auto t = vector_arg<std::uint32_t>(translate_obj, "translate", "uint32");
                std::vector<std::uint32_t> translate(t.data(), t.data() + t.size());
                py::gil_scoped_release release;
                c.merge(other, &translate);
            },
            py::arg("other"), py::arg("translate") = py::none())
        .def(
            "continuation_counts",
            [](const NgramCounts& c, py::handle n_obj) {
                const auto access = reading(c);
                const int n = order_arg(c, n_obj);
                std::vector<std::uint64_t> values;
                {
                    py::gil_scoped_release release;
                    values = c.continuation_counts(n);
                }
                return to_array(values);
            },
            py::arg("n"))
        .def("word_bound",
             [](const NgramCounts& c) {
                 const auto access = reading(c);
                 return c.word_bound();
             })
        .def(
            "prune",
            [](NgramCounts& c, const std::vector<std::uint64_t>& min_counts) {
                const auto access = changing(c);
                c.prune(min_counts);
            },
            py::arg("min_counts"))
        .def("to_bytes",
             [](const NgramCounts& c) {
                 const auto access = reading(c);
                 return py::bytes(c.to_bytes());
             })
        .def_static(
            "from_bytes",
            [](const py::buffer& data) {
                // Read in place (bytes, or a memoryview of them: no copy of a large store).
                const py::buffer_info info = data.request();
                if (info.ndim != 1 || info.itemsize != 1 || info.strides[0] != 1) {
                    throw py::type_error("data must be a contiguous bytes-like object");
                }
                const std::string_view bytes(static_cast<const char*>(info.ptr),
                                             static_cast<std::size_t>(info.size));
                py::gil_scoped_release release;
                return NgramCounts::from_bytes(bytes);
            },
            py::arg("data"))
        .def("memory_bytes", [](const NgramCounts& c) {
            const auto access = reading(c);
            return c.memory_bytes();
        });

    py::class_<NltkLookupScorer>(m, "_NltkLookupScorer")
        .def(py::init([](const NgramCounts& counts, const Vocabulary& words,
                         const std::string& method, int order, double param, double vocab_size,
                         py::handle in_vocab_obj, std::int32_t unk) {
                 const auto access = reading(counts);
                 const auto words_access = reading(words);
                 static const std::pair<const char*, NltkMethod> kMethods[] = {
                     {"mle", NltkMethod::Mle},
                     {"lidstone", NltkMethod::Lidstone},
                     {"witten_bell", NltkMethod::WittenBell},
                     {"kneser_ney", NltkMethod::KneserNey},
                     {"absolute_discounting", NltkMethod::AbsoluteDiscounting},
                     {"stupid_backoff", NltkMethod::StupidBackoff}};
                 const auto in_vocab = vector_arg<std::uint8_t>(in_vocab_obj, "in_vocab", "uint8");
                 for (const auto& [name, value] : kMethods) {
                     if (method != name) continue;
                     const int threads = get_num_threads();
                     std::vector<std::uint8_t> flags(in_vocab.data(),
                                                     in_vocab.data() + in_vocab.size());
                     py::gil_scoped_release release;
                     return new NltkLookupScorer{
                         NltkScorer(counts, value, order, param, vocab_size, threads), &counts,
                         &words, std::move(flags), unk};
                 }
                 throw py::value_error("unknown method " + method);
             }),
             py::arg("counts"), py::arg("words"), py::arg("method"), py::arg("order"),
             py::arg("param"), py::arg("vocab_size"), py::arg("in_vocab"), py::arg("unk"),
             py::keep_alive<1, 2>(), py::keep_alive<1, 3>())
        .def(
            "score",
            [](const NltkLookupScorer& s, py::handle word, py::handle context) {
                const auto access = s.reading();
                std::vector<std::int32_t> ids;
                if (!context.is_none()) s.lookup_all(context, ids);
                const std::int32_t w = s.lookup(word);
                return s.scorer.score(w, ids.data(), static_cast<int>(ids.size()));
            },
            py::arg("word"), py::arg("context"),
            "nltk's score(word, context): both looked up in the vocabulary first.")
        .def(
            "score_ids",
            [](const NltkLookupScorer& s, std::int32_t word, py::handle context_obj) {
                const auto access = s.reading();
                const auto context = vector_arg<std::int32_t>(context_obj, "context", "int32");
                return s.scorer.score(word, context.data(), static_cast<int>(context.size()));
            },
            py::arg("word"), py::arg("context"),
            "nltk's unmasked_score on counter ids (-1: never counted), no lookup.")
        .def(
            "log2_score_total",
            [](const NltkLookupScorer& s, py::handle ngrams) {
                const auto access = s.reading();
                std::vector<std::int32_t> ids;
                std::vector<std::int64_t> offsets{0};
                WordMemo memo;
                for (py::handle g : py::iter(ngrams)) {
                    memo.lookup_all(s, g, ids);
                    if (static_cast<std::int64_t>(ids.size()) == offsets.back()) {
                        throw py::value_error("an n-gram to score must hold at least one word");
                    }
                    offsets.push_back(static_cast<std::int64_t>(ids.size()));
                }
                const std::int64_t count = static_cast<std::int64_t>(offsets.size()) - 1;
                const int threads = get_num_threads();
                double total = 0.0;
                {
                    py::gil_scoped_release release;
                    total = s.scorer.log2_total(count, threads, [&](std::int64_t i) {
                        return std::pair(ids.data() + offsets[i],
                                         static_cast<int>(offsets[i + 1] - offsets[i]));
                    });
                }
                return py::make_tuple(total, count);
            },
            py::arg("ngrams"),
            "(sum, count): the sum, correctly rounded as math.fsum's, of log2 of the score of "
            "each n-gram's last word given the words before it (NaN where nltk divides by "
            "zero), and the number of n-grams.")
        .def(
            "log2_score_total_of_tokens",
            [](const NltkLookupScorer& s, py::handle tokens, int min_len, int max_len) {
                const auto access = s.reading();
                std::vector<std::int32_t> ids;
                s.lookup_all(tokens, ids);
                // nltk's everygrams order: by start, then by length.
                std::vector<std::int64_t> starts;
                std::vector<int> lengths;
                const auto size = static_cast<std::int64_t>(ids.size());
                for (std::int64_t st = 0; st < size; ++st) {
                    const std::int64_t top = std::min<std::int64_t>(max_len, size - st);
                    for (std::int64_t len = min_len; len <= top; ++len) {
                        starts.push_back(st);
                        lengths.push_back(static_cast<int>(len));
                    }
                }
                const auto count = static_cast<std::int64_t>(starts.size());
                const int threads = get_num_threads();
                double total = 0.0;
                {
                    py::gil_scoped_release release;
                    total = s.scorer.log2_total(count, threads, [&](std::int64_t i) {
                        const auto k = static_cast<std::size_t>(i);
                        return std::pair(ids.data() + starts[k], lengths[k]);
                    });
                }
                return py::make_tuple(total, count);
            },
            py::arg("tokens"), py::arg("min_len"), py::arg("max_len"),
            "log2_score_total of the everygrams of `tokens` of min_len..max_len words.")
        .def(
            "scores_after",
            [](const NltkLookupScorer& s, py::handle context, py::handle samples) {
                const auto access = s.reading();
                std::vector<std::int32_t> ids;
                s.lookup_all(context, ids);
                const auto m = static_cast<int>(ids.size());
                std::vector<double> out;
                for (py::handle w : py::iter(samples)) {
                    ids.resize(static_cast<std::size_t>(m));
                    const std::int32_t id = s.lookup(w);
                    out.push_back(s.scorer.score(id, ids.data(), m));
                }
                return to_array(out);
            },
            py::arg("context"), py::arg("samples"));

    py::class_<NgramModel>(m, "_NgramModel")
        .def(py::init<int, std::int64_t>(), py::arg("order"), py::arg("vocab_size"))
        .def_property_readonly("order", &NgramModel::order)
        .def_property_readonly("vocab_size", &NgramModel::vocab_size)
        .def("size", &NgramModel::size, py::arg("n"))
        .def(
            "set",
            [](NgramModel& model, py::handle words_obj, float log_prob, float log_backoff) {
                const auto words = vector_arg<std::int32_t>(words_obj, "ngram", "int32");
                if (words.size() < 1 || words.size() > model.order()) {
                    throw py::value_error("an n-gram must have 1 to " +
                                          std::to_string(model.order()) + " words, got " +
                                          std::to_string(words.size()));
                }
                model.set(words.data(), static_cast<int>(words.size()), log_prob, log_backoff);
            },
            py::arg("ngram"), py::arg("log_prob"), py::arg("log_backoff"))
        .def(
            "get",
            [](const NgramModel& model, py::handle words_obj) -> py::object {
                const auto words = vector_arg<std::int32_t>(words_obj, "ngram", "int32");
                if (words.size() < 1 || words.size() > model.order()) {
                    throw py::value_error("an n-gram must have 1 to " +
                                          std::to_string(model.order()) + " words, got " +
                                          std::to_string(words.size()));
                }
                float p = 0.0f, b = 0.0f;
                if (!model.get(words.data(), static_cast<int>(words.size()), &p, &b)) {
                    return py::none();
                }
                return py::make_tuple(p, b);
            },
            py::arg("ngram"))
        .def(
            "ngrams",
            [](const NgramModel& model, int n) {
                const std::int64_t size = model.size(n);
                py::array_t<std::int32_t> words(
                    {static_cast<py::ssize_t>(size), static_cast<py::ssize_t>(n)});
                py::array_t<float> probs(static_cast<py::ssize_t>(size));
                py::array_t<float> backoffs(static_cast<py::ssize_t>(size));
                model.ngrams(n, words.mutable_data(), probs.mutable_data(),
                             backoffs.mutable_data());
                return py::make_tuple(words, probs, backoffs);
            },
            py::arg("n"))
        .def(
            "score",
            [](const NgramModel& model, py::handle ids_obj, py::handle offsets_obj, bool bos,
               bool eos, bool per_token) {
                const auto ids = vector_arg<std::int32_t>(ids_obj, "ids", "int32");
                const auto offsets = vector_arg<std::int64_t>(offsets_obj, "offsets", "int64");
                if (offsets.size() < 1 || offsets.at(0) != 0) {
                    throw py::value_error("offsets must start with 0");
                }
                const std::int64_t sentences = offsets.size() - 1;
                for (std::int64_t s = 0; s < sentences; ++s) {
                    if (offsets.at(s + 1) < offsets.at(s)) {
                        throw py::value_error("offsets must be non-decreasing");
                    }
                }
                if (offsets.at(sentences) > ids.size()) {
                    throw py::value_error("offsets[-1] is past the end of ids");
                }
                py::array_t<double> scores(static_cast<py::ssize_t>(sentences));
                const std::int64_t tokens = offsets.at(sentences) + (eos ? sentences : 0);
                py::array_t<float> token_scores(static_cast<py::ssize_t>(per_token ? tokens : 0));
                py::array_t<std::int32_t> lengths(static_cast<py::ssize_t>(per_token ? tokens : 0));
                const int threads = get_num_threads();
                {
                    py::gil_scoped_release release;
                    model.score(ids.data(), offsets.data(), sentences, bos, eos,
                                scores.mutable_data(),
                                per_token ? token_scores.mutable_data() : nullptr,
                                per_token ? lengths.mutable_data() : nullptr, threads);
                }
                return py::make_tuple(scores, token_scores, lengths);
            },
            py::arg("ids"), py::arg("offsets"), py::arg("bos"), py::arg("eos"),
            py::arg("per_token"))
        .def_static(
            "interpolated",
            [](const NgramCounts& counts, std::int64_t vocab_size, const std::string& method) {
                const auto access = reading(counts);
                NgramModel::Smoothing smoothing;
                if (method == "mkn") {
                    smoothing = NgramModel::Smoothing::ModifiedKneserNey;
                } else if (method == "kn") {
                    smoothing = NgramModel::Smoothing::KneserNey;
                } else if (method == "absolute") {
                    smoothing = NgramModel::Smoothing::Absolute;
                } else if (method == "witten_bell") {
                    smoothing = NgramModel::Smoothing::WittenBell;
                } else {
                    throw py::value_error(
                        "method must be 'mkn', 'kn', 'absolute' or "
                        "'witten_bell', got '" +
                        method + "'");
                }
                std::vector<float> discounts;
                std::vector<int> fallback;
                NgramModel model = [&] {
                    py::gil_scoped_release release;
                    return NgramModel::interpolated(counts, vocab_size, smoothing, &discounts,
                                                    &fallback);
                }();
                return py::make_tuple(std::move(model), discounts, fallback);
            },
            py::arg("counts"), py::arg("vocab_size"), py::arg("method"))
        .def_static(
            "backed_off",
            [](const NgramCounts& counts, std::int64_t vocab_size, const std::string& method,
               double param) {
                const auto access = reading(counts);
                NgramModel::Backoff kind;
                if (method == "mle") {
                    kind = NgramModel::Backoff::Mle;
                } else if (method == "add_k") {
                    kind = NgramModel::Backoff::AddK;
                } else if (method == "stupid_backoff") {
                    kind = NgramModel::Backoff::StupidBackoff;
                } else {
                    throw py::value_error(
                        "method must be 'mle', 'add_k' or 'stupid_backoff', got '" + method + "'");
                }
                py::gil_scoped_release release;
                return NgramModel::backed_off(counts, vocab_size, kind, param);
            },
            py::arg("counts"), py::arg("vocab_size"), py::arg("method"), py::arg("param"))
        .def(
            "full_score",
            [](const NgramModel& model, const std::vector<std::int64_t>& state, std::int64_t word) {
                const auto order = static_cast<std::size_t>(model.order());
                const std::vector<ngram::EntryRef> context = parse_state(model, state);
                std::vector<ngram::EntryRef> next(order);
                if (word < 0 || word >= model.vocab_size()) word = 0;
                int next_have = 0, matched = 0;
                const float prob =
                    model.step(context.data(), static_cast<int>(state.size()),
                               static_cast<std::uint32_t>(word), next.data(), &next_have, &matched);
                py::tuple out(static_cast<std::size_t>(next_have));
                for (int k = 0; k < next_have; ++k) {
                    const auto& e = next[static_cast<std::size_t>(k)];
                    out[static_cast<std::size_t>(k)] =
                        py::int_((static_cast<std::int64_t>(e.partition + 1) << 32) | e.index);
                }
                return py::make_tuple(prob, matched, out);
            },
            py::arg("state"), py::arg("word"))
        .def(
            "distribution",
            [](const NgramModel& model, const std::vector<std::int64_t>& state) {
                const std::vector<ngram::EntryRef> context = parse_state(model, state);
                py::array_t<float> out(static_cast<py::ssize_t>(model.vocab_size()));
                float* data = out.mutable_data();
                {
                    py::gil_scoped_release release;
                    model.distribution(context.data(), static_cast<int>(state.size()), data);
                }
                return out;
            },
            py::arg("state"))
        .def(
            "score_text",
            [](const NgramModel& model, const Vocabulary& vocab, py::handle text, bool bos,
               bool eos) {
                const auto access = reading(vocab);
                // One sentence from its text, in one call (kenlm.Model.score's use): words
                // split on whitespace, unknown words as <unk>, scored on this thread.
                const std::string_view view = text_view(text);
                // Sentences of up to kShort words (most queries) live on the stack and are
                // scored by score_short: allocations and score()'s set-up were most of the
                // time of a call of a few words (0.6 us against KenLM's 0.2 us).
                constexpr std::size_t kShort = 16;
                std::string_view short_words[kShort];
                std::vector<std::string_view> long_words;
                std::size_t count = 0;
                std::size_t i = 0;
                while (i < view.size()) {
                    while (i < view.size() && (ngram::is_space(view[i]) || view[i] == '\n')) ++i;
                    std::size_t j = i;
                    while (j < view.size() && !ngram::is_space(view[j]) && view[j] != '\n') ++j;
                    if (j > i) {
                        if (count == kShort) long_words.assign(short_words, short_words + kShort);
                        if (count < kShort) {
                            short_words[count] = view.substr(i, j - i);
                        } else {
                            long_words.push_back(view.substr(i, j - i));
                        }
                        ++count;
                    }
                    i = j;
                }
                const std::string_view* words = count <= kShort ? short_words : long_words.data();
                std::int32_t short_ids[kShort];
                std::vector<std::int32_t> long_ids(count <= kShort ? 0 : count);
                std::int32_t* ids = count <= kShort ? short_ids : long_ids.data();
                vocab.find_batch(words, count, ids);
                for (std::size_t k = 0; k < count; ++k) ids[k] = std::max(ids[k], 0);  // <unk>
                if (count <= kShort) {
                    return static_cast<double>(
                        model.score_short(ids, static_cast<std::int64_t>(count), bos, eos));
                }
                const std::int64_t offsets[2] = {0, static_cast<std::int64_t>(count)};
                double score = 0.0;
                model.score(ids, offsets, 1, bos, eos, &score, nullptr, nullptr, 1);
                return score;
            },
            py::arg("vocabulary"), py::arg("text"), py::arg("bos"), py::arg("eos"))
        .def(
            "write_arpa",
            [](const NgramModel& model, const Vocabulary& vocab, const std::string& path) {
                const auto access = reading(vocab);
                py::gil_scoped_release release;
                ngram::write_arpa(model, vocab, path);
            },
            py::arg("vocabulary"), py::arg("path"))
        .def(
            "save_binary",
            [](const NgramModel& model, const Vocabulary& vocab, const std::string& path) {
                const auto access = reading(vocab);
                py::gil_scoped_release release;
                model.save_binary(path, vocab);
            },
            py::arg("vocabulary"), py::arg("path"))
        .def(
            "to_bytes",
            [](const NgramModel& model, const Vocabulary& vocab) {
                const auto access = reading(vocab);
                // Written straight into the bytes object: a model of a few GB is not held
                // twice.
                const std::uint64_t size = model.binary_size(vocab);
                auto out = py::reinterpret_steal<py::bytes>(
                    PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(size)));
                if (!out) throw py::error_already_set();
                char* data = PyBytes_AS_STRING(out.ptr());
                {
                    py::gil_scoped_release release;
                    model.write_binary(vocab, data, size);
                }
                return out;
            },
            py::arg("vocabulary"),
            "The bytes save_binary writes to a file (the model's words of the vocabulary).")
        .def("memory_bytes", &NgramModel::memory_bytes);

    m.def(
        "_binary_model_from_bytes",
        [](const py::buffer& data, Vocabulary& vocab, const std::string& name) {
            // Read in place (bytes, or a memoryview of them: no copy of a large model).
            const py::buffer_info info = data.request();
            if (info.ndim != 1 || info.itemsize != 1 || info.strides[0] != 1) {
                throw py::type_error("data must be a contiguous bytes-like object");
            }
            const auto access = changing(vocab);
            py::gil_scoped_release release;
            return NgramModel::from_binary(static_cast<const char*>(info.ptr),
                                           static_cast<std::uint64_t>(info.size), vocab, name);
        },
        py::arg("data"), py::arg("vocabulary"), py::arg("name"),
        "The model of to_bytes's bytes (errors name `name`); the (fresh) vocabulary gets its "
        "words.");

    m.def(
        "_load_binary_model",
        [](const std::string& path, Vocabulary& vocab) {
            const auto access = changing(vocab);
            py::gil_scoped_release release;
            return NgramModel::load_binary(path, vocab);
        },
        py::arg("path"), py::arg("vocabulary"),
        "A binary model file's model; the (fresh) vocabulary gets its words.");

    m.def(
        "_build_model_files",
        [](py::handle ids_obj, py::handle offsets_obj, int order, const Vocabulary& vocab,
           const std::string& binary_path, const std::string& arpa_path,
           const std::string& temp_dir) {
            const auto access = reading(vocab);
            const auto [ids, offsets] = sentence_arrays(ids_obj, offsets_obj);
            std::vector<float> discounts;
            std::vector<int> fallback;
            std::vector<std::int64_t> sizes;
            std::vector<double> seconds;
            {
                const int threads = get_num_threads();
                py::gil_scoped_release release;
                NgramModel::build_streamed(ids.data(), offsets.data(), offsets.size() - 1, order,
                                           vocab, binary_path, arpa_path, temp_dir, threads,
                                           &discounts, &fallback, &sizes, &seconds);
            }
            return py::make_tuple(discounts, fallback, sizes, seconds);
        },
        py::arg("ids"), py::arg("offsets"), py::arg("order"), py::arg("vocabulary"),
        py::arg("binary_path"), py::arg("arpa_path"), py::arg("temp_dir"),
        "Modified Kneser-Ney of the sentences written to a binary model file and/or an ARPA "
        "file ('' for none) in bounded memory (temporary files in temp_dir): (discounts, "
        "fallback orders, n-grams per order, seconds counting, estimating, writing).");
    m.def(
        "_read_arpa",
        [](const std::string& path, Vocabulary& vocab) {
            const auto access = changing(vocab);
            py::gil_scoped_release release;
            return ngram::read_arpa(path, vocab);
        },
        py::arg("path"), py::arg("vocabulary"),
        "An ARPA file's model; its words are added to the (fresh) vocabulary.");
    m.def(
        "_format_float32",
        [](float value) {
            char out[40];
            return std::string(out, static_cast<std::size_t>(ngram::format_float(value, out)));
        },
        py::arg("value"), "A float32 as KenLM writes it in ARPA files.");
}

}  // namespace rnnkit::bindings
