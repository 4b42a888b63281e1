"""rnnkit.ngram.NgramCounts and Vocabulary against the Counter-based reference
(rnnkit.reference.ngram): exact counts of every order for every way of giving sentences, in
any order and split over any number of updates and merges; pruning, count-of-counts,
serialization (bytes, files, pickle), corrupted data, and bad arguments."""

from __future__ import annotations

import doctest
import itertools
import pickle
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import rnnkit
import rnnkit.ngram
from hypothesis import given, settings
from hypothesis import strategies as st
from rnnkit.ngram import NgramCounts, Vocabulary, estimate
from rnnkit.reference import ngram as ref

WORDS = [f"w{i}" for i in range(25)] + ["猫", "狗", "ünï", "a'b"]


def corpus(rng: np.random.Generator, sentences: int, max_len: int = 12) -> list[list[str]]:
    """Zipf-like random sentences (lengths 0..max_len) over WORDS."""
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    p /= p.sum()
    return [
        [WORDS[i] for i in rng.choice(len(WORDS), size=rng.integers(0, max_len + 1), p=p)]
        for _ in range(sentences)
    ]


def as_counters(c: NgramCounts) -> list[Counter[tuple[str, ...]]]:
    return [Counter(dict(c.items(n))) for n in range(1, c.order + 1)]


def test_module_doctests() -> None:
    assert doctest.testmod(rnnkit.ngram).failed == 0


@pytest.mark.parametrize("order", [1, 2, 3, 5, 10])
@pytest.mark.parametrize("form", ["tokens", "strings", "text", "bytes"])
def test_counts_equal_reference(order: int, form: str, rng: np.random.Generator) -> None:
    sents = corpus(rng, 300)
    given_as = {
        "tokens": sents,
        "strings": [" ".join(s) for s in sents],
        "text": "".join(" ".join(s) + "\n" for s in sents),
        "bytes": "".join("\t ".join(s) + "\r\n" for s in sents).encode(),
    }[form]
    c = NgramCounts(order).update(given_as)
    expected = ref.count_ngrams(sents, order)
    assert as_counters(c) == expected
    for n in range(1, order + 1):
        assert c.size(n) == len(expected[n - 1])
        assert c.total(n) == sum(expected[n - 1].values())
        hist = ref.count_of_counts(expected[n - 1], 4)
        np.testing.assert_array_equal(c.count_of_counts(n), hist)
    for gram, count in list(expected[order - 1].items())[:50]:
        assert c[gram] == count and c.count(" ".join(gram)) == count
    assert len(c) == sum(len(e) for e in expected)


def test_lookups_of_unseen_ngrams(rng: np.random.Generator) -> None:
    c = NgramCounts(3).update(corpus(rng, 50))
    assert c["w0 w0 w0 w0"[:8]] >= 0
    assert c["never-seen"] == 0 and c[("w0", "never-seen")] == 0
    assert "never-seen" not in c and "w0" in c
    assert c[("</s>", "w0")] == 0  # nothing follows </s>
    assert c[("w0", "<s>")] == 0  # nor precedes <s>


def test_table_growth_keeps_every_count_exact(rng: np.random.Generator) -> None:
    """Enough distinct n-grams for every table to double many times (from 1024 slots)."""
    vocab = [f"t{i}" for i in range(3000)]
    sents = [[vocab[i] for i in rng.integers(0, len(vocab), 20)] for _ in range(2000)]
    c = NgramCounts(4).update(sents)
    assert as_counters(c) == ref.count_ngrams(sents, 4)
    assert c.size(4) > 35000


