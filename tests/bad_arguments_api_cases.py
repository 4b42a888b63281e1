"""Every kind of bad argument to the Python APIs gives a clear error naming the argument.

The kernels' cases are in ``bad_arguments_cases.py``; these are the newer APIs: ``rnnkit.ngram``
(Vocabulary, NgramCounts, estimate, NgramModel, ARPA and binary files), its ``nltk_compat``
(the checks NLTK itself has, with NLTK's exception types), ``rnnkit.text``, ``rnnkit.data``
and ``rnnkit.lm`` (layers, losses, optimisers, the language models and the sequence tasks).

Each case is generated from a table of (call, argument, bad value, expected exception): wrong
types, None, lists, object/bool/float/big-endian/2-D arrays, zero and negative sizes, NaN/Inf
and bools where numbers or sizes are expected, unknown names, ids out of range, read-only
arrays, paths that are not paths. The messages follow the project's style,
``<argument> must be <expected>, got <actual>``; types raise ``TypeError``, values
``ValueError``. ``tests/test_bad_arguments.py`` runs this file in a child process, so that a
crash fails one test instead of ending the run.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from rnnkit import lm as rlm
from rnnkit import text as rtext
from rnnkit.data import random_batches, sequential_batches, split
from rnnkit.ngram import NgramCounts, NgramModel, State, Vocabulary, estimate, load_arpa, load_model

NAN, INF = math.nan, math.inf
Call = Callable[[Any], Any]

# --------------------------------------------------------------------------- the tables
# Values that are not ints (for sizes, counts, orders, ids): each a TypeError naming the type.
NOT_INTS: list[Any] = [1.5, NAN, INF, True, None, "2", [2], np.float64(2.0), np.bool_(True)]
# Values that are not numbers (for rates, probabilities, temperatures).
NOT_NUMBERS: list[Any] = [True, None, "0.5", [0.5]]
# Seeds that are neither an int >= 0, a Generator nor None.
BAD_SEED_TYPES: list[Any] = ["x", 1.5, NAN, True, [1, 2]]
# Paths that are not paths.
NOT_PATHS: list[Any] = [None, 3, ["a"], b"/tmp/x"]


def _name(value: Any) -> str:
    return type(value).__name__


def _vid(value: Any) -> str:
    """A short test id for a value."""
    if isinstance(value, np.ndarray):
        order = "be-" if value.dtype.byteorder == ">" else ""
        return f"{order}{value.dtype.name}{list(value.shape)}"
    if type(value) is float and math.isnan(value):
        return "nan"
    text = repr(value) if not isinstance(value, type) else value.__name__
    return text if len(text) <= 24 else f"{_name(value)}"


# The whitespace words may not hold: ASCII, what the tokenizer splits at.
WORD_WHITESPACE = (
    "whitespace (the ASCII whitespace words are split at: space, \\t, \\n, \\r, \\v, \\f)"
)


def exact(message: str) -> str:
    return f"^{re.escape(message)}$"


def prefix(message: str) -> str:
    return f"^{re.escape(message)}"


def case(label: str, call: Call, error: type[Exception], match: str) -> Any:
    return pytest.param(call, error, match, id=label)


def _order_cases(owner: str, get: Callable[[Any], Any], methods: tuple[str, ...]) -> Iterator[Any]:
    """An order ``n`` that is not an int, or not in [1, 3], for each method of ``owner``."""
    for method in methods:
        for bad in NOT_INTS:
            yield case(
                f"{owner}.{method}-n={_vid(bad)}",
                lambda e, m=method, b=bad: getattr(get(e), m)(b),
                TypeError,
                exact(f"n must be an int, got {_name(bad)}"),
            )
        for bad in (0, -1, 4, 2**70):
            yield case(
                f"{owner}.{method}-n={bad}",
                lambda e, m=method, b=bad: getattr(get(e), m)(b),
                ValueError,
                exact(f"n must be in [1, 3], got {bad}"),
            )


def int_cases(
    label: str,
    target: Callable[[Any, Any], Any],
    name: str,
    minimum: int,
    *,
    allow_none: bool = False,
    extra_low: tuple[int, ...] = (),
) -> list[Any]:
    """An int argument checked as ``<name> must be an int, got T`` (TypeError) and
    ``<name> must be >= minimum, got v`` (ValueError)."""
    out = []
    for value in NOT_INTS:
        if value is None and allow_none:
            continue
        out.append(
            case(
                f"{label}-{name}={_vid(value)}",
                lambda e, v=value: target(e, v),
                TypeError,
                exact(f"{name} must be an int, got {_name(value)}"),
            )
        )
    for value in (minimum - 1, minimum - 2, *extra_low):
        out.append(
            case(
                f"{label}-{name}={value}",
                lambda e, v=value: target(e, v),
                ValueError,
                exact(f"{name} must be >= {minimum}, got {value}"),
            )
        )
    return out


def seed_cases(label: str, target: Callable[[Any, Any], Any], name: str = "seed") -> list[Any]:
    out = [
        case(
            f"{label}-{name}={_vid(value)}",
            lambda e, v=value: target(e, v),
            TypeError,
            exact(f"{name} must be an int, a numpy.random.Generator or None, got {_name(value)}"),
        )
        for value in BAD_SEED_TYPES
    ]
    out.append(
        case(
            f"{label}-{name}=-1",
            lambda e: target(e, -1),
            ValueError,
            exact(f"{name} must be >= 0, got -1"),
        )
    )
    return out


def path_cases(label: str, target: Callable[[Any, Any], Any]) -> list[Any]:
    return [
        case(
            f"{label}-path={_vid(value)}",
            lambda e, v=value: target(e, v),
            TypeError,
            exact(f"path must be a str or an os.PathLike, got {_name(value)}"),
        )
        for value in NOT_PATHS
    ]


def value_cases(
    label: str,
    target: Callable[[Any, Any], Any],
    name: str,
    values: list[Any],
    error: type[Exception],
    message: Callable[[Any], str],
    *,
    full: bool = True,
) -> list[Any]:
    """One case per value; ``message(value)`` is the whole message (or its beginning)."""
    return [
        case(
            f"{label}-{name}={_vid(value)}",
            lambda e, v=value: target(e, v),
            error,
            (exact if full else prefix)(message(value)),
        )
        for value in values
    ]


# --------------------------------------------------------------------------- fixtures
CORPUS = "the cat sat on the mat\nthe dog sat on the log\na cat ran\n" * 3
CHARS = "the cat sat.\nthe dog ran.\n" * 5


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Tiny corpora, stores, models and layers, built once for the module."""
    tmp = tmp_path_factory.mktemp("bad-arguments-api")
    counts = NgramCounts(3).update(CORPUS)
    model = estimate(counts, "witten_bell")
    arpa, binary = tmp / "m.arpa", tmp / "m.bin"
    model.write_arpa(arpa)
    model.save(binary)
    junk, empty = tmp / "junk.txt", tmp / "empty.txt"
    junk.write_text("junk\n")
    empty.write_text("")
    tok = rtext.CharTokenizer()
    chars = rtext.build_vocabulary(CHARS, tok)
    rnn = rlm.RNNLanguageModel(
        len(chars), 4, 4, 1, cell="gru", vocabulary=chars, tokenizer=tok, seed=0
    )
    window = rlm.WindowLanguageModel(len(chars), 2, 4, 4, vocabulary=chars, tokenizer=tok)
    emb = rlm.Embedding(5, 4, seed=0)
    emb.forward(np.array([[1, 2], [3, 4]]))
    linear = rlm.Linear(3, 2, seed=0)
    linear.forward(np.ones((2, 3), np.float32))
    dropout = rlm.Dropout(0.5, seed=0)
    dropout.forward(np.ones(3, np.float32))
    p = np.zeros(3, np.float32)
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 10, 3) for _ in range(6)]
    return SimpleNamespace(
        tmp=tmp,
        counts=counts,
        vocab=counts.vocabulary,
        small=Vocabulary(["a", "b"]),
        frozen=Vocabulary(["a", "b"], frozen=True),
        model=model,
        V=len(model.vocabulary),
        arpa=arpa,
        binary=binary,
        junk=junk,
        empty=empty,
        tok=tok,
        word_tok=rtext.WordTokenizer(),
        chars=chars,
        rnn=rnn,
        window=window,
        ids=np.array([3, 4, 5, 2, 3, 4, 5, 2] * 4),
        emb=emb,
        linear=linear,
        dropout=dropout,
        params=[(p, np.zeros_like(p))],
        seqs=seqs,
        labels=[0, 1, 2, 3, 0, 1],
        tags=[rng.integers(0, 4, 3) for _ in range(6)],
        clf=rlm.SequenceClassifier(10, 4, 4, 4, seed=0),
        tagger=rlm.SequenceTagger(10, 4, 4, 4, seed=0),
        s2s=rlm.Seq2Seq(10, 6, 4, 4, seed=0),
    )


def _run(env: SimpleNamespace, call: Call, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        result = call(env)
        if isinstance(result, Iterator):  # generators check their arguments when first run
            list(result)


# ====================================================================== rnnkit.ngram: counts
def _vocabulary_cases() -> Iterator[Any]:
    for words in (None, 3, "abc", b"ab", 1.5):
        yield case(
            f"Vocabulary-words={_vid(words)}",
            lambda e, w=words: Vocabulary(w),
            TypeError,
            exact(f"words must be an iterable of str words, got {_name(words)}"),
        )
    yield case(
        "Vocabulary-words=[3]",
        lambda e: Vocabulary([3]),
        TypeError,
        exact("a word must be a str, got int"),
    )
    for word in ("", "a b", "a\tb", "a\n", "a\vb", "a\fb", "a\rb"):
        yield case(
            f"Vocabulary-words=[{word!r}]",
            lambda e, w=word: Vocabulary([w]),
            ValueError,
            exact(f"a word must be non-empty and hold no {WORD_WHITESPACE}, got {word!r}"),
        )
    yield case(
        "Vocabulary-words=[lone surrogate]",
        lambda e: Vocabulary(["a\udcffb"]),
        ValueError,
        prefix("a word must be valid Unicode (it holds a lone surrogate"),
    )
    yield from int_cases(
        "Vocabulary.build", lambda e, v: Vocabulary.build("a b", min_count=v), "min_count", 1
    )
    yield from int_cases(
        "Vocabulary.build",
        lambda e, v: Vocabulary.build("a b", max_size=v),
        "max_size",
        0,
        allow_none=True,
    )
    sentences_message = (
        "sentences must be a str or bytes (lines are sentences) or an iterable of sentences "
        "(strings or sequences of words), got "
    )
    for bad in (None, 5, 1.5):
        yield case(
            f"Vocabulary.build-sentences={_vid(bad)}",
            lambda e, b=bad: Vocabulary.build(b),
            TypeError,
            exact(sentences_message + _name(bad)),
        )
    for bad, message in [
        ([[1, 2]], "sentence 0 must hold str words, got int"),
        ([b"a b"], "sentence 0 must be a str or a sequence of str words, got bytes"),
        (["a", 3], "sentence 1 must be a str or a sequence of str words, got int"),
        (
            ["a", ["b"]],
            "sentence 1 is a sequence of words but the sentences before it were not: give all "
            "sentences the same way",
        ),
    ]:
        yield case(
            f"Vocabulary.build-sentences={_vid(bad)}",
            lambda e, b=bad: Vocabulary.build(b),
            TypeError,
            exact(message),
        )
    for method in ("lookup", "__getitem__", "add", "__contains__"):
        for word in (None, 3, b"a", ["a"]):
            if method == "__contains__":
                continue  # `in` is False for anything that is not a word (a container's rule)
            yield case(
                f"Vocabulary.{method}-word={_vid(word)}",
                lambda e, m=method, w=word: getattr(e.small, m)(w),
                TypeError,
                exact(f"word must be a str, got {_name(word)}"),
            )
    for word in ("", "a b"):
        yield case(
            f"Vocabulary.add-word={word!r}",
            lambda e, w=word: e.small.add(w),
            ValueError,
            exact(f"word must be non-empty and hold no {WORD_WHITESPACE}, got {word!r}"),
        )
    yield case(
        "Vocabulary.add-frozen",
        lambda e: e.frozen.add("zzz"),
        ValueError,
        exact("this vocabulary is frozen: cannot add 'zzz'"),
    )
    yield from int_cases("Vocabulary.word", lambda e, v: e.small.word(v), "id", 0)
    for big in (5, 99, 2**70):
        yield case(
            f"Vocabulary.word-id={big}",
            lambda e, b=big: e.small.word(b),
            ValueError,
            exact(f"id must be <= 4, got {big}"),
        )
    for bad in (None, 3, 1.5):
        yield case(
            f"Vocabulary.encode-sentence={_vid(bad)}",
            lambda e, b=bad: e.small.encode(b),
            TypeError,
            exact(f"sentence 0 must be a str or a sequence of str words, got {_name(bad)}"),
        )
    yield case(
        "Vocabulary.encode-sentence=newline",
        lambda e: e.small.encode("a\nb"),
        ValueError,
        exact("sentence holds a newline: encode one sentence at a time"),
    )
    yield case(
        "Vocabulary.encode-sentence=[3]",
        lambda e: e.small.encode([3]),
        TypeError,
        exact("sentence 0 must hold str words, got int"),
    )
    yield case(
        "Vocabulary.encode-word-with-space",
        lambda e: e.small.encode(["a b"]),
        ValueError,
        prefix("a word of sentence 0 is empty or holds whitespace"),
    )
    for bad in (
        None,
        "ab",
        [1.5],
        [True],
        [NAN],
        np.array([3, None], dtype=object),
        np.array([1.0, 2.0], np.float32),
    ):
        yield case(
            f"Vocabulary.decode-ids={_vid(bad)}",
            lambda e, b=bad: e.small.decode(b),
            TypeError,
            exact(f"ids must be integers, got dtype {np.asarray(bad).dtype}"),
        )
    for bad in (-1, 5, 2**40, 2**70):  # (2**70: an object array)
        yield case(
            f"Vocabulary.decode-ids=[{bad}]",
            lambda e, b=bad: e.small.decode([b]),
            ValueError,
            exact(f"ids must be in [0, 5), got {bad}"),
        )


def _first_not_str(items: list[Any]) -> str:
    return _name(next(w for w in items if not isinstance(w, str)))


def _int32(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int32)


def _int64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


# (label, ids, offsets, error, message regex): update_ids and score_batch share the checks
# of the C++ binding for dtypes and shapes (offsets: update_ids allows a non-zero start).
_IDS = _int32(3, 4, 5)
_OFFSETS = _int64(0, 3)
ID_ARRAY_CASES: list[tuple[str, Any, Any, type[Exception], str]] = [
    *[
        (
            f"ids={_vid(bad)}",
            bad,
            _OFFSETS,
            TypeError,
            exact(f"ids must have dtype int32, got {got}"),
        )
        for bad, got in [
            (_IDS.astype(np.int64), "int64"),
            (_IDS.astype(np.float64), "float64"),
            (_IDS.astype(">i4"), ">i4"),
            ([3, 4, 5], "int64"),
            (None, "object"),
            (_IDS.astype(object), "object"),
            (np.array([True, False, True]), "bool"),
            (np.array(["a", "b", "c"]), "<U1"),
        ]
    ],
    (
        "ids=2-D",
        _IDS[None],
        _OFFSETS,
        ValueError,
        exact("ids must be 1-dimensional, got shape (1, 3)"),
    ),
    (
        "ids=0-D",
        np.int32(3),
        _OFFSETS,
        ValueError,
        exact("ids must be 1-dimensional, got shape ()"),
    ),
    *[
        (
            f"offsets={_vid(bad)}",
            _IDS,
            bad,
            TypeError,
            exact(f"offsets must have dtype int64, got {got}"),
        )
        for bad, got in [
            (_OFFSETS.astype(np.int32), "int32"),
            (_OFFSETS.astype(np.float64), "float64"),
            (_OFFSETS.astype(">i8"), ">i8"),
            (None, "object"),
            (_OFFSETS.astype(object), "object"),
        ]
    ],
    (
        "offsets=2-D",
        _IDS,
        _OFFSETS[None],
        ValueError,
        exact("offsets must be 1-dimensional, got shape (1, 2)"),
    ),
    (
        "offsets=0-D",
        _IDS,
        np.int64(3),
        ValueError,
        exact("offsets must be 1-dimensional, got shape ()"),
    ),
]


NGRAM_MESSAGE = "ngram must be a str of whitespace-separated words or a sequence of str, got "


def _counts_cases() -> Iterator[Any]:
    yield from int_cases("NgramCounts", lambda e, v: NgramCounts(v), "order", 1)
    for big in (65, 10**6, 2**40):
        yield case(
            f"NgramCounts-order={big}",
            lambda e, b=big: NgramCounts(b),
            ValueError,
            exact(f"order must be in [1, 64], got {big}"),
        )
    for bad in ([], "abc", {}, 3):
        yield case(
            f"NgramCounts-vocabulary={_vid(bad)}",
            lambda e, b=bad: NgramCounts(3, b),
            TypeError,
            exact(f"vocabulary must be a rnnkit.ngram.Vocabulary or None, got {_name(bad)}"),
        )
    for bad in (None, 5, 1.5):
        yield case(
            f"NgramCounts.update-sentences={_vid(bad)}",
            lambda e, b=bad: NgramCounts(2).update(b),
            TypeError,
            prefix("sentences must be a str or bytes (lines are sentences)"),
        )
    for bad, error, message in [
        ([[1, 2]], TypeError, exact("sentence 0 must hold str words, got int")),
        (["a\nb"], ValueError, prefix("sentence 0 holds a newline")),
        ([["a b"]], ValueError, prefix("a word of sentence 0 is empty or holds whitespace")),
        ([["a", ""]], ValueError, prefix("a word of sentence 0 is empty or holds whitespace")),
        (
            ["b", "<s> a"],
            ValueError,
            prefix("sentence 1 (from 0; line 2 of a text) holds <s>, which"),
        ),
        (
            [["a", "</s>"]],
            ValueError,
            prefix("sentence 0 (from 0; line 1 of a text) holds </s>, which"),
        ),
        (
            ["b", "a \udcff"],
            ValueError,
            prefix("sentence 1 (from 0; line 2 of a text) holds a lone surrogate"),
        ),
    ]:
        yield case(
            f"NgramCounts.update-sentences={_vid(bad)}",
            lambda e, b=bad: NgramCounts(2).update(b),
            error,
            message,
        )
    for label, ids, offsets, error, message in ID_ARRAY_CASES:
        yield case(
            f"NgramCounts.update_ids-{label}",
            lambda e, i=ids, o=offsets: NgramCounts(3, e.vocab).update_ids(i, o),
            error,
            message,
        )
    for label, ids, offsets, error, message in [
        ("ids-negative", _int32(3, -1, 4), _OFFSETS, ValueError, exact("ids[1] = -1 is negative")),
        (
            "ids-past-vocabulary",
            _int32(3, 99, 4),
            _OFFSETS,
            ValueError,
            prefix("ids must be < len(vocabulary) = "),
        ),
        ("ids-bos", _int32(3, 1, 4), _OFFSETS, ValueError, prefix("ids[1] = 1 is <s> or </s>")),
        (
            "offsets-decreasing",
            _IDS,
            _int64(0, 2, 1, 3),
            ValueError,
            prefix("offsets must be non-decreasing"),
        ),
        (
            "offsets-past-end",
            _IDS,
            _int64(0, 5),
            ValueError,
            exact("offsets[-1] = 5 is past the end of ids (size 3)"),
        ),
        (
            "offsets-negative",
            _IDS,
            _int64(-1, 3),
            ValueError,
            exact("offsets[0] must be >= 0, got -1"),
        ),
        (
            "offsets-empty",
            _IDS,
            _int64(),
            ValueError,
            prefix("offsets must hold at least one value"),
        ),
    ]:
        yield case(
            f"NgramCounts.update_ids-{label}",
            lambda e, i=ids, o=offsets: NgramCounts(3, e.vocab).update_ids(i, o),
            error,
            message,
        )
    for method in ("count", "__getitem__"):
        for bad in (None, 3, [3, 4], b"the cat", ("the", 3)):
            yield case(
                f"NgramCounts.{method}-ngram={_vid(bad)}",
                lambda e, m=method, b=bad: getattr(e.counts, m)(b),
                TypeError,
                exact(
                    NGRAM_MESSAGE
                    + _name(bad)
                    + (" holding int" if isinstance(bad, (list, tuple)) else "")
                ),
            )
        for bad, length in (("", 0), ("a b c d", 4)):
            yield case(
                f"NgramCounts.{method}-ngram={bad!r}",
                lambda e, m=method, b=bad: getattr(e.counts, m)(b),
                ValueError,
                exact(f"an n-gram must have 1 to 3 words, got {length}"),
            )
    yield from _order_cases(
        "NgramCounts",
        lambda e: e.counts,
        ("size", "total", "ngrams", "items", "continuation_counts", "count_of_counts"),
    )
    yield case(
        "NgramCounts.continuation_counts-n=order",
        lambda e: e.counts.continuation_counts(3),
        ValueError,
        prefix("continuation counts of order 3 need n-grams of order 4"),
    )
    yield from int_cases(
        "NgramCounts.count_of_counts", lambda e, v: e.counts.count_of_counts(2, v), "max_count", 1
    )
    for big in (2**31, 2**40, 2**70):  # 2**31 - 1 used to be allocated twice in C++, and killed
        yield case(
            f"NgramCounts.count_of_counts-max_count={big}",
            lambda e, b=big: e.counts.count_of_counts(2, b),
            ValueError,
            exact(f"max_count must be <= {2**31 - 1}, got {big}"),
        )
    for bad in (None, 3, "model"):
        yield case(
            f"NgramCounts.merge-other={_vid(bad)}",
            lambda e, b=bad: NgramCounts(3).merge(e.model if b == "model" else b),
            TypeError,
            exact(
                f"other must be NgramCounts, got {'NgramModel' if bad == 'model' else _name(bad)}"
            ),
        )
    yield case(
        "NgramCounts.merge-other-order",
        lambda e: NgramCounts(3).merge(NgramCounts(2)),
        ValueError,
        exact("other must have the same order, got 2 (this store: 3)"),
    )
    prune_type = "min_counts must be an int or a sequence of ints (one per order), got "
    for bad in (1.5, NAN, True, None, "2", np.float64(2.0)):
        yield case(
            f"NgramCounts.prune-min_counts={_vid(bad)}",
            lambda e, b=bad: NgramCounts(3).update(CORPUS).prune(b),
            TypeError,
            exact(prune_type + _name(bad)),
        )
    for bad in (-1, -5):
        yield case(
            f"NgramCounts.prune-min_counts={bad}",
            lambda e, b=bad: NgramCounts(3).update(CORPUS).prune(b),
            ValueError,
            exact(f"min_counts must be >= 0, got {bad}"),
        )
    for bad, error, message in [
        ([1, 1.5, 2], TypeError, "min_counts[1] must be an int, got float"),
        ([1, NAN, 2], TypeError, "min_counts[1] must be an int, got float"),
        ([1, None, 2], TypeError, "min_counts[1] must be an int, got NoneType"),
        ([1, 2, True], TypeError, "min_counts[2] must be an int, got bool"),
        ([1, -1, 2], ValueError, "min_counts[1] must be >= 0, got -1"),
        ([2], ValueError, "min_counts must have one value per order (3), got 1"),
        ([1, 2, 2, 2], ValueError, "min_counts must have one value per order (3), got 4"),
        (
            [2, 1, 1],
            ValueError,
            "min_counts must not decrease from one order to the next, got 1 for order 2 after "
            "2 for order 1",
        ),
    ]:
        yield case(
            f"NgramCounts.prune-min_counts={_vid(bad)}",
            lambda e, b=bad: NgramCounts(3).update(CORPUS).prune(b),
            error,
            exact(message),
        )
    for bad in (None, "abc", 3, [1, 2], np.zeros(3, np.uint8)):
        yield case(
            f"NgramCounts.from_bytes-data={_vid(bad)}",
            lambda e, b=bad: NgramCounts.from_bytes(b),
            TypeError,
            exact(f"data must be bytes, got {_name(bad)}"),
        )
    for label, data, message in [
        ("junk", lambda c: b"junk", "not NgramCounts bytes (no RNKCOUNT header)"),
        ("empty", lambda c: b"", "not NgramCounts bytes (no RNKCOUNT header)"),
        (
            "truncated",
            lambda c: c.to_bytes()[:-10],
            "NgramCounts bytes are corrupted (checksum mismatch)",
        ),
        (
            "flipped",
            lambda c: _flip(c.to_bytes(), 30),
            "NgramCounts bytes are corrupted (checksum mismatch)",
        ),
    ]:
        yield case(
            f"NgramCounts.from_bytes-data={label}",
            lambda e, d=data: NgramCounts.from_bytes(d(e.counts)),
            ValueError,
            exact(message),
        )
    for bad in (None, "abc", 3, [1, 2], np.zeros(3, np.uint8)):
        yield case(
            f"NgramModel.from_bytes-data={_vid(bad)}",
            lambda e, b=bad: NgramModel.from_bytes(b),
            TypeError,
            exact(f"data must be bytes, got {_name(bad)}"),
        )
    for label, data, message in [
        ("junk", lambda m: b"junk", "NgramModel bytes: truncated file (header)"),
        ("counts", lambda m: NgramCounts(2).to_bytes(), "NgramModel bytes: not an rnnkit "),
        ("truncated", lambda m: m.to_bytes()[:-10], "NgramModel bytes: truncated file "),
        ("trailing", lambda m: m.to_bytes() + b"x", "NgramModel bytes: truncated file or "),
    ]:
        yield case(
            f"NgramModel.from_bytes-data={label}",
            lambda e, d=data: NgramModel.from_bytes(d(e.model)),
            ValueError,
            prefix(message),
        )
    yield from path_cases("NgramCounts.save", lambda e, p: e.counts.save(p))
    yield from path_cases("NgramCounts.load", lambda e, p: NgramCounts.load(p))
    yield case(
        "NgramCounts.load-junk-file",
        lambda e: NgramCounts.load(e.junk),
        ValueError,
        exact("not NgramCounts bytes (no RNKCOUNT header)"),
    )


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


@pytest.mark.parametrize(("call", "error", "match"), [*_vocabulary_cases(), *_counts_cases()])
def test_ngram_counts(env: SimpleNamespace, call: Call, error: type[Exception], match: str) -> None:
    _run(env, call, error, match)


# ====================================================================== rnnkit.ngram: models
METHODS = ("mkn", "kn", "absolute", "witten_bell", "mle", "add_k", "laplace", "stupid_backoff")


def _estimate_cases() -> Iterator[Any]:
    for bad in (None, [], "a b", "model"):
        yield case(
            f"estimate-counts={_vid(bad)}",
            lambda e, b=bad: estimate(e.model if b == "model" else b),
            TypeError,
            exact(
                f"counts must be NgramCounts, got {'NgramModel' if bad == 'model' else _name(bad)}"
            ),
        )
    for bad in ("MKN", "foo", "", None, 3, ["mkn"], "kneser_ney", "Laplace"):
        yield case(
            f"estimate-method={_vid(bad)}",
            lambda e, b=bad: estimate(e.counts, b),
            ValueError,
            f"^method must be one of 'mkn', .*'stupid_backoff', got {re.escape(repr(bad))}$",
        )
    k_message = "k must be a finite number > 0, got "
    for bad in (0, -1.0, NAN, INF, -INF, np.float64(NAN), -1e-300):
        yield case(
            f"estimate-add_k-k={_vid(bad)}",
            lambda e, b=bad: estimate(e.counts, "add_k", k=b),
            ValueError,
            exact(k_message + repr(bad)),
        )
    for bad in (0, -1.0, NAN, INF, 1.5, np.float64(NAN)):
        yield case(
            f"estimate-stupid_backoff-alpha={_vid(bad)}",
            lambda e, b=bad: estimate(e.counts, "stupid_backoff", alpha=b),
            ValueError,
            exact(f"alpha must be in (0, 1], got {bad!r}"),
        )
    for bad in (True, None, "0.5", [0.5], np.array(0.5), 0.5 + 0j):
        for method, option in (("add_k", "k"), ("stupid_backoff", "alpha")):
            yield case(
                f"estimate-{method}-{option}={_vid(bad)}",
                lambda e, b=bad, m=method, o=option: estimate(e.counts, m, **{o: b}),
                TypeError,
                exact(f"{option} must be a number, got {_name(bad)}"),
            )
    for method, options, message in [
        ("mkn", {"k": 1}, "method 'mkn' takes no options, got k"),
        ("kn", {"discount": 0.5}, "method 'kn' takes no options, got discount"),
        ("witten_bell", {"alpha": 0.4}, "method 'witten_bell' takes no options, got alpha"),
        ("laplace", {"k": 1}, "method 'laplace' takes no options, got k"),
        ("mle", {"discount": 1}, "method 'mle' takes no options, got discount"),
        ("add_k", {"alpha": 1}, "method 'add_k' takes only 'k', got alpha"),
        ("stupid_backoff", {"k": 1}, "method 'stupid_backoff' takes only 'alpha', got k"),
    ]:
        yield case(
            f"estimate-{method}-options={','.join(options)}",
            lambda e, m=method, o=options: estimate(e.counts, m, **o),
            TypeError,
            exact(message),
        )
    for method in METHODS:  # estimated from nothing, a model used to be all <unk>, silently
        yield case(
            f"estimate-{method}-empty-counts",
            lambda e, m=method: estimate(NgramCounts(3), m),
            ValueError,
            exact("counts must hold at least one sentence, got an empty NgramCounts"),
        )


def _model_cases() -> Iterator[Any]:
    for method in ("score", "full_scores", "perplexity"):
        for bad in (None, 3, 1.5, np.array([3, 4]), b"the cat", bytearray(b"ab")):
            yield case(
                f"NgramModel.{method}-sentence={_vid(bad)}",
                lambda e, m=method, b=bad: getattr(e.model, m)(b),
                TypeError,
                exact(f"sentence must be a str or a sequence of words, got {_name(bad)}"),
            )
        for bad in ([3, 4], ["the", 3], [None]):
            yield case(
                f"NgramModel.{method}-sentence={_vid(bad)}",
                lambda e, m=method, b=bad: getattr(e.model, m)(b),
                TypeError,
                exact(f"sentence must hold str words, got {_first_not_str(bad)}"),
            )
    for bad in (None, 3, 1.5):
        yield case(
            f"NgramModel.evaluate-sentences={_vid(bad)}",
            lambda e, b=bad: e.model.evaluate(b),
            TypeError,
            prefix("sentences must be a str or bytes (lines are sentences)"),
        )
    yield case(
        "NgramModel.evaluate-sentences=[[a],[a b]]",
        lambda e: e.model.evaluate([["the"], ["the", "cat sat"]]),
        ValueError,
        prefix("a word of sentence 1 is empty or holds whitespace"),
    )
    yield case(
        "NgramModel.evaluate-sentences=[3]",
        lambda e: e.model.evaluate([3]),
        TypeError,
        exact("sentence 0 must be a str or a sequence of str words, got int"),
    )
    for label, ids, offsets, error, message in ID_ARRAY_CASES:
        yield case(
            f"NgramModel.score_batch-{label}",
            lambda e, i=ids, o=offsets: e.model.score_batch(i, o),
            error,
            message,
        )
    for label, ids, low, high in [
        ("negative", _int32(3, -1, 4), -1, 4),
        ("past-vocabulary", _int32(3, 99, 4), 3, 99),
        ("vocabulary-size", "V", 3, "V"),
        ("int32-min", _int32(3, -(2**31)), -(2**31), 3),
    ]:
        yield case(
            f"NgramModel.score_batch-ids-{label}",
            lambda e, i=ids: e.model.score_batch(
                _int32(3, e.V) if isinstance(i, str) else i,
                _int64(0, 2 if isinstance(i, str) else i.size),
            ),
            ValueError,
            r"^ids must be in \[0, \d+\) \(this model's vocabulary\), got values in \["
            + f"{low}, "
            + (r"\d+" if high == "V" else str(high))
            + r"\]$",
        )
    for label, offsets, message in [
        ("decreasing", _int64(0, 2, 1, 3), "offsets must be non-decreasing"),
        ("past-end", _int64(0, 5), "offsets[-1] is past the end of ids"),
        ("start-1", _int64(1, 3), "offsets must start with 0"),
        ("negative", _int64(-1, 3), "offsets must start with 0"),
        ("empty", _int64(), "offsets must start with 0"),
    ]:
        yield case(
            f"NgramModel.score_batch-offsets-{label}",
            lambda e, o=offsets: e.model.score_batch(_IDS, o),
            ValueError,
            exact(message),
        )
    for bad in (None, 3, ["the"]):
        yield case(
            f"NgramModel.logprob-word={_vid(bad)}",
            lambda e, b=bad: e.model.logprob(b, ["the"]),
            TypeError,
            exact(f"word must be a str, got {_name(bad)}"),
        )
    context_message = (
        "context must be a str of whitespace-separated words or a sequence of str, got "
    )
    for bad in (None, 3, 1.5, b"the"):
        yield case(
            f"NgramModel.logprob-context={_vid(bad)}",
            lambda e, b=bad: e.model.logprob("cat", b),
            TypeError,
            exact(context_message + _name(bad)),
        )
    yield case(
        "NgramModel.logprob-context=[3]",
        lambda e: e.model.logprob("cat", [3]),
        TypeError,
        exact("context must hold str words, got int"),
    )
    for bad in (0, 1, 1.0, -1, NAN, INF, True, None, "10", np.float64(0)):
        yield case(
            f"NgramModel.logprob-base={_vid(bad)}",
            lambda e, b=bad: e.model.logprob("cat", ["the"], base=b),
            ValueError,
            exact(f"base must be a finite number > 0 other than 1, got {bad!r}"),
        )
    for method in ("full_score", "base_score"):
        for bad in (None, (1,), [1], 1, "state"):
            yield case(
                f"NgramModel.{method}-state={_vid(bad)}",
                lambda e, m=method, b=bad: getattr(e.model, m)(b, "cat"),
                TypeError,
                exact(f"state must be a rnnkit.ngram.State, got {_name(bad)}"),
            )
        for bad in (None, 3, ["cat"], b"cat"):
            yield case(
                f"NgramModel.{method}-word={_vid(bad)}",
                lambda e, m=method, b=bad: getattr(e.model, m)(e.model.begin_state(), b),
                TypeError,
                exact(f"word must be a str, got {_name(bad)}"),
            )
        for entries, message in [
            ((99, 999), exact("state is not a state of this model")),
            ((0, 0, 0, 0, 0), exact("state holds 5 n-grams; this model's states hold at most 2")),
            *[
                (
                    (1, bad),
                    exact(
                        "entries must be in [0, 2**63) (references to stored n-grams, as "
                        f"NgramModel.full_score returns them), got entries[1] = {bad}"
                    ),
                )
                for bad in (-1, -(2**33), 2**63, 2**64 + 5)
            ],
        ]:
            yield case(
                f"NgramModel.{method}-state=State{entries}",
                lambda e, m=method, s=entries: getattr(e.model, m)(State(s), "cat"),
                ValueError,
                message,
            )
    for bad in (None, 5, "ab", b"ab", 1.5):
        yield case(
            f"State-entries={_vid(bad)}",
            lambda e, b=bad: State(b),
            TypeError,
            exact(f"entries must be a sequence of ints, got {_name(bad)}"),
        )
    for bad in (("a",), (1.5,), (True,), (None,)):
        yield case(
            f"State-entries={_vid(bad)}",
            lambda e, b=bad: State(b),
            TypeError,
            exact(f"entries must hold ints, got {_name(bad[0])}"),
        )
    top_k_values = [0, -1, 1.5, NAN, True, "3", None]
    for bad in top_k_values:
        if bad is None:
            continue
        yield case(
            f"NgramModel.next_word_distribution-top_k={_vid(bad)}",
            lambda e, b=bad: e.model.next_word_distribution("the", top_k=b),
            ValueError,
            exact(f"top_k must be a positive int or None, got {bad!r}"),
        )
        yield case(
            f"NgramModel.generate-top_k={_vid(bad)}",
            lambda e, b=bad: e.model.generate("the", 3, top_k=b),
            ValueError,
            exact(f"top_k must be a positive int or None, got {bad!r}"),
        )
    for bad in (3, 1.5, b"x"):
        yield case(
            f"NgramModel.next_word_distribution-context={_vid(bad)}",
            lambda e, b=bad: e.model.next_word_distribution(b),
            TypeError,
            exact(context_message + _name(bad)),
        )
    yield case(
        "NgramModel.next_word_distribution-context=[3]",
        lambda e: e.model.next_word_distribution([3]),
        TypeError,
        exact("context must hold str words, got int"),
    )
    yield case(
        "NgramModel.next_word_distribution-context=foreign-State",
        lambda e: e.model.next_word_distribution(State((99, 999))),
        ValueError,
        exact("state is not a state of this model"),
    )
    for bad in (-1, 1.5, NAN, INF, True, None, "3"):
        yield case(
            f"NgramModel.generate-n={_vid(bad)}",
            lambda e, b=bad: e.model.generate("the", b),
            ValueError,
            exact(f"n must be an int >= 0, got {bad!r}"),
        )
    for bad in (-1, -1e-9, NAN, INF, -INF, True, None, "1"):
        yield case(
            f"NgramModel.generate-temperature={_vid(bad)}",
            lambda e, b=bad: e.model.generate("the", 3, temperature=b),
            ValueError,
            exact(f"temperature must be a finite number >= 0, got {bad!r}"),
        )
    yield from seed_cases("NgramModel.generate", lambda e, v: e.model.generate("the", 3, seed=v))
    prompt_message = "prompt must be a str of whitespace-separated words or a sequence of str, got "
    for bad in (None, 3, b"x"):
        yield case(
            f"NgramModel.generate-prompt={_vid(bad)}",
            lambda e, b=bad: e.model.generate(b, 3),
            TypeError,
            exact(prompt_message + _name(bad)),
        )
    yield case(
        "NgramModel.generate-prompt=[3]",
        lambda e: e.model.generate([3], 3),
        TypeError,
        exact("prompt must hold str words, got int"),
    )
    yield from _order_cases("NgramModel", lambda e: e.model, ("size", "ngrams"))
    for bad in (None, 3, b"ab", 1.5):
        yield case(
            f"NgramModel.__getitem__-ngram={_vid(bad)}",
            lambda e, b=bad: e.model[b],
            TypeError,
            exact(NGRAM_MESSAGE + _name(bad)),
        )
    yield case(
        "NgramModel.__getitem__-ngram=[3, 4]",
        lambda e: e.model[[3, 4]],
        TypeError,
        exact("ngram must hold str words, got int"),
    )
    yield from path_cases("NgramModel.write_arpa", lambda e, p: e.model.write_arpa(p))
    yield from path_cases("NgramModel.save", lambda e, p: e.model.save(p))
    for label, load in (
        ("load_arpa", load_arpa),
        ("load_model", load_model),
        ("NgramModel.load", NgramModel.load),
    ):
        yield from path_cases(label, lambda e, p, f=load: f(p))
        yield case(
            f"{label}-missing-file",
            lambda e, f=load: f(e.tmp / "missing.bin"),
            FileNotFoundError,
            r"^no (ARPA|model) file at .*missing\.bin$",
        )
    for label, load, attr, message in [
        ("load_arpa-junk", load_arpa, "junk", r":1: no \\data\\ line before the end of the file$"),
        (
            "load_arpa-empty",
            load_arpa,
            "empty",
            r":0: no \\data\\ line before the end of the file$",
        ),
        (
            "load_model-junk",
            load_model,
            "junk",
            r":1: no \\data\\ line before the end of the file$",
        ),
        ("NgramModel.load-junk", NgramModel.load, "junk", r": truncated file \(header\)$"),
        ("NgramModel.load-arpa", NgramModel.load, "arpa", r": "),
    ]:
        yield case(
            label,
            lambda e, f=load, a=attr: f(getattr(e, a)),
            ValueError,
            r"^.*"
            + re.escape(f"{attr if attr != 'arpa' else 'm'}.{'arpa' if attr == 'arpa' else 'txt'}")
            + message,
        )


@pytest.mark.parametrize(("call", "error", "match"), [*_estimate_cases(), *_model_cases()])
def test_ngram_model(env: SimpleNamespace, call: Call, error: type[Exception], match: str) -> None:
    _run(env, call, error, match)


# ============================================================== rnnkit.ngram.nltk_compat
def _nltk_modules() -> tuple[Any, Any, Any]:
    return (
        importlib.import_module("nltk.lm"),
        importlib.import_module("nltk.lm.preprocessing"),
        importlib.import_module("nltk.util"),
    )


def _rnnkit_nltk_modules() -> tuple[Any, Any, Any]:
    return (
        importlib.import_module("rnnkit.ngram.nltk_compat"),
        importlib.import_module("rnnkit.ngram.nltk_compat.preprocessing"),
        importlib.import_module("rnnkit.ngram.nltk_compat.util"),
    )


NLTK_TEXT = [["a", "b", "c"], ["a", "c", "d"]]


def _fitted(lm: Any, pp: Any, make: Callable[[Any], Any]) -> Any:
    model = make(lm)
    model.fit(*pp.padded_everygram_pipeline(2, NLTK_TEXT))
    return model


def _fit_without_vocabulary(lm: Any) -> None:
    lm.MLE(2).fit([[("a",)]])


# (label, call(lm, pp, util), exception, regex for rnnkit's message): NLTK raises the same
# exception type for each (checked): rnnkit keeps NLTK's types, and its messages.
NLTK_PARITY: list[tuple[str, Callable[[Any, Any, Any], Any], type[Exception], str]] = [
    *[
        (
            f"Vocabulary-unk_cutoff={v}",
            lambda lm, pp, ut, v=v: lm.Vocabulary(["a"], unk_cutoff=v),
            ValueError,
            exact(f"Cutoff value cannot be less than 1. Got: {v}"),
        )
        for v in (0, -1, -2.5)
    ],
    *[
        (
            f"KneserNeyInterpolated-discount={_vid(v)}",
            lambda lm, pp, ut, v=v: lm.KneserNeyInterpolated(2, discount=v),
            ValueError,
            prefix("Discount must be between 0 and 1"),
        )
        for v in (-0.1, 1.5, NAN, INF)
    ],
    (
        "fit-without-vocabulary",
        lambda lm, pp, ut: _fit_without_vocabulary(lm),
        ValueError,
        prefix("Cannot fit without a vocabulary or text to create it from."),
    ),
    *[
        (
            f"NgramCounter-ngram={_vid(v)}",
            lambda lm, pp, ut, v=v: lm.NgramCounter([[v]]),
            TypeError,
            prefix(f"Ngram <{v}> isn't a tuple"),
        )
        for v in ("ab", ["a", "b"], 3)
    ],
    *[
        (
            f"Vocabulary.lookup-{_vid(v)}",
            lambda lm, pp, ut, v=v: lm.Vocabulary(["a"]).lookup(v),
            TypeError,
            prefix("Unsupported type for looking up in vocabulary"),
        )
        for v in (5, None, [1], 1.5)
    ],
    *[
        (
            f"Lidstone-gamma={_vid(v)}",
            lambda lm, pp, ut, v=v: _fitted(lm, pp, lambda m: m.Lidstone(v, 2)).score("a", ["b"]),
            TypeError,
            exact(f"gamma must be a real number, got {_name(v)}"),
        )
        for v in ("x", None, [1])
    ],
    *[
        (
            f"StupidBackoff-alpha={_vid(v)}",
            lambda lm, pp, ut, v=v: _fitted(
                lm, pp, lambda m: m.StupidBackoff(alpha=v, order=2)
            ).score("c", ["d"]),
            TypeError,
            exact(f"alpha must be a real number, got {_name(v)}"),
        )
        for v in ("x", None)
    ],
    *[
        (
            f"AbsoluteDiscountingInterpolated-discount={_vid(v)}",
            lambda lm, pp, ut, v=v: _fitted(
                lm, pp, lambda m: m.AbsoluteDiscountingInterpolated(2, discount=v)
            ).score("c", ["a"]),
            TypeError,
            exact(f"discount must be a real number, got {_name(v)}"),
        )
        for v in ("x", None)
    ],
    *[
        (
            f"generate-num_words={_vid(v)}",
            lambda lm, pp, ut, v=v: _fitted(lm, pp, lambda m: m.MLE(2)).generate(v, random_seed=3),
            TypeError,
            prefix(f"'{_name(v)}' object cannot be interpreted as an integer"),
        )
        for v in (1.5, "2", None)
    ],
    (
        "generate-random_seed=[1]",
        lambda lm, pp, ut: _fitted(lm, pp, lambda m: m.MLE(2)).generate(2, random_seed=[1]),
        TypeError,
        # random.Random's own message (NLTK's too): Python 3.10 hashes the seed first
        prefix("The only supported seed types are")
        if sys.version_info >= (3, 11)
        else exact("unhashable type: 'list'"),
    ),
    *[
        (
            f"score-word={_vid(v)}",
            lambda lm, pp, ut, v=v: _fitted(lm, pp, lambda m: m.MLE(2)).score(v),
            TypeError,
            exact(f"words must be str, got {_name(v)}"),
        )
        for v in (None, 5)
    ],
    (
        "score-context=[1]",
        lambda lm, pp, ut: _fitted(lm, pp, lambda m: m.MLE(2)).score("a", [1]),
        TypeError,
        exact("words must be str, got int"),
    ),
    (
        "perplexity-ngram=(1,)",
        lambda lm, pp, ut: _fitted(lm, pp, lambda m: m.MLE(2)).perplexity([(1,)]),
        TypeError,
        exact("words must be str, got int"),
    ),
    *[
        (
            f"entropy-text_ngrams={_vid(v)}",
            lambda lm, pp, ut, v=v: _fitted(lm, pp, lambda m: m.MLE(2)).entropy(v),
            TypeError,
            exact(f"'{_name(v)}' object is not iterable"),
        )
        for v in (None, 5)
    ],
    (
        "entropy-no-ngrams",
        lambda lm, pp, ut: _fitted(lm, pp, lambda m: m.MLE(2)).entropy([]),
        ZeroDivisionError,
        prefix("entropy of no n-grams"),
    ),
]

# rnnkit's own checks where NLTK accepts the value silently (or fails later, elsewhere).
NLTK_COMPAT_ONLY: list[tuple[str, Callable[[Any, Any, Any], Any], type[Exception], str]] = [
    *[
        (
            f"MLE-order={v}",
            lambda lm, pp, ut, v=v: lm.MLE(v),
            ValueError,
            exact(f"order must be >= 1, got {v}"),
        )
        for v in (0, -1)
    ],
    *[
        (
            f"MLE-order={_vid(v)}",
            lambda lm, pp, ut, v=v: lm.MLE(v),
            TypeError,
            exact(f"order must be an int, got {_name(v)}"),
        )
        for v in (1.5, "2", None, True)
    ],
    (
        "MLE-counter=5",
        lambda lm, pp, ut: lm.MLE(2, counter=5),
        TypeError,
        exact("counter must be an rnnkit.ngram.nltk_compat.NgramCounter, got int"),
    ),
    (
        "NgramCounter-ngram=()",
        lambda lm, pp, ut: lm.NgramCounter([[()]]),
        ValueError,
        exact("an n-gram must hold at least one word, got ()"),
    ),
    (
        "NgramCounter-ngram=(1, 2)",
        lambda lm, pp, ut: lm.NgramCounter([[(1, 2)]]),
        TypeError,
        exact("n-gram words must be str, got int: 1"),
    ),
    (
        "NgramCounter[0]",
        lambda lm, pp, ut: lm.NgramCounter([[("a",)]])[0],
        ValueError,
        exact("an n-gram order must be >= 1, got 0"),
    ),
    *[
        (
            f"NgramCounter[{_vid(v)}]",
            lambda lm, pp, ut, v=v: lm.NgramCounter([[("a",)]])[v],
            TypeError,
            prefix("counter keys are an order (int), a word (str) or a context, got"),
        )
        for v in (1.5, None)
    ],
    *[
        (
            f"ngrams-n={v}",
            lambda lm, pp, ut, v=v: ut.ngrams("abc", v),
            ValueError,
            exact(f"n must be >= 1, got {v}"),
        )
        for v in (0, -1)
    ],
    *[
        (
            f"everygrams-{arg}=0",
            lambda lm, pp, ut, a=arg: ut.everygrams("abc", **{a: 0}),
            ValueError,
            exact(f"{arg} must be >= 1, got 0"),
        )
        for arg in ("min_len", "max_len")
    ],
    (
        "everygrams-min_len=None",
        lambda lm, pp, ut: ut.everygrams("abc", min_len=None),
        TypeError,
        exact("min_len must be an int, got NoneType"),
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [pytest.param(c, err, m, id=label) for label, c, err, m in NLTK_PARITY],
)
def test_nltk_compat_as_nltk(call: Callable[..., Any], error: type[Exception], match: str) -> None:
    """rnnkit raises NLTK's exception type (its message names the argument where NLTK's
    does not); NLTK itself raises the same type."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # NLTK's own, on some Pythons
        with pytest.raises(error, match=match):
            call(*_rnnkit_nltk_modules())
        with pytest.raises(error):
            call(*_nltk_modules())


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [pytest.param(c, err, m, id=label) for label, c, err, m in NLTK_COMPAT_ONLY],
)
def test_nltk_compat_own_checks(
    call: Callable[..., Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call(*_rnnkit_nltk_modules())


# ============================================================================= rnnkit.text
TOKENIZER_MESSAGE = (
    "tokenizer must be a tokenizer (an object with tokenize and detokenize methods, e.g. "
    "rnnkit.text.WordTokenizer()), got "
)
BAD_TOKENIZERS: list[Any] = [None, "word", 3, rtext.WordTokenizer]


def _tokenizer_got(value: Any) -> str:
    return f"the class {value.__name__}" if isinstance(value, type) else _name(value)


def _text_cases() -> Iterator[Any]:
    tokenizers = {
        "CharTokenizer": rtext.CharTokenizer(),
        "WordTokenizer": rtext.WordTokenizer(),
        "WhitespaceTokenizer": rtext.WhitespaceTokenizer(),
    }
    for bad in ("nfc", 1, "", "NFX", True):
        yield case(
            f"CharTokenizer-normalize={_vid(bad)}",
            lambda e, b=bad: rtext.CharTokenizer(b),
            ValueError,
            exact(f"normalize must be None, 'NFC', 'NFKC', 'NFD' or 'NFKD', got {bad!r}"),
        )
    for tname, tok in tokenizers.items():
        for bad in (None, b"a b", 3, ["a b"]):
            yield case(
                f"{tname}.tokenize-text={_vid(bad)}",
                lambda e, t=tok, b=bad: t.tokenize(b),
                TypeError,
                exact(f"text must be a str, got {_name(bad)}"),
            )
        for bad in (None, 3, "ab", b"ab", {"a"}):
            yield case(
                f"{tname}.detokenize-tokens={_vid(bad)}",
                lambda e, t=tok, b=bad: t.detokenize(b),
                TypeError,
                exact(f"tokens must be a sequence of str tokens, got {_name(bad)}"),
            )
        for bad in ([1, 2], ["a", None]):
            yield case(
                f"{tname}.detokenize-tokens={_vid(bad)}",
                lambda e, t=tok, b=bad: t.detokenize(b),
                TypeError,
                exact(f"tokens must hold str tokens, got {_name(bad[-1])}"),
            )
    for bad in (None, b"a b", 3, ["a b"]):
        yield case(
            f"build_vocabulary-text={_vid(bad)}",
            lambda e, b=bad: rtext.build_vocabulary(b, e.word_tok),
            TypeError,
            exact(f"text must be a str, got {_name(bad)}"),
        )
    for bad in BAD_TOKENIZERS:
        yield case(
            f"build_vocabulary-tokenizer={_vid(bad)}",
            lambda e, b=bad: rtext.build_vocabulary("a b", b),
            TypeError,
            exact(TOKENIZER_MESSAGE + _tokenizer_got(bad)),
        )
    yield from int_cases(
        "build_vocabulary",
        lambda e, v: rtext.build_vocabulary("a b", e.word_tok, min_count=v),
        "min_count",
        1,
    )
    yield from int_cases(
        "build_vocabulary",
        lambda e, v: rtext.build_vocabulary("a b", e.word_tok, max_size=v),
        "max_size",
        0,
        allow_none=True,
    )
    text_message = (
        "text must be a str or an iterable of tokenized sentences (sequences of str), got "
    )
    for bad in (None, 3, 1.5, b"the cat"):
        yield case(
            f"encode-text={_vid(bad)}",
            lambda e, b=bad: rtext.encode(b, e.chars, e.tok),
            TypeError,
            exact(text_message + _name(bad)),
        )
    for bad, message in [
        (["the cat"], "sentence 0 is str, not a sequence of str tokens"),
        ([["t"], 3], "sentence 1 is int, not a sequence of str tokens"),
        (np.array([3, 4]), "sentence 0 is int64, not a sequence of str tokens"),
    ]:
        yield case(
            f"encode-text={_vid(bad)}",
            lambda e, b=bad: rtext.encode(b, e.chars, e.tok),
            TypeError,
            exact(f"text must be a str or an iterable of tokenized sentences; {message}"),
        )
    yield case(
        "encode-text=[[t], [3]]",
        lambda e: rtext.encode([["t"], [3]], e.chars),
        TypeError,
        exact("sentence 1 of text must hold str tokens, got int"),
    )
    yield case(
        "encode-text=str-without-tokenizer",
        lambda e: rtext.encode("the", e.chars),
        TypeError,
        exact("a str text needs a tokenizer (e.g. rnnkit.text.WordTokenizer())"),
    )
    vocabulary_message = "vocabulary must be a rnnkit.ngram.Vocabulary, got "
    for bad in (None, "x", ["the"], 3, {"the": 3}):
        yield case(
            f"encode-vocabulary={_vid(bad)}",
            lambda e, b=bad: rtext.encode("the", b, e.tok),
            TypeError,
            exact(vocabulary_message + _name(bad)),
        )
        yield case(
            f"decode-vocabulary={_vid(bad)}",
            lambda e, b=bad: rtext.decode([3], b, e.tok),
            TypeError,
            exact(vocabulary_message + _name(bad)),
        )
        yield case(
            f"save_vocabulary-vocabulary={_vid(bad)}",
            lambda e, b=bad: rtext.save_vocabulary(b, e.tmp / "v.json"),
            TypeError,
            exact(vocabulary_message + _name(bad)),
        )
    for bad in BAD_TOKENIZERS[1:]:
        yield case(
            f"encode-tokenizer={_vid(bad)}",
            lambda e, b=bad: rtext.encode("the", e.chars, b),
            TypeError,
            exact(TOKENIZER_MESSAGE + _tokenizer_got(bad)),
        )
    for bad in BAD_TOKENIZERS:
        yield case(
            f"decode-tokenizer={_vid(bad)}",
            lambda e, b=bad: rtext.decode([3], e.chars, b),
            TypeError,
            exact(TOKENIZER_MESSAGE + _tokenizer_got(bad)),
        )
    for bad in (None, "the", [1.5], [True], [NAN], np.array([3, None], dtype=object)):
        yield case(
            f"decode-ids={_vid(bad)}",
            lambda e, b=bad: rtext.decode(b, e.chars, e.tok),
            TypeError,
            exact(f"ids must be integers, got dtype {np.asarray(bad).dtype}"),
        )
    for bad in (-1, 99):
        yield case(
            f"decode-ids=[{bad}]",
            lambda e, b=bad: rtext.decode([b], e.chars, e.tok),
            ValueError,
            r"^ids must be in \[0, \d+\), got " + str(bad) + "$",
        )
    yield from path_cases("save_vocabulary", lambda e, p: rtext.save_vocabulary(e.chars, p))
    yield from path_cases("load_vocabulary", lambda e, p: rtext.load_vocabulary(p))
    ok = {"format": "rnnkit.vocabulary", "version": 1}
    for label, document, message in [
        ("list", [1, 2], " is not a vocabulary file (no format 'rnnkit.vocabulary')"),
        ("no-format", {}, " is not a vocabulary file (no format 'rnnkit.vocabulary')"),
        ("version-2", {**ok, "version": 2}, " is a vocabulary of format version 2"),
        ("no-words", ok, ": the words must be distinct strings after <unk>, <s>, </s>"),
        ("int-word", {**ok, "words": ["<unk>", "<s>", "</s>", 3]}, ": the words must be distinct"),
        (
            "duplicate",
            {**ok, "words": ["<unk>", "<s>", "</s>", "a", "a"]},
            ": the words must be distinct",
        ),
        (
            "word-with-space",
            {**ok, "words": ["<unk>", "<s>", "</s>", "a b"]},
            ": a word must be non-empty",
        ),
        ("not-json", None, " is not a vocabulary file: "),
    ]:
        yield case(
            f"load_vocabulary-file={label}",
            lambda e, d=document, n=label: rtext.load_vocabulary(
                _write_json(e.tmp / f"{n}.json", d)
            ),
            ValueError,
            r"^.*" + re.escape(f"{label}.json{message}"),
        )


def _write_json(path: Path, document: Any) -> Path:
    if document is None:
        path.write_bytes(b"\xff\xfe{")
    else:
        path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(("call", "error", "match"), list(_text_cases()))
def test_text(env: SimpleNamespace, call: Call, error: type[Exception], match: str) -> None:
    _run(env, call, error, match)


# ============================================================================= rnnkit.data
STREAM = np.arange(20)


def _data_cases() -> Iterator[Any]:
    batchers = {"sequential_batches": sequential_batches, "random_batches": random_batches}
    for fname, fn in batchers.items():
        yield from int_cases(fname, lambda e, v, f=fn: f(STREAM, v, 3), "batch_size", 1)
        yield from int_cases(fname, lambda e, v, f=fn: f(STREAM, 2, v), "seq_len", 1)
        for bad, shape in [
            (None, "()"),
            ("abc", "()"),
            (np.int64(3), "()"),
            (STREAM.reshape(4, 5), "(4, 5)"),
        ]:
            yield case(
                f"{fname}-ids={_vid(bad)}",
                lambda e, b=bad, f=fn: f(b, 2, 3),
                ValueError,
                exact(f"ids must be a 1-D array of token ids, got shape {shape}"),
            )
        for bad in (
            STREAM.astype(np.float64),
            np.array(["a", "b"]),
            STREAM.astype(object),
            STREAM.astype(bool),
            STREAM + 0j,
            np.array([1.0, NAN]),
        ):
            yield case(
                f"{fname}-ids={_vid(bad)}",
                lambda e, b=bad, f=fn: f(b, 2, 3),
                TypeError,
                exact(f"ids must be integers, got dtype {bad.dtype}"),
            )
        for bad, low, high in [
            (-STREAM, -19, 0),
            (np.full(20, 2**63 + 5, dtype=np.uint64), 2**63 + 5, 2**63 + 5),
        ]:
            yield case(
                f"{fname}-ids={_vid(bad)}-range",
                lambda e, b=bad, f=fn: f(b, 2, 3),
                ValueError,
                exact(f"ids must be token ids in [0, 2**63), got values in [{low}, {high}]"),
            )
        yield case(
            f"{fname}-ids=too-short",
            lambda e, f=fn: f(np.arange(2), 2, 3),
            ValueError,
            prefix("2 tokens are too few for "),
        )
    yield from seed_cases("random_batches", lambda e, v: random_batches(STREAM, 2, 3, seed=v))
    yield case(  # numpy's "high is out of bounds for int64" before
        "random_batches-seq_len=10**30",
        lambda e: random_batches(STREAM, 2, 10**30),
        ValueError,
        exact(
            f"20 tokens are too few for a subsequence of seq_len={10**30} + 1 tokens: seq_len "
            "must be <= 19 for this stream"
        ),
    )
    for name in ("valid", "test"):
        for bad in (1, 1.5, -0.1, NAN, INF, np.float32(1.0), np.int64(-1)):
            yield case(
                f"split-{name}={_vid(bad)}",
                lambda e, b=bad, n=name: split(STREAM, **{n: b}),
                ValueError,
                exact(f"{name} must be a fraction in [0, 1), got {bad!r}"),
            )
        for bad in (True, np.bool_(False), None, "0.1", [0.1]):
            yield case(
                f"split-{name}={_vid(bad)}",
                lambda e, b=bad, n=name: split(STREAM, **{n: b}),
                TypeError,
                exact(f"{name} must be a number, got {_name(bad)}"),
            )
    for bad in (None, 1, "yes"):
        yield case(
            f"split-shuffle={_vid(bad)}",
            lambda e, b=bad: split(STREAM, shuffle=b),
            TypeError,
            exact(f"shuffle must be a bool, got {_name(bad)}"),
        )
    yield case(
        "split-valid+test",
        lambda e: split(STREAM, 0.6, 0.5),
        ValueError,
        prefix("valid + test must leave something to train on, got 1.1"),
    )
    items_message = (
        "items must be a sequence (e.g. a list) or an array of at least one dimension, got "
    )
    for bad in (None, 3, (i for i in range(3)), {1, 2, 3}, {1: 2}, "abcdef", np.array(3)):
        yield case(
            f"split-items={_vid(bad)}",
            lambda e, b=bad: split(b),
            TypeError,
            exact(
                items_message + _name(bad) + (" of shape ()" if isinstance(bad, np.ndarray) else "")
            ),
        )
    for shuffle in (True, False):
        yield from seed_cases(
            f"split-shuffle={shuffle}", lambda e, v, s=shuffle: split(STREAM, shuffle=s, seed=v)
        )


@pytest.mark.parametrize(("call", "error", "match"), list(_data_cases()))
def test_data(env: SimpleNamespace, call: Call, error: type[Exception], match: str) -> None:
    _run(env, call, error, match)


# ======================================================================= rnnkit.lm: layers
F32 = np.float32
BAD_DTYPES: list[Any] = [np.int64, np.float16, object, ">f4", "foo", 3, np.complex64]


def _dtype_got(value: Any) -> str:
    try:
        return str(np.dtype(value))
    except TypeError:
        return repr(value)


def _readonly(shape: int) -> np.ndarray:
    a = np.zeros(shape, F32)
    a.flags.writeable = False
    return a


def _layer_cases() -> Iterator[Any]:
    for name, make in [
        ("num_embeddings", lambda v: rlm.Embedding(v, 4)),
        ("embedding_dim", lambda v: rlm.Embedding(5, v)),
        ("in_features", lambda v: rlm.Linear(v, 2)),
        ("out_features", lambda v: rlm.Linear(3, v)),
    ]:
        yield from int_cases(name.split("_")[0].title(), lambda e, v, m=make: m(v), name, 1)
    layers = {
        "Embedding": lambda **kw: rlm.Embedding(5, 4, **kw),
        "Linear": lambda **kw: rlm.Linear(3, 2, **kw),
        "Dropout": lambda **kw: rlm.Dropout(0.1, **kw),
    }
    for lname, make in layers.items():
        for bad in BAD_DTYPES:
            yield case(
                f"{lname}-dtype={_vid(bad)}",
                lambda e, m=make, b=bad: m(dtype=b),
                TypeError,
                exact(f"dtype must be float32 or float64, got {_dtype_got(bad)}"),
            )
        yield from seed_cases(lname, lambda e, v, m=make: m(seed=v))
    for bad in (1, 1.5, -0.1, NAN, INF, True, None, "0.1"):
        yield case(
            f"Dropout-p={_vid(bad)}",
            lambda e, b=bad: rlm.Dropout(b),
            ValueError,
            exact(f"p must be in [0, 1), got {bad!r}"),
        )
    for bad, low, high in [
        ([-1], -1, -1),
        ([5], 5, 5),
        (np.array([2**64 - 1], np.uint64), 2**64 - 1, 2**64 - 1),
    ]:
        yield case(
            f"Embedding.forward-ids={_vid(bad)}",
            lambda e, b=bad: rlm.Embedding(5, 4).forward(b),
            ValueError,
            exact(f"ids must be in [0, 5), got values in [{low}, {high}]"),
        )
    for bad in ([1.5], None, ["a"], [True], np.array([1, None], object), [NAN]):
        yield case(
            f"Embedding.forward-ids={_vid(bad)}",
            lambda e, b=bad: rlm.Embedding(5, 4).forward(b),
            TypeError,
            exact(f"ids must be integers, got dtype {np.asarray(bad).dtype}"),
        )
    yield case(
        "Embedding.backward-before-forward",
        lambda e: rlm.Embedding(5, 4).backward(np.ones((1, 4), F32)),
        RuntimeError,
        exact("Embedding.backward needs a forward in training mode first"),
    )
    for bad, message in [
        (np.ones((2, 2, 5), F32), "dy must have shape [..., 4], got (2, 2, 5)"),
        (np.ones((4, 4), F32), "dy must have shape (2, 2, 4), got (4, 4)"),
        (np.float32(1), "dy must have shape [..., 4], got ()"),
    ]:
        yield case(
            f"Embedding.backward-dy={_vid(bad)}",
            lambda e, b=bad: e.emb.backward(b),
            ValueError,
            exact(message),
        )
    for bad in (
        np.ones((2, 2, 4)),
        None,
        np.ones((2, 2, 4), ">f4"),
        np.ones((2, 2, 4), object),
        [[[0.0] * 4] * 2] * 2,
    ):
        yield case(
            f"Embedding.backward-dy={_vid(bad)}",
            lambda e, b=bad: e.emb.backward(b),
            TypeError,
            exact(f"dy must have dtype float32 (the layer's), got {np.asarray(bad).dtype}"),
        )
    for bad, message in [
        (np.ones((2, 4), F32), "x must have shape [..., 3], got (2, 4)"),
        (np.float32(1), "x must have shape [..., 3], got ()"),
        (np.ones((2, 0), F32), "x must have shape [..., 3], got (2, 0)"),
    ]:
        yield case(
            f"Linear.forward-x={_vid(bad)}",
            lambda e, b=bad: rlm.Linear(3, 2).forward(b),
            ValueError,
            exact(message),
        )
    for bad in (
        np.ones((2, 3)),
        None,
        np.ones((2, 3), int),
        np.ones((2, 3), ">f4"),
        [[1.0, 2.0, 3.0]],
    ):
        yield case(
            f"Linear.forward-x={_vid(bad)}",
            lambda e, b=bad: rlm.Linear(3, 2).forward(b),
            TypeError,
            exact(f"x must have dtype float32 (the layer's), got {np.asarray(bad).dtype}"),
        )
    yield case(
        "Linear.backward-before-forward",
        lambda e: rlm.Linear(3, 2).backward(np.ones((1, 2), F32)),
        RuntimeError,
        exact("Linear.backward needs a forward in training mode first"),
    )
    for bad, message in [
        (np.ones((2, 3), F32), "dy must have shape [..., 2], got (2, 3)"),
        (np.ones((3, 2), F32), "dy must have shape (2, 2), got (3, 2)"),
        (np.ones(2, F32), "dy must have shape (2, 2), got (2,)"),
    ]:
        yield case(
            f"Linear.backward-dy={_vid(bad)}",
            lambda e, b=bad: e.linear.backward(b),
            ValueError,
            exact(message),
        )
    for bad in (np.ones((2, 2)), None, np.ones((2, 2), ">f4")):
        yield case(
            f"Linear.backward-dy={_vid(bad)}",
            lambda e, b=bad: e.linear.backward(b),
            TypeError,
            exact(f"dy must have dtype float32 (the layer's), got {np.asarray(bad).dtype}"),
        )
    for bad in (None, [1], "linear"):
        yield case(
            f"Linear.tie-embedding={_vid(bad)}",
            lambda e, b=bad: rlm.Linear(3, 2).tie(rlm.Linear(3, 2) if b == "linear" else b),
            TypeError,
            exact(
                "embedding must be a rnnkit.lm.Embedding, got "
                + ("Linear" if bad == "linear" else _name(bad))
            ),
        )
    for label, emb in [
        ("shape", lambda: rlm.Embedding(5, 4)),
        ("dtype", lambda: rlm.Embedding(2, 3, dtype=np.float64)),
    ]:
        yield case(
            f"Linear.tie-embedding-{label}",
            lambda e, m=emb: rlm.Linear(3, 2).tie(m()),
            ValueError,
            prefix("cannot tie a Linear(3, 2) to an Embedding"),
        )
    for bad in (None, [1.0, 2.0], "abc", 3.0):
        yield case(
            f"Dropout.forward-x={_vid(bad)}",
            lambda e, b=bad: rlm.Dropout(0.5).forward(b),
            TypeError,
            exact(f"x must be a numpy.ndarray, got {_name(bad)}"),
        )
    for bad in (np.ones(3), np.ones(3, int), np.ones(3, ">f4")):
        yield case(
            f"Dropout.forward-x={_vid(bad)}",
            lambda e, b=bad: rlm.Dropout(0.5).forward(b),
            TypeError,
            exact(f"x must have dtype float32 (the layer's), got {bad.dtype}"),
        )
    yield case(
        "Dropout.backward-dy=shape",
        lambda e: e.dropout.backward(np.ones(4, F32)),
        ValueError,
        exact("dy must have shape (3,) (that of x), got (4,)"),
    )
    yield case(
        "Dropout.backward-dy=float64",
        lambda e: e.dropout.backward(np.ones(3)),
        TypeError,
        exact("dy must have dtype float32 (the layer's), got float64"),
    )
    yield case(
        "Dropout.backward-dy=None",
        lambda e: e.dropout.backward(None),
        TypeError,
        exact("dy must be a numpy.ndarray, got NoneType"),
    )


LOGITS = np.zeros((3, 5), F32)
TARGETS = np.array([0, 1, 2])


def _loss_cases() -> Iterator[Any]:
    sce = rlm.softmax_cross_entropy
    for bad in (
        np.zeros((3, 5), int),
        None,
        np.zeros((3, 5), np.float16),
        np.zeros((3, 5), ">f4"),
        "abc",
    ):
        yield case(
            f"softmax_cross_entropy-logits={_vid(bad)}",
            lambda e, b=bad: sce(b, TARGETS),
            TypeError,
            exact(f"logits must be float32 or float64, got {np.asarray(bad).dtype}"),
        )
    for bad, targets in [(np.float32(1), np.array(0)), (np.zeros((3, 0), F32), TARGETS)]:
        yield case(
            f"softmax_cross_entropy-logits={_vid(bad)}",
            lambda e, b=bad, t=targets: sce(b, t),
            ValueError,
            prefix(
                "logits must have a class axis of at least one class (shape [..., V]), got shape"
            ),
        )
    for bad in (
        TARGETS.astype(float),
        None,
        np.array([True, False, True]),
        np.array(["a", "b", "c"]),
    ):
        yield case(
            f"softmax_cross_entropy-targets={_vid(bad)}",
            lambda e, b=bad: sce(LOGITS, b),
            TypeError,
            exact(f"targets must be integers, got dtype {np.asarray(bad).dtype}"),
        )
    yield case(
        "softmax_cross_entropy-targets=shape",
        lambda e: sce(LOGITS, np.array([0, 1])),
        ValueError,
        exact("targets must have shape (3,), got (2,)"),
    )
    for bad in (-1, 5, -101):
        yield case(
            f"softmax_cross_entropy-targets-value={bad}",
            lambda e, b=bad: sce(LOGITS, np.array([0, b, 2])),
            ValueError,
            exact(f"targets must be in [0, 5) or ignore_index (-100), got {bad}"),
        )
    for bad in ("x", 1.5, None, True, NAN, np.float64(-100)):
        yield case(
            f"softmax_cross_entropy-ignore_index={_vid(bad)}",
            lambda e, b=bad: sce(LOGITS, TARGETS, ignore_index=b),
            TypeError,
            exact(f"ignore_index must be an int, got {_name(bad)}"),
        )
    for bad in (2**63, -(2**70)):
        yield case(
            f"softmax_cross_entropy-ignore_index={bad}",
            lambda e, b=bad: sce(LOGITS, TARGETS, ignore_index=b),
            ValueError,
            exact(f"ignore_index must fit in int64, got {bad}"),
        )
    for bad in ("none", "Mean", None, 1, ""):
        yield case(
            f"softmax_cross_entropy-reduction={_vid(bad)}",
            lambda e, b=bad: sce(LOGITS, TARGETS, reduction=b),
            ValueError,
            exact(f"reduction must be 'mean' or 'sum', got {bad!r}"),
        )
    for bad in (None, "abc", np.ones(3, int), np.ones(3, bool)):
        yield case(
            f"log_softmax-logits={_vid(bad)}",
            lambda e, b=bad: rlm.log_softmax(b),
            TypeError,
            exact(f"logits must be a floating array, got dtype {np.asarray(bad).dtype}"),
        )
    yield case(
        "log_softmax-logits=0-D",
        lambda e: rlm.log_softmax(np.float32(1)),
        ValueError,
        exact("logits must have a class axis (shape [..., V])"),
    )
    for bad in (1.5, None, "x", True):
        yield case(
            f"log_softmax-axis={_vid(bad)}",
            lambda e, b=bad: rlm.log_softmax(LOGITS, axis=b),
            TypeError,
            exact(f"axis must be an int, got {_name(bad)}"),
        )
    for bad in (2, -3):
        yield case(
            f"log_softmax-axis={bad}",
            lambda e, b=bad: rlm.log_softmax(LOGITS, axis=b),
            ValueError,  # numpy's AxisError
            exact(f"axis {bad} is out of bounds for array of dimension 2"),
        )


def _optimizer_cases() -> Iterator[Any]:
    def rate_cases(
        label: str, make: Callable[[Any, Any], Any], name: str, wanted: str, bad_values: list[Any]
    ) -> Iterator[Any]:
        for bad in bad_values:
            yield case(
                f"{label}-{name}={_vid(bad)}",
                lambda e, b=bad: make(e, b),
                ValueError,
                exact(f"{name} must be a finite number {wanted}, got {bad!r}"),
            )
        for bad in NOT_NUMBERS:
            yield case(
                f"{label}-{name}={_vid(bad)}",
                lambda e, b=bad: make(e, b),
                TypeError,
                exact(f"{name} must be a number, got {_name(bad)}"),
            )

    positive = [0, -1.0, NAN, INF, np.float64(NAN), -INF]
    non_negative = [-1.0, -1e-12, NAN, INF]
    below_one = [1, 1.5, -0.1, NAN, INF]
    yield from rate_cases("SGD", lambda e, v: rlm.SGD(e.params, lr=v), "lr", "> 0", positive)
    yield from rate_cases("Adam", lambda e, v: rlm.Adam(e.params, lr=v), "lr", "> 0", positive)
    yield from rate_cases(
        "SGD",
        lambda e, v: rlm.SGD(e.params, lr=0.1, momentum=v),
        "momentum",
        "in [0, 1)",
        below_one,
    )
    yield from rate_cases(
        "SGD",
        lambda e, v: rlm.SGD(e.params, lr=0.1, weight_decay=v),
        "weight_decay",
        ">= 0",
        non_negative,
    )
    yield from rate_cases(
        "Adam",
        lambda e, v: rlm.Adam(e.params, weight_decay=v),
        "weight_decay",
        ">= 0",
        non_negative,
    )
    yield from rate_cases("Adam", lambda e, v: rlm.Adam(e.params, eps=v), "eps", "> 0", positive)
    yield from rate_cases(
        "clip_grad_norm",
        lambda e, v: rlm.clip_grad_norm([np.ones(3, F32)], v),
        "max_norm",
        "> 0",
        positive,
    )
    for betas, index, value in [
        ((1, 0.9), 0, 1),
        ((0.9, NAN), 1, NAN),
        ((-0.1, 0.9), 0, -0.1),
        ((0.9, 1.0), 1, 1.0),
    ]:
        yield case(
            f"Adam-betas={_vid(betas)}",
            lambda e, b=betas: rlm.Adam(e.params, betas=b),
            ValueError,
            exact(f"betas[{index}] must be a finite number in [0, 1), got {value!r}"),
        )
    for betas in ((0.9,), (0.9, 0.99, 0.9), ()):
        yield case(
            f"Adam-betas={_vid(betas)}",
            lambda e, b=betas: rlm.Adam(e.params, betas=b),
            ValueError,
            exact(f"betas must be two numbers, got {betas!r}"),
        )
    for betas in (None, 0.9, "ab", {0.9, 0.99}):
        yield case(
            f"Adam-betas={_vid(betas)}",
            lambda e, b=betas: rlm.Adam(e.params, betas=b),
            TypeError,
            exact(f"betas must be a pair of numbers, got {_name(betas)}"),
        )
    yield case(
        "Adam-betas=(str, str)",
        lambda e: rlm.Adam(e.params, betas=("a", "b")),
        TypeError,
        exact("betas[0] must be a number, got str"),
    )
    yield case(
        "SGD-nesterov-without-momentum",
        lambda e: rlm.SGD(e.params, lr=0.1, nesterov=True),
        ValueError,
        exact("nesterov needs momentum > 0"),
    )
    p = np.zeros(3, F32)
    for cls in (rlm.SGD, rlm.Adam):
        for bad in (None, 3, np.zeros(3)):
            yield case(
                f"{cls.__name__}-parameters={_vid(bad)}",
                lambda e, c=cls, b=bad: c(b, lr=0.1),
                TypeError,
                exact(
                    "parameters must be an iterable of (parameter, gradient) pairs (a model's "
                    f"parameters()), got {_name(bad)}"
                ),
            )
        for label, bad, error, message in [
            ("empty", [], ValueError, exact("an optimizer needs at least one parameter")),
            (
                "array",
                [p],
                TypeError,
                exact("parameters must be (parameter, gradient) pairs; item 0 is not"),
            ),
            (
                "triple",
                [(p, p, p)],
                TypeError,
                exact("parameters must be (parameter, gradient) pairs; item 0 is not"),
            ),
            (
                "list-pair",
                [[p, p]],
                TypeError,
                exact("parameters must be (parameter, gradient) pairs; item 0 is not"),
            ),
            (
                "lists",
                [([0.0], [0.0])],
                TypeError,
                exact("item 0: parameter and gradient must be numpy arrays"),
            ),
            (
                "shape",
                [(p, np.zeros(4, F32))],
                ValueError,
                prefix("item 0: the gradient must match its parameter"),
            ),
            (
                "dtype",
                [(p, np.zeros(3))],
                ValueError,
                prefix("item 0: the gradient must match its parameter"),
            ),
            (
                "int",
                [(np.zeros(3, int), np.zeros(3, int))],
                TypeError,
                exact("item 0: parameters must be float32 or float64, got int64"),
            ),
            (
                "read-only-parameter",
                [(_readonly(3), np.zeros(3, F32))],
                ValueError,
                prefix("item 0: the parameter is read-only"),
            ),
            (
                "read-only-gradient",
                [(np.zeros(3, F32), _readonly(3))],
                ValueError,
                prefix("item 0: the gradient is read-only"),
            ),
        ]:
            yield case(
                f"{cls.__name__}-parameters={label}",
                lambda e, c=cls, b=bad: c(b, lr=0.1),
                error,
                message,
            )
    for fname, fn in (
        ("grad_norm", rlm.grad_norm),
        ("clip_grad_norm", lambda g: rlm.clip_grad_norm(g, 1.0)),
    ):
        for bad in (None, 3, "ab"):
            yield case(
                f"{fname}-gradients={_vid(bad)}",
                lambda e, f=fn, b=bad: f(b),
                TypeError,
                exact(f"gradients must be an iterable of numpy arrays, got {_name(bad)}"),
            )
        for bad in ([3], [[1.0, 2.0]], [(p, p)], [None]):
            yield case(
                f"{fname}-gradients={_vid(bad)}",
                lambda e, f=fn, b=bad: f(b),
                TypeError,
                exact(f"gradients[0] must be a numpy.ndarray, got {_name(bad[0])}"),
            )
        for bad in (np.ones(3, int), np.ones(3, object), np.ones(3, np.float16)):
            yield case(
                f"{fname}-gradients=[{_vid(bad)}]",
                lambda e, f=fn, b=bad: f([np.ones(2, F32), b]),
                TypeError,
                exact(f"gradients[1] must have dtype float32 or float64, got {bad.dtype}"),
            )
    yield case(
        "clip_grad_norm-gradients=read-only",
        lambda e: rlm.clip_grad_norm([_readonly(3)], 1.0),
        ValueError,
        exact("gradients[0] is read-only (clip_grad_norm scales it in place)"),
    )


@pytest.mark.parametrize(
    ("call", "error", "match"), [*_layer_cases(), *_loss_cases(), *_optimizer_cases()]
)
def test_lm_layers(env: SimpleNamespace, call: Call, error: type[Exception], match: str) -> None:
    _run(env, call, error, match)


# ========================================================================= rnnkit.lm: models
def _model_kwargs(e: SimpleNamespace, kind: str) -> dict[str, Any]:
    if kind == "rnn":
        return {"vocab_size": len(e.chars), "embed": 4, "hidden": 4, "layers": 1}
    return {"vocab_size": len(e.chars), "context": 2, "embed": 4, "hidden": 4}


def _make(e: SimpleNamespace, kind: str, **kw: Any) -> Any:
    cls = rlm.RNNLanguageModel if kind == "rnn" else rlm.WindowLanguageModel
    return cls(**{**_model_kwargs(e, kind), **kw})


FIT = {"epochs": 1, "max_steps": 1, "batch_size": 2, "seq_len": 3}


def _lm_cases() -> Iterator[Any]:
    sizes = {
        "rnn": ("vocab_size", "embed", "hidden", "layers"),
        "window": ("vocab_size", "embed", "hidden"),
    }
    for kind, names in sizes.items():
        label = "RNNLanguageModel" if kind == "rnn" else "WindowLanguageModel"
        for name in names:
            yield from int_cases(label, lambda e, v, k=kind, n=name: _make(e, k, **{n: v}), name, 1)
        for bad in (1, 1.5, -0.1, NAN, INF, True, None, "0.1"):
            yield case(
                f"{label}-dropout={_vid(bad)}",
                lambda e, k=kind, b=bad: _make(e, k, dropout=b),
                ValueError,
                exact(f"dropout must be in [0, 1), got {bad!r}"),
            )
        for bad in ([], "abc", {}, ["a"] * 16):
            yield case(
                f"{label}-vocabulary={_vid(bad)}",
                lambda e, k=kind, b=bad: _make(e, k, vocabulary=b),
                TypeError,
                exact(f"vocabulary must be a rnnkit.ngram.Vocabulary or None, got {_name(bad)}"),
            )
        yield case(
            f"{label}-vocabulary-size",
            lambda e, k=kind: _make(e, k, vocabulary=Vocabulary(["a", "b"])),
            ValueError,
            r"^vocab_size is \d+ but the vocabulary has 5 ids$",
        )
        for bad in BAD_TOKENIZERS[1:]:
            yield case(
                f"{label}-tokenizer={_vid(bad)}",
                lambda e, k=kind, b=bad: _make(e, k, tokenizer=b),
                TypeError,
                exact(TOKENIZER_MESSAGE + _tokenizer_got(bad)),
            )
        yield from seed_cases(label, lambda e, v, k=kind: _make(e, k, seed=v))
        for bad in (np.int64, "foo", np.float16):
            yield case(
                f"{label}-dtype={_vid(bad)}",
                lambda e, k=kind, b=bad: _make(e, k, dtype=b),
                TypeError,
                exact(f"dtype must be float32 or float64, got {_dtype_got(bad)}"),
            )
    for bad in (0, -1, 1.5, NAN, True, None, "3"):
        yield case(
            f"WindowLanguageModel-context={_vid(bad)}",
            lambda e, b=bad: _make(e, "window", context=b),
            ValueError,
            exact(f"context must be an int >= 1, got {bad!r}"),
        )
    for bad in ("foo", "LSTM", None, 1):
        yield case(
            f"RNNLanguageModel-cell={_vid(bad)}",
            lambda e, b=bad: _make(e, "rnn", cell=b),
            ValueError,
            exact(f"cell must be 'lstm', 'gru' or 'rnn', got {bad!r}"),
        )
    yield case(
        "RNNLanguageModel-tie_weights-sizes",
        lambda e: _make(e, "rnn", hidden=5, tie_weights=True),
        ValueError,
        exact("tie_weights needs embed == hidden, got embed=4, hidden=5"),
    )

    for kind in ("rnn", "window"):
        label = f"{kind}.fit"

        def fit(e: SimpleNamespace, k: str = kind, **kw: Any) -> Any:
            model = getattr(e, k)
            return model.fit(e.ids, **{**FIT, **kw})

        for name, values, error, message in [
            (
                "epochs",
                [0, -1, 1.5, True, None, NAN],
                ValueError,
                lambda v: f"epochs must be an int >= 1, got {v!r}",
            ),
            (
                "lr",
                [0, -1, NAN, INF],
                ValueError,
                lambda v: f"lr must be a finite number > 0, got {v!r}",
            ),
            ("lr", [None, "1", True], TypeError, lambda v: f"lr must be a number, got {_name(v)}"),
            (
                "optimizer",
                ["foo", None, "SGD"],
                ValueError,
                lambda v: f"optimizer must be 'sgd' or 'adam', got {v!r}",
            ),
            (
                "clip",
                [0, -1, NAN, INF],
                ValueError,
                lambda v: f"clip must be a finite number > 0, got {v!r}",
            ),
            ("clip", ["1", True], TypeError, lambda v: f"clip must be a number, got {_name(v)}"),
            (
                "batching",
                ["foo", None],
                ValueError,
                lambda v: f"batching must be 'sequential' or 'random', got {v!r}",
            ),
            (
                "batch_size",
                [1.5, True, None, NAN],
                TypeError,
                lambda v: f"batch_size must be an int, got {_name(v)}",
            ),
            ("batch_size", [0, -1], ValueError, lambda v: f"batch_size must be >= 1, got {v}"),
            (
                "seq_len",
                [1.5, True, None, NAN],
                TypeError,
                lambda v: f"seq_len must be an int, got {_name(v)}",
            ),
            ("seq_len", [0, -1], ValueError, lambda v: f"seq_len must be >= 1, got {v}"),
            (
                "lr_decay",
                [0.5, 0, NAN, INF, True, None, "4"],
                ValueError,
                lambda v: f"lr_decay must be a finite number >= 1, got {v!r}",
            ),
            (
                "max_steps",
                [1.5, True, NAN, "3"],
                TypeError,
                lambda v: f"max_steps must be an int, got {_name(v)}",
            ),
            ("max_steps", [0, -1], ValueError, lambda v: f"max_steps must be >= 1, got {v}"),
            (
                "max_seconds",
                [0, -1, NAN, INF, True, "3"],
                ValueError,
                lambda v: f"max_seconds must be a finite number > 0 or None, got {v!r}",
            ),
            (
                "on_step",
                [3, "x"],
                TypeError,
                lambda v: f"on_step must be callable or None, got {_name(v)}",
            ),
        ]:
            yield from value_cases(
                label, lambda e, v, n=name, f=fit: f(e, **{n: v}), name, values, error, message
            )
        yield from seed_cases(label, lambda e, v, f=fit: f(e, seed=v))

        def data_cases(what: str, run: Callable[[Any, Any], Any], k: str = kind) -> Iterator[Any]:
            ids = np.array([3, 4, 5, 2] * 4)
            for bad in (
                *([None] if what != "fit-valid" else []),
                ids.astype(float),
                ids.reshape(2, 8),
                ["the cat"],
                b"abc",
                3,
                ids.astype(bool),
                ids.astype(object),
            ):
                arr = np.asarray(bad)
                yield case(
                    f"{k}.{what}={_vid(bad)}",
                    lambda e, b=bad: run(e, b),
                    TypeError,
                    exact(
                        f"{what.split('-')[-1]} must be a 1-D array of token ids or a str, got "
                        f"{arr.dtype} {arr.shape}"
                    ),
                )
            for label, bad in [
                ("negative", -ids),
                ("past-vocabulary", ids + 100),
                ("uint64-max", np.full(10, 2**64 - 1, np.uint64)),
            ]:
                yield case(
                    f"{k}.{what}={label}",
                    lambda e, b=bad: run(e, b),
                    ValueError,
                    r"^" + what.split("-")[-1] + r" holds ids outside \[0, \d+\)$",
                )

        yield from data_cases("fit-train", lambda e, b, k=kind: getattr(e, k).fit(b, **FIT))
        yield from data_cases("fit-valid", lambda e, b, k=kind: getattr(e, k).fit(e.ids, b, **FIT))
        yield from data_cases("evaluate-data", lambda e, b, k=kind: getattr(e, k).evaluate(b))
        yield from data_cases(
            "token_log_probs-data", lambda e, b, k=kind: getattr(e, k).token_log_probs(b)
        )
        for what, run in [
            ("train", lambda e, b, k=kind: getattr(e, k).fit(b, **FIT)),
            ("valid", lambda e, b, k=kind: getattr(e, k).fit(e.ids, b, **FIT)),
        ]:
            for bad in (np.zeros(0, int), ""):
                yield case(
                    f"{kind}.fit-{what}={_vid(bad)}-empty",
                    lambda e, b=bad, r=run: r(e, b),
                    ValueError,
                    exact(f"{what} must hold at least one token, got an empty stream"),
                )
        yield case(
            f"{kind}.evaluate-data=empty",
            lambda e, k=kind: getattr(e, k).evaluate(np.zeros(0, int)),
            ValueError,
            exact("cannot evaluate an empty stream"),
        )

        def gen(e: SimpleNamespace, k: str = kind, **kw: Any) -> Any:
            return getattr(e, k).generate("the", **{"n": 2, **kw})

        for name, values, message in [
            ("n", [-1, 1.5, True, None, NAN, "2"], lambda v: f"n must be an int >= 0, got {v!r}"),
            (
                "temperature",
                [-1, NAN, INF, True, None, "1"],
                lambda v: f"temperature must be a finite number >= 0, got {v!r}",
            ),
            (
                "top_k",
                [0, -1, 10**3, 1.5, True, NAN, "2"],
                lambda v: r"top_k must be None or an int in [1, V], got " + repr(v),
            ),
        ]:
            for bad in values:
                text = message(bad)
                yield case(
                    f"{kind}.generate-{name}={_vid(bad)}",
                    lambda e, b=bad, n=name, g=gen: g(e, **{n: b}),
                    ValueError,
                    "^" + re.escape(text).replace(r"\ V\]", r" \d+\]").replace("V", r"\d+") + "$"
                    if name == "top_k"
                    else exact(text),
                )
        yield from seed_cases(f"{kind}.generate", lambda e, v, g=gen: g(e, seed=v))
        yield from data_cases("generate-prompt", lambda e, b, k=kind: getattr(e, k).generate(b, 2))
        for bad in (None, 3, b"the", 1.5):
            yield case(
                f"{kind}.score-sentences={_vid(bad)}",
                lambda e, b=bad, k=kind: getattr(e, k).score(b),
                TypeError,
                exact(f"sentences must be a str or an iterable of str, got {_name(bad)}"),
            )
        for bad, index in (([3, 4], 0), (["the", None], 1)):
            yield case(
                f"{kind}.score-sentences={_vid(bad)}-item",
                lambda e, b=bad, k=kind: getattr(e, k).score(b),
                TypeError,
                exact(f"sentences[{index}] must be a str, got {_name(bad[index])}"),
            )
        yield from path_cases(f"{kind}.save", lambda e, p, k=kind: getattr(e, k).save(p))
        yield from path_cases(f"{kind}.load", lambda e, p, k=kind: type(getattr(e, k)).load(p))
    yield from path_cases("lm.load_model", lambda e, p: rlm.load_model(p))
    bare = lambda e: rlm.RNNLanguageModel(5, 4, 4, 1)  # noqa: E731 (no vocabulary, no tokenizer)
    for label, run, message in [
        (
            "fit-train=text",
            lambda m: m.fit("abc"),
            "train is text: the model needs a vocabulary and a tokenizer for it",
        ),
        (
            "score",
            lambda m: m.score("abc"),
            "score needs a model with a vocabulary and a tokenizer",
        ),
        (
            "generate-prompt=text",
            lambda m: m.generate("abc", 2),
            "prompt is text: the model needs a vocabulary and a tokenizer for it (give token "
            "ids instead, e.g. prompt=[]; the default prompt is '')",
        ),
        (
            "generate-default-prompt",
            lambda m: m.generate(n=2),
            "prompt is text: the model needs a vocabulary and a tokenizer for it (give token "
            "ids instead, e.g. prompt=[]; the default prompt is '')",
        ),
    ]:
        yield case(f"bare-model.{label}", lambda e, r=run: r(bare(e)), TypeError, exact(message))


TASKS = {
    "SequenceClassifier": (rlm.SequenceClassifier, ("vocab_size", "num_classes")),
    "SequenceTagger": (rlm.SequenceTagger, ("vocab_size", "num_tags")),
    "Seq2Seq": (rlm.Seq2Seq, ("source_vocab", "target_vocab")),
}


def _task_cases() -> Iterator[Any]:
    for tname, (cls, firsts) in TASKS.items():
        base = {firsts[0]: 10, firsts[1]: 4, "embed": 4, "hidden": 4, "layers": 1}
        for name in (*firsts, "embed", "hidden", "layers"):
            yield from int_cases(
                tname, lambda e, v, c=cls, b=base, n=name: c(**{**b, n: v}), name, 1
            )
        for bad in ("foo", None, "LSTM"):
            yield case(
                f"{tname}-cell={_vid(bad)}",
                lambda e, c=cls, b=base, v=bad: c(**b, cell=v),
                ValueError,
                exact(f"cell must be 'lstm', 'gru' or 'rnn', got {bad!r}"),
            )
        yield from seed_cases(tname, lambda e, v, c=cls, b=base: c(**b, seed=v))
        yield case(
            f"{tname}-dtype=foo",
            lambda e, c=cls, b=base: c(**b, dtype="foo"),
            TypeError,
            exact("dtype must be float32 or float64, got 'foo'"),
        )
    for bad in ("foo", None, "max"):
        yield case(
            f"SequenceClassifier-pooling={_vid(bad)}",
            lambda e, b=bad: rlm.SequenceClassifier(10, 4, pooling=b),
            ValueError,
            exact(f"pooling must be 'last' or 'mean', got {bad!r}"),
        )
    for name in ("bos", "eos"):
        for bad in (-1, 4, 100):
            yield case(
                f"Seq2Seq-{name}={bad}",
                lambda e, n=name, b=bad: rlm.Seq2Seq(10, 4, 4, 4, **{n: b}),
                ValueError,
                exact(f"{name} must be a target id in [0, 4), got {bad}"),
            )
        for bad in (1.5, None, True, "1", NAN):
            yield case(
                f"Seq2Seq-{name}={_vid(bad)}",
                lambda e, n=name, b=bad: rlm.Seq2Seq(10, 4, 4, 4, **{n: b}),
                TypeError,
                exact(f"{name} must be an int, got {_name(bad)}"),
            )
    models = {
        "clf": lambda e: (e.clf, e.labels),
        "tagger": lambda e: (e.tagger, e.tags),
        "s2s": lambda e: (e.s2s, [np.array([3, 4])] * 6),
    }
    for mname, get in models.items():

        def fit(
            e: SimpleNamespace,
            g: Callable[[Any], Any] = get,
            inputs: Any = None,
            targets: Any = None,
            **kw: Any,
        ) -> Any:
            model, good = g(e)
            return model.fit(
                e.seqs if inputs is None else inputs,
                good if targets is None else targets,
                **{"epochs": 1, **kw},
            )

        for name in ("epochs", "batch_size"):
            yield from int_cases(
                f"{mname}.fit", lambda e, v, f=fit, n=name: f(e, **{n: v}), name, 1
            )
        for name, values, error, message in [
            (
                "lr",
                [0, NAN, -1, INF],
                ValueError,
                lambda v: f"lr must be a finite number > 0, got {v!r}",
            ),
            (
                "optimizer",
                ["foo", "Adam"],
                ValueError,
                lambda v: f"optimizer must be 'adam' or 'sgd', got {v!r}",
            ),
            (
                "clip",
                [0, NAN, -1],
                ValueError,
                lambda v: f"clip must be a finite number > 0, got {v!r}",
            ),
            ("clip", [True, "1"], TypeError, lambda v: f"clip must be a number, got {_name(v)}"),
        ]:
            yield from value_cases(
                f"{mname}.fit",
                lambda e, v, f=fit, n=name: f(e, **{n: v}),
                name,
                values,
                error,
                message,
            )
        yield from seed_cases(f"{mname}.fit", lambda e, v, f=fit: f(e, seed=v))
        for what in ("inputs", "targets"):
            for bad in (3, "abcdef", {1, 2}, (i for i in range(6))):
                yield case(
                    f"{mname}.fit-{what}={_vid(bad)}",
                    lambda e, f=fit, w=what, b=bad: f(e, **{w: b}),
                    TypeError,
                    exact(f"{what} must be a sequence, got {_name(bad)}"),
                )
        yield case(
            f"{mname}.fit-inputs=empty",
            lambda e, f=fit: f(e, inputs=[]),
            ValueError,
            exact("inputs and targets must be non-empty and as many, got 0 and 6"),
        )
        yield case(
            f"{mname}.fit-targets=fewer",
            lambda e, f=fit, g=get: f(e, targets=g(e)[1][:3]),
            ValueError,
            exact("inputs and targets must be non-empty and as many, got 6 and 3"),
        )
        for bad in (
            [np.array([1.5])] * 6,
            [np.zeros(0, int)] * 6,
            [np.ones((2, 2), int)] * 6,
            [np.array([True])] * 6,
            ["abc"] * 6,
        ):
            arr = np.asarray(bad[0])
            yield case(
                f"{mname}.fit-inputs=[{_vid(arr)}]",
                lambda e, f=fit, b=bad: f(e, inputs=b),
                ValueError,
                exact(
                    "sequence 0 of inputs must be a non-empty 1-D array of integer ids, got "
                    f"{arr.dtype} {arr.shape}"
                ),
            )
        for bad, low, high in [([np.array([-1])] * 6, -1, -1), ([np.array([99])] * 6, 99, 99)]:
            yield case(
                f"{mname}.fit-inputs=[{high}]",
                lambda e, f=fit, b=bad: f(e, inputs=b),
                ValueError,
                exact(f"inputs must be in [0, 10), got values in [{low}, {high}]"),
            )
        predict = (
            (lambda e, s, g=get: g(e)[0].predict(s))
            if mname != "s2s"
            else (lambda e, s: e.s2s.predict(s, 3))
        )
        argument = "sources" if mname == "s2s" else "sequences"
        for bad in (None, 3, "abc", {1, 2}):
            yield case(
                f"{mname}.predict-{argument}={_vid(bad)}",
                lambda e, p=predict, b=bad: p(e, b),
                TypeError,
                exact(f"{argument} must be a sequence of 1-D integer id arrays, got {_name(bad)}"),
            )
        yield case(
            f"{mname}.predict-{argument}=empty",
            lambda e, p=predict: p(e, []),
            ValueError,
            exact(f"{argument} must hold at least one sequence, got none"),
        )
        for bad in ([np.array([1.5])], [np.zeros(0, int)], [np.ones((2, 2), int)]):
            arr = bad[0]
            yield case(
                f"{mname}.predict-{argument}=[{_vid(arr)}]",
                lambda e, p=predict, b=bad: p(e, b),
                ValueError,
                exact(
                    f"sequence 0 of {argument} must be a non-empty 1-D array of integer ids, "
                    f"got {arr.dtype} {arr.shape}"
                ),
            )
        for bad in ([np.array([-1])], [np.array([99])]):
            yield case(
                f"{mname}.predict-{argument}=[{bad[0][0]}]",
                lambda e, p=predict, b=bad: p(e, b),
                ValueError,
                r"^(source )?ids must be in \[0, 10\), got values in",
            )
    for bad, message in [
        ([-1] * 6, "targets must be in [0, 4), got values in [-1, -1]"),
        ([4] * 6, "targets must be in [0, 4), got values in [4, 4]"),
    ]:
        yield case(
            f"clf.fit-targets={_vid(bad)}",
            lambda e, b=bad: e.clf.fit(e.seqs, b, epochs=1),
            ValueError,
            exact(message),
        )
    for bad in ([0.5] * 6, [[0]] * 6, ["a"] * 6, [True] * 6):
        arr = np.asarray(bad)
        yield case(
            f"clf.fit-targets={arr.dtype}{list(arr.shape)}",
            lambda e, b=bad: e.clf.fit(e.seqs, b, epochs=1),
            TypeError,
            exact(f"targets must be one integer class id per input, got {arr.dtype} {arr.shape}"),
        )
    for label, bad, error, message in [
        (
            "float",
            [np.array([0.5, 0, 0])] * 6,
            ValueError,
            prefix("sequence 0 of targets must be a non-empty 1-D array of integer ids"),
        ),
        (
            "2-D",
            [np.zeros((3, 1), int)] * 6,
            ValueError,
            prefix("sequence 0 of targets must be a non-empty 1-D array"),
        ),
        (
            "short",
            [np.array([0, 0])] * 6,
            ValueError,
            prefix("targets[0] has 2 tags for 3 inputs: every tag sequence must be as long"),
        ),
        (
            "negative",
            [np.array([-1, 0, 0])] * 6,
            ValueError,
            exact("targets[0] must be in [0, 4), got values in [-1, 0]"),
        ),
        (
            "past-tags",
            [np.array([4, 0, 0])] * 6,
            ValueError,
            exact("targets[0] must be in [0, 4), got values in [0, 4]"),
        ),
    ]:
        yield case(
            f"tagger.fit-targets={label}",
            lambda e, b=bad: e.tagger.fit(e.seqs, b, epochs=1),
            error,
            message,
        )
    for label, bad, error, message in [
        (
            "float",
            [np.array([0.5])] * 6,
            ValueError,
            prefix("sequence 0 of targets must be a 1-D array of integer ids"),
        ),
        (
            "2-D",
            [np.ones((1, 1), int)] * 6,
            ValueError,
            prefix("sequence 0 of targets must be a 1-D array of integer ids"),
        ),
        (
            "negative",
            [np.array([-1])] * 6,
            ValueError,
            exact("targets[0] must be in [0, 6), got values in [-1, -1]"),
        ),
        (
            "past-vocabulary",
            [np.array([6])] * 6,
            ValueError,
            exact("targets[0] must be in [0, 6), got values in [6, 6]"),
        ),
    ]:
        yield case(
            f"s2s.fit-targets={label}",
            lambda e, b=bad: e.s2s.fit(e.seqs, b, epochs=1),
            error,
            message,
        )
    yield from int_cases("s2s.predict", lambda e, v: e.s2s.predict(e.seqs, v), "max_length", 1)


@pytest.mark.parametrize(("call", "error", "match"), [*_lm_cases(), *_task_cases()])
def test_lm_models(env: SimpleNamespace, call: Call, error: type[Exception], match: str) -> None:
    _run(env, call, error, match)


# ======================================================= accepted: what is tolerated, and how
def test_non_contiguous_and_readonly_ids_give_the_same_results(env: SimpleNamespace) -> None:
    """Strided, read-only and list ids/offsets are read correctly (not refused, not misread)."""
    ids, offsets = _int32(3, 4, 5, 6), _int64(0, 2, 4)
    wide = np.zeros(8, np.int32)
    wide[::2] = ids
    readonly = ids.copy()
    readonly.flags.writeable = False
    expected = env.model.score_batch(ids, offsets)
    for variant in (wide[::2], readonly):
        np.testing.assert_array_equal(env.model.score_batch(variant, offsets), expected)
        assert NgramCounts(3, env.vocab).update_ids(variant, offsets) == NgramCounts(
            3, env.vocab
        ).update_ids(ids, offsets)
    np.testing.assert_array_equal(env.model.score_batch(ids, [0, 2, 4]), expected)


def test_large_max_count_pads_with_zeros(env: SimpleNamespace) -> None:
    """A max_count past the largest count gives the counts' histogram padded with zeros (it
    used to make the store allocate max_count values, twice: 2**31 - 1 was killed)."""
    for n in (1, 2, 3):
        _, counts = env.counts.ngrams(n)
        expected = np.bincount(counts, minlength=1001)[1:1001]
        np.testing.assert_array_equal(env.counts.count_of_counts(n, 1000), expected)
        np.testing.assert_array_equal(env.counts.count_of_counts(n, 4), expected[:4])


def test_failed_calls_leave_no_trace(env: SimpleNamespace) -> None:
    counts = NgramCounts(2).update("a b")
    before, words = counts.to_bytes(), counts.vocabulary.words
    with pytest.raises(TypeError, match="sentence 1 must be a str"):
        counts.update(["x y", 3])
    with pytest.raises(TypeError, match="min_counts"):
        counts.prune(1.5)  # type: ignore[arg-type]
    assert counts.to_bytes() == before and counts.vocabulary.words == words
    weights = env.linear.params["weight"].copy()
    with pytest.raises(TypeError, match="embedding must be"):
        env.linear.tie(None)  # type: ignore[arg-type]
    np.testing.assert_array_equal(env.linear.params["weight"], weights)
    model = env.rnn
    params = [p.copy() for p, _ in model.parameters()]
    with pytest.raises(ValueError, match="lr_decay"):
        model.fit(env.ids, epochs=1, lr_decay=math.nan)
    with pytest.raises(TypeError, match="on_step"):
        model.fit(env.ids, epochs=1, on_step=3)  # type: ignore[arg-type]
    for (p, _), saved in zip(model.parameters(), params, strict=True):
        np.testing.assert_array_equal(p, saved)  # refused before the first step