@settings(max_examples=40, deadline=None)
@given(
    sents=st.lists(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=7), max_size=25),
    cuts=st.lists(st.integers(0, 25), max_size=4),
    order=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_order_and_any_split_give_the_same_counts(
    sents: list[list[str]], cuts: list[int], order: int, seed: int
) -> None:
    """Shuffled, split over several updates, or counted in pieces and merged in any order:
    always the reference's counts."""
    expected = ref.count_ngrams(sents, order)
    shuffled = list(sents)
    np.random.default_rng(seed).shuffle(shuffled)
    bounds = sorted({0, len(shuffled), *(min(k, len(shuffled)) for k in cuts)})
    pieces = [shuffled[a:b] for a, b in itertools.pairwise(bounds)]
    one = NgramCounts(order)
    for piece in pieces:
        one.update(piece)
    assert as_counters(one) == expected
    parts = [NgramCounts(order).update(p) for p in pieces]  # each its own vocabulary
    np.random.default_rng(seed + 1).shuffle(parts)
    merged = NgramCounts(order)
    for part in parts:
        merged.merge(part)
    assert as_counters(merged) == expected


def test_merge_is_associative_and_commutative(rng: np.random.Generator) -> None:
    a, b, c = (NgramCounts(3).update(corpus(rng, 40)) for _ in range(3))
    ab_c = pickle.loads(pickle.dumps(a)).merge(b).merge(c)
    a_bc = pickle.loads(pickle.dumps(a)).merge(pickle.loads(pickle.dumps(b)).merge(c))
    cba = pickle.loads(pickle.dumps(c)).merge(b).merge(a)
    for x in (a_bc, cba):
        assert as_counters(x) == as_counters(ab_c)
    double = pickle.loads(pickle.dumps(a))
    double.merge(double)
    assert as_counters(double) == [
        Counter({k: 2 * v for k, v in e.items()}) for e in as_counters(a)
    ]


def test_merge_into_a_frozen_vocabulary_maps_unknown_words_to_unk() -> None:
    vocab = Vocabulary(["a", "b"], frozen=True)
    mine = NgramCounts(2, vocab).update(["a b"])
    theirs = NgramCounts(2).update(["a x", "b y"])
    mine.merge(theirs)
    assert mine["a <unk>"] == 1 and mine["b <unk>"] == 1 and mine["<unk> </s>"] == 2
    assert mine["a b"] == 1 and mine["<unk>"] == 2


def test_frozen_vocabulary_counts_unknown_words_as_unk() -> None:
    v = Vocabulary.build(["a b a", "b c"], min_count=2)
    assert v.words == ["<unk>", "<s>", "</s>", "a", "b"]
    c = NgramCounts(2, v).update(["a c d"])
    assert c["a <unk>"] == 1 and c["<unk> <unk>"] == 1 and c["<unk>"] == 2
    assert len(v) == 5


def test_prune_drops_by_order_with_thresholds_that_never_decrease(
    rng: np.random.Generator,
) -> None:
    sents = corpus(rng, 200)
    c = NgramCounts(3).update(sents).prune([1, 2, 3])
    expected = ref.count_ngrams(sents, 3)
    got = as_counters(c)
    assert got[2] == {g: v for g, v in expected[2].items() if v >= 3}
    assert got[1] == {g: v for g, v in expected[1].items() if v >= 2}
    assert got[0] == expected[0]
    assert c.prune(0) is c  # nothing more to drop
    assert as_counters(c) == got
    # A lower threshold above a higher one would keep n-grams whose suffix is dropped, which
    # no estimator can read ("not closed under suffixes"): refused, as lmplz refuses it.
    before = c.to_bytes()
    with pytest.raises(ValueError, match="got 2 for order 3 after 3 for order 2"):
        c.prune([1, 3, 2])
    assert c.to_bytes() == before
    estimate(c, "witten_bell")  # (the store is closed under suffixes)


def test_vocabulary_build_orders_by_count_and_caps() -> None:
    v = Vocabulary.build([["x", "y", "y"], ["z", "y", "x"], ["w"]], max_size=2)
    assert v.words == ["<unk>", "<s>", "</s>", "y", "x"] and v.frozen
    assert v["y"] == 3 and v.lookup("w") == 0 and "w" not in v
    assert v.decode(v.encode("x y w")) == ["x", "y", "<unk>"]
    assert v.encode(["y"]).dtype == np.int32
    with pytest.raises(KeyError):
        v["w"]
    with pytest.raises(ValueError, match="frozen"):
        v.add("w")
    grow = Vocabulary()
    assert grow.add("w") == 3 and grow.add("w") == 3 and len(grow) == 4
    assert pickle.loads(pickle.dumps(v)) == v


def test_update_ids_equals_update(rng: np.random.Generator) -> None:
    sents = corpus(rng, 100)
    by_words = NgramCounts(3).update(sents)
    vocab = by_words.vocabulary
    ids = np.concatenate([vocab.encode(s) for s in sents]).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sents])]).astype(np.int64)
    by_ids = NgramCounts(3, vocab).update_ids(ids, offsets)
    assert by_ids == by_words


def test_serialization_round_trips(rng: np.random.Generator, tmp_path: Path) -> None:
    c = NgramCounts(4).update(corpus(rng, 150))
    data = c.to_bytes()
    assert NgramCounts.from_bytes(data) == c
    assert NgramCounts.from_bytes(data).to_bytes() == data
    assert pickle.loads(pickle.dumps(c)) == c
    path = tmp_path / "counts.bin"
    c.save(path)
    assert NgramCounts.load(path) == c
    assert [p.name for p in tmp_path.iterdir()] == ["counts.bin"]  # no temporary left
    empty = NgramCounts(2)
    assert NgramCounts.from_bytes(empty.to_bytes()) == empty


def test_corrupted_bytes_raise(rng: np.random.Generator) -> None:
    """Truncations and 400 random bit flips: always a ValueError, never a crash or a
    silently different store."""
    c = NgramCounts(3).update(corpus(rng, 60))
    data = c.to_bytes()
    for cut in [0, 5, 12, 20, len(data) // 2, len(data) - 1]:
        with pytest.raises(ValueError):
            NgramCounts.from_bytes(data[:cut])
    flips = rng.integers(0, 8 * len(data), 400)
    for bit in flips:
        bad = bytearray(data)
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ValueError):
            NgramCounts.from_bytes(bytes(bad))
    with pytest.raises(ValueError, match="format version"):
        # A valid checksum over a future version number.
        future = bytearray(data[:-4])
        future[8] = 2
        NgramCounts.from_bytes(bytes(future) + zlib.crc32(future).to_bytes(4, "little"))
    with pytest.raises(TypeError, match="data must be bytes"):
        NgramCounts.from_bytes("text")  # type: ignore[arg-type]


def _ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int32)


def _offsets(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


BAD_ARGUMENTS = [
    (lambda: NgramCounts(0), ValueError, r"order must be >= 1, got 0"),
    (lambda: NgramCounts(65), ValueError, r"order must be in \[1, 64\], got 65"),
    (lambda: NgramCounts(2.0), TypeError, r"order must be an int, got float"),
    (lambda: NgramCounts(2, vocabulary=["a"]), TypeError, r"vocabulary must be"),
    (lambda: NgramCounts(2).update(["a\nb"]), ValueError, r"sentence 0 holds a newline"),
    (lambda: NgramCounts(2).update([["a b"]]), ValueError, r"word of sentence 0 is empty"),
    (lambda: NgramCounts(2).update([["a", ""]]), ValueError, r"word of sentence 0 is empty"),
    (lambda: NgramCounts(2).update([["a", 3]]), TypeError, r"sentence 0 must hold str words"),
    (lambda: NgramCounts(2).update(["a", ["b"]]), TypeError, r"sentence 1 is a sequence"),
    (lambda: NgramCounts(2).update(5), TypeError, r"sentences must be a str or bytes"),
    (lambda: NgramCounts(2).update(["a <s> b"]), ValueError, r"holds <s>, which the store adds"),
    (
        lambda: NgramCounts(2).update_ids(_ids(0, -1), _offsets(0, 2)),
        ValueError,
        r"ids\[1\] = -1 is negative",
    ),
    (
        lambda: NgramCounts(2).update_ids(np.array([3], np.int64), _offsets(0, 1)),
        TypeError,
        r"ids must have dtype int32, got int64",
    ),
    (
        lambda: NgramCounts(2).update_ids(_ids(0), _offsets(0, 2)),
        ValueError,
        r"offsets\[-1\] = 2 is past the end of ids \(size 1\)",
    ),
    (
        lambda: NgramCounts(2).update_ids(_ids(0, 0), _offsets(0, 2, 1)),
        ValueError,
        r"offsets must be non-decreasing",
    ),
    (
        lambda: NgramCounts(2).update_ids(_ids(7), _offsets(0, 1)),
        ValueError,
        r"ids must be < len\(vocabulary\) = 3, got 7",
    ),
    (
        lambda: NgramCounts(2).update_ids(_ids(), _offsets()),
        ValueError,
        r"offsets must hold at least one value",
    ),
    (lambda: NgramCounts(2).size(3), ValueError, r"n must be in \[1, 2\], got 3"),
    (lambda: NgramCounts(2).ngrams(True), TypeError, r"n must be an int, got bool"),
    (lambda: NgramCounts(2).count("a b c"), ValueError, r"must have 1 to 2 words, got 3"),
    (lambda: NgramCounts(2).count(3), TypeError, r"ngram must be a str"),
    (lambda: NgramCounts(2).count_of_counts(1, 0), ValueError, r"max_count must be >= 1, got 0"),
    (lambda: NgramCounts(2).merge(NgramCounts(3)), ValueError, r"same order, got 3"),
    (lambda: NgramCounts(2).merge("x"), TypeError, r"other must be NgramCounts, got str"),
    (lambda: NgramCounts(2).prune([1]), ValueError, r"one value per order \(2\), got 1"),
    (lambda: Vocabulary(["a b"]), ValueError, r"must be non-empty and hold no whitespace"),
    (lambda: Vocabulary.build(["a"], min_count=0), ValueError, r"min_count must be >= 1, got 0"),
    (lambda: Vocabulary().decode([5]), ValueError, r"ids must be in \[0, 3\), got 5"),
]


@pytest.mark.parametrize(("call", "error", "message"), BAD_ARGUMENTS)
def test_bad_arguments(call, error, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=message):
        call()


def test_a_failed_update_counts_nothing() -> None:
    c = NgramCounts(2).update(["a b"])
    before = c.to_bytes()
    with pytest.raises(ValueError):
        c.update_ids(np.array([3, 4, 1], np.int32), np.array([0, 2, 3]))
    assert c.to_bytes() == before


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize(("sentences", "updates"), [(25000, 1), (600, 3)])
def test_parallel_counting_is_exact_and_identical_for_any_thread_count(
    threads: int, sentences: int, updates: int, restore_threads: int
) -> None:
    """From 1,000 tokens an update counts the partitions on several threads, and a store's
    first update sizes its tables for its tokens: the counts equal the reference, and the
    store (entry order and bytes included) is the same for any thread count, over one large
    update or several small ones (the later ones into tables already sized)."""
    sents = corpus(np.random.default_rng(7), sentences, max_len=14)
    parts = [sents[k::updates] for k in range(updates)]
    assert all(sum(len(s) for s in part) >= 1000 for part in parts)  # (tokens)

    def count() -> NgramCounts:
        store = NgramCounts(4)
        for part in parts:
            store.update(part)
        return store

    rnnkit.set_num_threads(1)
    serial = count().to_bytes()
    rnnkit.set_num_threads(threads)
    counted = count()
    assert counted.to_bytes() == serial
    if threads == 2:
        assert as_counters(counted) == ref.count_ngrams(sents, 4)


@pytest.mark.parametrize("order", [2, 3, 4])
def test_continuation_counts(order: int, rng: np.random.Generator) -> None:
    """N1+(. g): the number of distinct words right before g, for every n-gram g below the top
    order, aligned with ngrams(n)."""
    sents = corpus(rng, 200)
    c = NgramCounts(order).update(sents)
    expected = ref.count_ngrams(sents, order)
    words = c.vocabulary.words
    for n in range(1, order):
        left = Counter(g[1:] for g in expected[n])
        ids, _ = c.ngrams(n)
        got = c.continuation_counts(n)
        assert got.shape == (ids.shape[0],) and got.dtype == np.int64
        for row, value in zip(ids.tolist(), got.tolist(), strict=True):
            assert value == left[tuple(words[i] for i in row)]
    with pytest.raises(ValueError, match=rf"continuation counts of order {order} need n-grams"):
        c.continuation_counts(order)


def test_arrays_that_went_through_pickle_are_accepted() -> None:
    """An unpickled array has its own dtype object (equal, not identical, to NumPy's):
    the bindings compare dtypes by value (Dask and multiprocessing ship arrays this way)."""
    from rnnkit import lm

    def trip(a: np.ndarray) -> np.ndarray:
        return pickle.loads(pickle.dumps(a))

    ids = np.array([3, 4, 3], dtype=np.int32)
    offsets = np.array([0, 2, 3], dtype=np.int64)
    vocab = Vocabulary(["a", "b"], frozen=True)
    expected = NgramCounts(2, vocab).update_ids(ids, offsets)
    got = NgramCounts(2, vocab).update_ids(trip(ids), trip(offsets))
    assert got == expected
    assert got._store.count(trip(np.array([3, 4], dtype=np.int32))) == 1
    logits = np.random.default_rng(0).standard_normal((4, 5))
    targets = np.array([0, 4, 2, 1])
    loss, grad = lm.softmax_cross_entropy(trip(logits), trip(targets))
    loss0, grad0 = lm.softmax_cross_entropy(logits, targets)
    assert loss == loss0
    np.testing.assert_array_equal(grad, grad0)


def test_a_merged_store_whose_words_lack_unigrams_serializes() -> None:
    """A shard of a store (n-grams split by first word) holds words whose unigrams live in
    another shard; merged into a fresh store it must still round-trip through to_bytes."""
    vocab = Vocabulary(["a", "b", "c"], frozen=True)
    shard = NgramCounts(2, vocab)
    shard._store.add_ngrams(np.array([3, 5], dtype=np.int32), 2, np.array([2], dtype=np.uint64))
    merged = NgramCounts(2, vocab).merge(shard)
    again = NgramCounts.from_bytes(merged.to_bytes())
    assert again == merged
    assert again.count("a c") == 2


def test_stores_written_in_format_version_1_still_load(rng: np.random.Generator) -> None:
    """Version 2 of the C++ store's bytes changed only the checksum (FNV-1a byte by byte, in
    version 1): bytes written by an older rnnkit load as they did."""
    counts = NgramCounts(3).update(corpus(rng, 40))
    data = bytearray(counts.to_bytes())
    start = 8 + 4 + 1 + 8 + int.from_bytes(data[13:21], "little")  # the C++ store's bytes
    store = data[start:-4]
    assert store[:8] == b"RNKNGRAM" and int.from_bytes(store[8:12], "little") == 2
    store[8:12] = (1).to_bytes(4, "little")
    h = 0xCBF29CE484222325
    for byte in bytes(store[:-8]):
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    store[-8:] = h.to_bytes(8, "little")
    old = bytes(data[:start] + store)
    old += zlib.crc32(old).to_bytes(4, "little")
    assert NgramCounts.from_bytes(old) == counts
    # A version 1 header over a version 2 checksum is damage, not a store.
    wrong = bytearray(counts.to_bytes())
    wrong[start + 8] = 1
    wrong[-4:] = zlib.crc32(bytes(wrong[:-4])).to_bytes(4, "little")
    with pytest.raises(ValueError, match="checksum mismatch"):
        NgramCounts.from_bytes(bytes(wrong))


# Whitespace that str.split() and str.isspace() take but the tokenizer (ASCII, as KenLM)
# does not: inside a word, such a character is part of it, everywhere.
UNICODE_SPACES = ["\u00a0", "\u3000", "\u2028", "\x1c", "\x1d", "\x1e", "\x1f", "\x85"]


@pytest.mark.parametrize("space", UNICODE_SPACES)
def test_words_holding_unicode_whitespace_round_trip(space: str, tmp_path: Path) -> None:
    word = f"a{space}b"
    c = NgramCounts(2).update(f"x {word} c\n")
    assert word in c.vocabulary and c[f"x {word}"] == 1 and c[("x", word)] == 1
    assert NgramCounts.from_bytes(c.to_bytes()) == c
    assert pickle.loads(pickle.dumps(c)) == c
    c.save(tmp_path / "c.bin")
    assert NgramCounts.load(tmp_path / "c.bin") == c
    other = NgramCounts(2).update(["q x"])
    assert other.merge(c)[f"x {word}"] == 1  # translated into another vocabulary
    assert Vocabulary([word]).encode(f"{word} x").tolist() == [3, 0]
    assert NgramCounts(2).update([["x", word, "c"]]) == c  # as tokens too


@pytest.mark.parametrize(
    ("text", "line", "byte"),
    [
        (b"ok\na \xff b\n", 2, "0xff"),
        (b"\xc3", 1, "0xc3"),  # truncated sequence
        (b"a\n\nb \xc0\xaf\n", 3, "0xc0"),  # overlong '/'
        (b"\xed\xa0\x80 x\n", 1, "0xed"),  # a surrogate
        (b"x \xf4\x90\x80\x80\n", 1, "0xf4"),  # past U+10FFFF
    ],
)
def test_bytes_that_are_not_utf8_raise_naming_the_line(text: bytes, line: int, byte: str) -> None:
    c = NgramCounts(3).update("x y\n")
    before = c.to_bytes()
    with pytest.raises(ValueError, match=rf"not valid UTF-8: line {line} has the byte {byte}"):
        c.update(text)
    assert c.to_bytes() == before and c.vocabulary.words == ["<unk>", "<s>", "</s>", "x", "y"]
    with pytest.raises(ValueError, match=rf"not valid UTF-8: line {line} "):
        Vocabulary.build(text)
    # valid UTF-8 bytes are counted as their str
    assert NgramCounts(2).update("é ü\n".encode()) == NgramCounts(2).update("é ü\n")


@pytest.mark.parametrize("fresh", [True, False])
@pytest.mark.parametrize(
    "bad",
    [
        ["p q"] * 70000 + ["bad <s>"],  # fails in a second batch
        "a b\nc <s> d\n",  # fails after a, b, c, d are added to the vocabulary
        b"a b\nc \xff d\n",
        [["new", "words"], ["a b"]],  # a token holding whitespace
        ["fine", 3],  # not a sentence
    ],
)
@pytest.mark.parametrize("frozen", [False, True])
def test_a_failed_update_leaves_the_store_as_it_was(fresh: bool, bad: object, frozen: bool) -> None:
    def make() -> NgramCounts:
        # (frozen: the vocabulary is only read, and the error is still the input's, not a
        # conflict with the update's own claim on it)
        vocab = Vocabulary.build([["x", "y"], ["p", "q"]]) if frozen else None
        c = NgramCounts(3, vocab)
        return c if fresh else c.update("x y\np q\n")

    c, untouched = make(), make()
    before = c.to_bytes()
    with pytest.raises((ValueError, TypeError)):
        c.update(bad)  # type: ignore[arg-type]
    assert c.to_bytes() == before
    assert c == untouched and c.vocabulary.words == untouched.vocabulary.words
    for n in (1, 2, 3):
        assert c.total(n) == untouched.total(n) and c.size(n) == untouched.size(n)
    # and it still counts as an untouched store
    assert c.update(["p q r"]) == untouched.update(["p q r"])


@pytest.mark.parametrize("fresh", [True, False])
def test_an_update_of_several_batches_counts_as_one_text(fresh: bool) -> None:
    start = "" if fresh else "x y\np q\n"
    sentences = [f"w{i % 101} w{i % 7} p" for i in range(150000)]
    c = NgramCounts(3).update(start) if start else NgramCounts(3)
    c.update(iter(sentences))
    whole = NgramCounts(3).update(start + "".join(s + "\n" for s in sentences))
    assert c.to_bytes() == whole.to_bytes()


def test_counts_past_2_63_raise_overflow_error_and_change_nothing() -> None:
    c = NgramCounts(2).update(["the cat"])
    for _ in range(60):  # 4 unigram tokens * 2**60 = 2**62
        c.merge(c)
    assert c.total(1) == 2**62 and c["the cat"] == 2**60
    before = c.to_bytes()
    with pytest.raises(OverflowError, match=r"1-gram tokens .* past the 2\^63 - 1"):
        c.merge(c)
    other = NgramCounts(2).update(["a dog"])
    for _ in range(60):
        other.merge(other)
    with pytest.raises(OverflowError):
        c.merge(other)  # another vocabulary: its words must not stay in this one
    assert c.to_bytes() == before and c.vocabulary.words[3:] == ["the", "cat"]
    assert (c.ngrams(2)[1] > 0).all()
    # the counts a store holds are what it reports
    c2 = NgramCounts(2).update(["the cat"] * 3)
    room = 2**63 - 1 - c2.total(2)
    c2._store.add_ngrams(np.array([3, 4], np.int32), 2, np.array([room], np.uint64))
    assert c2.total(2) == 2**63 - 1 and c2["the cat"] == 3 + room
    with pytest.raises(OverflowError):
        c2._store.add_ngrams(np.array([3, 4], np.int32), 2, np.array([1], np.uint64))
    with pytest.raises(OverflowError):
        c2.update(["x"])


def test_totals_follow_every_change(rng: np.random.Generator) -> None:
    words = [f"w{i}" for i in range(30)]
    text = "\n".join(" ".join(rng.choice(words, rng.integers(0, 9))) for _ in range(300)) + "\n"
    c = NgramCounts(4).update(text)
    d = NgramCounts(4).update(["w3 w1 other words", "w1 w2"])

    def consistent(s: NgramCounts) -> None:
        for n in range(1, 5):
            assert s.total(n) == int(s.ngrams(n)[1].sum())

    consistent(c)
    c.merge(d)
    consistent(c)
    c.prune([1, 2, 2, 3])
    consistent(c)
    consistent(NgramCounts.from_bytes(c.to_bytes()))
    c.update_ids(np.array([3, 4, 5], np.int32), np.array([0, 3]))
    consistent(c)


def test_vocabulary_of_many_words_and_copies() -> None:
    """Words are checked all at once and added in one C++ call (estimate, from_bytes and
    unpickling rebuilt vocabularies word by word: seconds for millions of words); a bad word
    is still named, and copy() keeps every id."""
    words = [f"w{i}" for i in range(50_000)]
    v = Vocabulary(words)
    assert v.words[3:] == words and v.lookup("w49999") == 50_002
    frozen = v.copy(frozen=True)
    assert frozen.words == v.words and frozen.frozen and not v.frozen
    assert v.copy().frozen is False and v.copy() == v
    for bad, error in ((["a", "b c"], ValueError), (["a", ""], ValueError), (["a", 3], TypeError)):
        with pytest.raises(error, match="a word must be"):
            Vocabulary(bad)
    with pytest.raises(TypeError, match="frozen must be a bool"):
        v.copy(frozen="yes")  # type: ignore[arg-type]
