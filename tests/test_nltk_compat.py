"""rnnkit.ngram.nltk_compat against nltk.lm itself: the same scores, entropies, perplexities,
generated words, counts and vocabularies on the same data, for every model."""

from __future__ import annotations

import copy
import importlib
import math
import pickle
import random
from typing import Any

import nltk.lm as nltk_lm
import nltk.lm.preprocessing as nltk_pre
import numpy as np
import pytest
import rnnkit.ngram.nltk_compat as ours
from rnnkit.ngram.nltk_compat import preprocessing as our_pre
from rnnkit.ngram.nltk_compat import util as our_util

# (the attribute nltk.util is shadowed by nltk.stem.util once nltk is imported)
nltk_util = importlib.import_module("nltk.util")

MODELS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("MLE", (), {}),
    ("Lidstone", (0.3,), {}),
    ("Laplace", (), {}),
    ("StupidBackoff", (), {"alpha": 0.35}),
    ("WittenBellInterpolated", (), {}),
    ("AbsoluteDiscountingInterpolated", (), {"discount": 0.6}),
    ("KneserNeyInterpolated", (), {}),
    ("KneserNeyInterpolated", (), {"discount": 0.7}),
]


def corpus(seed: int, sentences: int = 40, words: int = 12) -> list[list[str]]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(words)] + ["日本", "ü"]
    return [
        [rng.choice(vocab[: rng.randint(3, len(vocab))]) for _ in range(rng.randint(0, 9))]
        for _ in range(sentences)
    ]


def build(
    module: Any,
    pre: Any,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    order: int,
    text: list[list[str]],
    **extra: Any,
) -> Any:
    if name == "StupidBackoff":
        lm = module.StupidBackoff(kwargs["alpha"], order)
    else:
        lm = getattr(module, name)(*args, order, **kwargs)
    lm.fit(*pre.padded_everygram_pipeline(order, text))
    return lm


def queries(text: list[list[str]], order: int, seed: int) -> list[tuple[str, tuple[str, ...]]]:
    rng = random.Random(seed)
    words = [*sorted({w for s in text for w in s}), "<s>", "</s>", "<UNK>", "never-seen"]
    out = []
    for _ in range(120):
        m = rng.randint(0, order + 1)  # contexts longer than order - 1 too
        out.append((rng.choice(words), tuple(rng.choice(words) for _ in range(m))))
    return out


def same(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300)


def same_score(mine: Any, theirs: Any, word: str, context: tuple[str, ...]) -> bool:
    """Asserts that both models score ``word`` after ``context`` the same, or both raise
    ZeroDivisionError (then returns False)."""
    try:
        expected = theirs.score(word, context)
    except ZeroDivisionError:
        with pytest.raises(ZeroDivisionError):
            mine.score(word, context)
        return False
    got = mine.score(word, context)
    assert same(got, expected), (word, context, got, expected)
    return True


@pytest.mark.parametrize(("name", "args", "kwargs"), MODELS)
@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_scores_entropy_perplexity_generate_match_nltk(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any], order: int, seed: int
) -> None:
    text = corpus(seed)
    theirs = build(nltk_lm, nltk_pre, name, args, kwargs, order, text)
    mine = build(ours, our_pre, name, args, kwargs, order, text)
    kn_unigrams_only = name == "KneserNeyInterpolated" and order == 1
    for word, context in queries(text, order, seed):
        if same_score(mine, theirs, word, context):
            assert not kn_unigrams_only
            assert same(mine.logscore(word, context), theirs.logscore(word, context))
    if kn_unigrams_only:
        return
    test = corpus(seed + 100, sentences=8, words=16)
    for sentence in test:
        padded = list(nltk_pre.pad_both_ends(sentence, n=order))
        for grams in (
            lambda u, p=padded: u.everygrams(p, max_len=order),
            lambda u, p=padded: u.ngrams(p, order),
        ):
            tuples = list(grams(nltk_util))
            expected = theirs.entropy(tuples)
            for given in (grams(our_util), tuples):
                got = mine.entropy(given)
                assert same(got, expected), (sentence, got, expected)
            assert same(mine.perplexity(tuples), theirs.perplexity(tuples))
    for seed_text in ([], ["w1"], ["w2", "w3", "w1"], ["never-seen"]):
        assert mine.generate(6, text_seed=seed_text, random_seed=seed) == theirs.generate(
            6, text_seed=seed_text, random_seed=seed
        )
        assert mine.generate(text_seed=seed_text, random_seed=7) == theirs.generate(
            text_seed=seed_text, random_seed=7
        )


def test_entropy_of_a_long_text_from_fresh_word_objects() -> None:
    """A whole text in one call (thousands of n-grams: the word lookups are remembered by
    object there), given as a list and as a generator whose words are new objects, freed as
    the call goes on, so that their addresses are free to be reused: nltk's number each time."""
    text = corpus(5, sentences=40, words=30)
    theirs = build(nltk_lm, nltk_pre, "Laplace", (), {}, 3, text)  # (no zero: a finite entropy)
    mine = build(ours, our_pre, "Laplace", (), {}, 3, text)
    test = corpus(6, sentences=600, words=40)  # words the model has not seen too
    grams = [g for s in test for g in nltk_util.ngrams(nltk_pre.pad_both_ends(s, n=3), 3)]
    assert len(grams) > 3000
    expected = theirs.entropy(grams)
    assert math.isfinite(expected)
    # (equal, not close: the same scores, summed exactly on both threads)
    assert mine.entropy(grams) == expected
    fresh = (tuple("".join(list(w)) for w in g) for g in grams)  # new str objects each
    assert mine.entropy(fresh) == expected


def test_counter_and_vocabulary_match_nltk() -> None:
    text = corpus(3)
    order = 3
    t_train, t_vocab = nltk_pre.padded_everygram_pipeline(order, text)
    o_train, o_vocab = our_pre.padded_everygram_pipeline(order, text)
    t_lm, o_lm = nltk_lm.MLE(order), ours.MLE(order)
    t_lm.fit(t_train, t_vocab)
    o_lm.fit(o_train, o_vocab)
    assert len(o_lm.vocab) == len(t_lm.vocab)
    assert list(o_lm.vocab) == list(t_lm.vocab)
    assert o_lm.counts.N() == t_lm.counts.N()
    for empty in ([], ()):  # nltk: the key () of the unigram table, 0 (not the whole table)
        assert o_lm.counts[empty] == t_lm.counts[empty] == 0
    for n in range(1, order + 1):
        if n == 1:
            assert dict(o_lm.counts[1]) == dict(t_lm.counts[1])
        else:
            t_view = t_lm.counts[n]
            o_view = o_lm.counts[n]
            assert {k: dict(v) for k, v in o_view.items()} == {
                k: dict(v) for k, v in t_view.items() if v
            }
    assert o_lm.counts["w1"] == t_lm.counts["w1"]
    assert dict(o_lm.counts[["w1"]]) == dict(t_lm.counts[["w1"]])
    assert dict(o_lm.counts[("<s>", "w2")]) == dict(t_lm.counts[("<s>", "w2")])
    assert o_lm.counts[["never"]].N() == 0
    assert o_lm.counts.unigrams.freq("w1") == t_lm.counts.unigrams.freq("w1")
    assert dict(o_lm.context_counts(("w1",))) == dict(t_lm.context_counts(("w1",)))


def test_vocabulary_cutoff_and_lookup_match_nltk() -> None:
    words = ["a", "b", "a", "c", "a", "b", "d"]
    for cutoff in (1, 2, 3):
        t = nltk_lm.Vocabulary(words, unk_cutoff=cutoff)
        o = ours.Vocabulary(words, unk_cutoff=cutoff)
        assert len(o) == len(t)
        assert list(o) == list(t)
        assert o.lookup("a") == t.lookup("a")
        assert o.lookup(["a", "c", "zz"]) == t.lookup(["a", "c", "zz"])
        assert o.lookup([["a", "d"], ["b"]]) == t.lookup([["a", "d"], ["b"]])
        assert ("c" in o) == ("c" in t)
        assert o["a"] == t["a"] and o["<UNK>"] == t["<UNK>"]
        assert str(o) == str(t)
    with pytest.raises(ValueError, match="Cutoff"):
        ours.Vocabulary(unk_cutoff=0)
    with pytest.raises(TypeError):
        ours.Vocabulary(["a"]).lookup(3)


def test_counter_of_tuples_any_orders_and_growing_order() -> None:
    """n-grams given one by one (only bigrams, then trigrams: the store's order grows)."""
    text = [["a", "b", "c", "d"], ["a", "c", "d", "c"]]
    t = nltk_lm.NgramCounter([nltk_util.ngrams(s, 2) for s in text])
    o = ours.NgramCounter([nltk_util.ngrams(s, 2) for s in text])
    assert o["a"] == t["a"] == 0  # no unigram was counted
    assert dict(o[["a"]]) == dict(t[["a"]])
    assert o.N() == t.N()
    for counter in (t, o):
        counter.update([nltk_util.ngrams(s, 3) for s in text])
        counter.update([nltk_util.ngrams(s, 1) for s in text])
    assert o.N() == t.N()
    assert dict(o[["a", "c"]]) == dict(t[["a", "c"]])
    assert dict(o.unigrams) == dict(t.unigrams)
    # a context's followers are looked up once per change of the counts (an index sorted by
    # context, not a scan of the store): the same object until an update, then the new counts
    assert o[["a"]] is o[["a"]] and dict(o[["a"]]) == dict(t[["a"]])
    for counter in (t, o):
        counter.update([nltk_util.ngrams(["a", "b", "a", "x"], 2)])
    assert dict(o[["a"]]) == dict(t[["a"]]) and dict(o[("b",)]) == dict(t[("b",)])
    assert dict(o[["never"]]) == dict(t[["never"]]) == {}
    with pytest.raises(TypeError, match="isn't a tuple"):
        o.update([["a", "b"]])
    with pytest.raises(TypeError, match="must be str"):
        o.update([[("a", 3)]])
    # models on such a counter: the same scores as nltk's
    t_lm = nltk_lm.KneserNeyInterpolated(3, vocabulary=nltk_lm.Vocabulary("abcd"), counter=t)
    o_lm = ours.KneserNeyInterpolated(3, vocabulary=ours.Vocabulary("abcd"), counter=o)
    for word, context in [("c", ("a", "b")), ("d", ("c",)), ("a", ()), ("b", ("d", "c"))]:
        same_score(o_lm, t_lm, word, context)


def _fit_both(name: str, order: int, text: list[list[str]], prepare: Any) -> tuple[Any, Any]:
    """nltk's and rnnkit's ``name`` model on ``text``, each fitted on its own pipeline after
    ``prepare(vocabulary, pipeline)`` (given the library's Vocabulary class too) made their
    vocabularies."""
    models = []
    for lib, pre in ((nltk_lm, nltk_pre), (ours, our_pre)):
        train, vocab_text = pre.padded_everygram_pipeline(order, text)
        vocab = prepare(lib.Vocabulary, vocab_text)
        lm = getattr(lib, name)(order, vocabulary=vocab)
        lm.fit(train, vocab_text)
        models.append(lm)
    return models[0], models[1]


@pytest.mark.parametrize(
    "case",
    [
        "empty, cutoff 2",
        "unk label in the text",
        "reserved words in the text",
        "filled before",
        "updated twice",
        "tokens partly read",
        "another pipeline's tokens",
    ],
)
@pytest.mark.parametrize("name", ["MLE", "WittenBellInterpolated"])
def test_fit_on_a_pipeline_whatever_made_the_vocabulary(case: str, name: str) -> None:
    """fit reads the pipeline's encoding in C++ and, when the vocabulary was built from that
    very encoding, tells known words from its count array: every other way to the vocabulary
    must give nltk's model too."""
    order = 3
    text = corpus(11, sentences=60, words=14)
    text[3] = ["<UNK>", "w1", "<unk>"]  # "<unk>" is id 0 of the C++ vocabulary
    if case == "reserved words in the text":
        text[0] = ["w2", "</s>", "<s>", "w2"]

    pre_of = {nltk_lm.Vocabulary: nltk_pre, ours.Vocabulary: our_pre}

    def prepare(vocabulary: Any, tokens: Any) -> Any:
        if case == "empty, cutoff 2":
            return vocabulary(unk_cutoff=2)
        if case == "unk label in the text":  # seen once, under the cutoff: known all the same
            return vocabulary(unk_cutoff=2, unk_label="<unk>")
        if case == "filled before":
            return vocabulary(["w1", "w1", "w2", "w3", "zz"], unk_cutoff=2)
        vocab = vocabulary(unk_cutoff=2)
        if case == "updated twice":
            vocab.update(tokens)
            vocab.update(["w5", "w5", "w6", "<UNK>"])
        if case == "tokens partly read":
            next(tokens)
            next(tokens)
            vocab.update(tokens)
        if case == "another pipeline's tokens":
            other = corpus(12, sentences=30, words=20)
            vocab.update(pre_of[vocabulary].padded_everygram_pipeline(order, other)[1])
        return vocab

    theirs, mine = _fit_both(name, order, text, prepare)
    assert list(mine.vocab) == list(theirs.vocab) and len(mine.vocab) == len(theirs.vocab)
    assert dict(mine.vocab.counts) == dict(theirs.vocab.counts)
    assert mine.counts.N() == theirs.counts.N()
    assert dict(mine.counts[1]) == dict(theirs.counts[1])
    for word, context in queries(text, order, 2):
        same_score(mine, theirs, word, context)
    # a vocabulary made from a pipeline still pickles (its C++ shortcut is left out)
    again = pickle.loads(pickle.dumps(mine.vocab))
    assert again == mine.vocab and list(again) == list(mine.vocab)


def test_words_with_whitespace_and_empty_words_are_counted_as_they_are() -> None:
    text = [["a b", "", "c\td", "e"], ["a b", "e", "\n"]]
    t = nltk_lm.Laplace(2)
    o = ours.Laplace(2)
    t.fit(*nltk_pre.padded_everygram_pipeline(2, text))
    o.fit(*our_pre.padded_everygram_pipeline(2, text))
    for word, context in [("e", ["c\td"]), ("", ["a b"]), ("\n", ["e"]), ("a", ["a b"])]:
        assert same(o.score(word, context), t.score(word, context))


def test_refits_and_invalid_arguments() -> None:
    text = corpus(5)
    lm = ours.WittenBellInterpolated(2)
    with pytest.raises(ValueError, match="Cannot fit"):
        lm.fit([])
    theirs = nltk_lm.WittenBellInterpolated(2)
    for _ in range(2):  # a second fit adds to the counts (the vocabulary stays)
        lm.fit(*our_pre.padded_everygram_pipeline(2, text))
        theirs.fit(*nltk_pre.padded_everygram_pipeline(2, text))
        assert same(lm.score("w1", ["w2"]), theirs.score("w1", ["w2"]))
    with pytest.raises(ValueError, match="Discount"):
        ours.KneserNeyInterpolated(2, discount=1.5)
    with pytest.raises(ValueError, match="order"):
        ours.MLE(0)
    with pytest.raises(TypeError, match="order"):
        ours.MLE("3")  # type: ignore[arg-type]
    with pytest.raises(ZeroDivisionError):
        lm.entropy([])
    assert len(our_util.everygrams("abcd", max_len=2)) == len(
        list(nltk_util.everygrams("abcd", max_len=2))
    )
    assert list(our_util.everygrams("abcd", min_len=2, max_len=3)) == list(
        nltk_util.everygrams("abcd", min_len=2, max_len=3)
    )
    assert list(our_util.ngrams("abcd", 3, pad_left=True, left_pad_symbol="<s>")) == list(
        nltk_util.ngrams("abcd", 3, pad_left=True, left_pad_symbol="<s>")
    )
    assert list(our_pre.padded_everygrams(3, "ab")) == list(nltk_pre.padded_everygrams(3, "ab"))


def test_generate_uses_a_random_instance_and_large_vocabularies() -> None:
    text = corpus(9, sentences=300, words=200)
    t = nltk_lm.Laplace(3)
    o = ours.Laplace(3)
    t.fit(*nltk_pre.padded_everygram_pipeline(3, text))
    o.fit(*our_pre.padded_everygram_pipeline(3, text))
    assert o.generate(20, random_seed=random.Random(4)) == t.generate(
        20, random_seed=random.Random(4)
    )
    assert np.isfinite(o.perplexity(our_util.ngrams(["w1", "w2", "w3", "zz"], 3)))


def test_store_internals_reject_bad_arguments() -> None:
    from rnnkit import _core

    words = _core._Vocabulary()
    with pytest.raises(ValueError, match=r"ids\[1\] must be in \[0, 3\), got 3"):
        words.count_words(np.array([1, 3], np.int32))
    with pytest.raises(TypeError, match="ids must have dtype int32"):
        words.count_words(np.array([1], np.int64))
    assert words.count_words(np.array([2, 1, 2], np.int32)) == {"</s>": 2, "<s>": 1}
    other = _core._Vocabulary()
    other.add_words(["b", "a"])
    words.add("a")
    assert words.add_vocabulary(other).tolist() == [0, 1, 2, 4, 3]
    assert words.words() == ["<unk>", "<s>", "</s>", "a", "b"]

    store = _core._NgramCounts(3)
    with pytest.raises(ValueError, match="n must be in"):
        store.add_ngrams(np.zeros(4, np.int32), 4, np.ones(1, np.uint64))
    with pytest.raises(ValueError, match="ngrams must hold"):
        store.add_ngrams(np.zeros(5, np.int32), 2, np.ones(2, np.uint64))
    with pytest.raises(ValueError, match="negative"):
        store.add_ngrams(np.array([1, -2], np.int32), 2, np.ones(1, np.uint64))
    with pytest.raises(TypeError, match="int32"):
        store.followers(np.zeros(1, np.int64))
    store.add_ngrams(np.array([5, 6, 7], np.int32), 3, np.array([2], np.uint64))
    # the substrings exist (count 0) so that suffixes resolve; the n-gram has its count
    assert store.count(np.array([5, 6, 7], np.int32)) == 2
    assert store.count(np.array([6, 7], np.int32)) == 0
    words, counts = store.followers(np.array([5, 6], np.int32))
    assert words.tolist() == [7] and counts.tolist() == [2]
    assert store.followers(np.array([5], np.int32))[0].tolist() == []  # (5, 6) has count 0
    raw = _core._NgramCounts(2)
    raw.add(np.array([1, 2, 1], np.int32), np.array([0, 3]), pad=False)  # ids 1, 2 allowed
    assert raw.count(np.array([2, 1], np.int32)) == 1
    assert raw.total(1) == 3  # nothing added around the sentence
    with pytest.raises(ValueError, match="<s> or </s>"):
        raw.add(np.array([1], np.int32), np.array([0, 1]))
    vocab = _core._Vocabulary()
    with pytest.raises(ValueError, match="unknown method"):
        _core._NltkLookupScorer(store, vocab, "nope", 2, 0.0, 1.0, np.zeros(3, np.uint8), 0)
    scorer = _core._NltkLookupScorer(store, vocab, "mle", 3, 0.0, 1.0, np.ones(3, np.uint8), 0)
    with pytest.raises(TypeError, match="must be str"):
        scorer.score(3, None)
    with pytest.raises(TypeError, match="sequence of str, got a str"):
        scorer.log2_score_total(["ab"])
    with pytest.raises(ValueError, match="at least one word"):
        scorer.log2_score_total([()])


@pytest.mark.parametrize("copier", [lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy])
@pytest.mark.parametrize(("name", "args", "kwargs"), MODELS)
def test_fitted_models_pickle_and_deepcopy_as_nltks_do(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any], copier: Any
) -> None:
    """nltk's fitted models pickle; ours failed ("cannot pickle 'rnnkit._core._Vocabulary'").
    The copy scores, generates and counts exactly as the original, and is independent."""
    order, text = 3, corpus(2)
    mine = build(ours, our_pre, name, args, kwargs, order, text)
    mine.score("w1", ("w2",))  # a scorer is cached: it is not copied but rebuilt
    theirs = copier(build(nltk_lm, nltk_pre, name, args, kwargs, order, text))
    copied = copier(mine)
    assert type(copied) is type(mine) and copied.vocab == mine.vocab
    assert str(copied.counts) == str(mine.counts) and copied.counts.N() == mine.counts.N()
    for n in range(1, order + 1):
        assert copied.counts[n] == mine.counts[n]
    for word, context in queries(text, order, 3):
        try:
            expected = mine.score(word, context)
        except ZeroDivisionError:
            with pytest.raises(ZeroDivisionError):
                copied.score(word, context)
            continue
        assert copied.score(word, context) == expected
        assert same(copied.score(word, context), theirs.score(word, context))
    tuples = list(nltk_util.everygrams(list(nltk_pre.pad_both_ends(text[0], n=order)), max_len=3))
    try:
        expected_entropy = mine.entropy(tuples)
    except ZeroDivisionError:  # (nltk's Kneser-Ney, for a context it never saw)
        expected_entropy = None
    if expected_entropy is not None:
        assert copied.entropy(tuples) == expected_entropy
    for seed in (0, 5):
        assert copied.generate(8, random_seed=seed) == mine.generate(8, random_seed=seed)
        assert copied.generate(8, random_seed=seed) == theirs.generate(8, random_seed=seed)
    # Independent: counting more into the copy leaves the original's counts alone.
    before = mine.counts.N()
    copied.fit([[("w1", "w2")], [("w9",)]])
    assert mine.counts.N() == before and copied.counts.N() == before + 2


@pytest.mark.parametrize("copier", [lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy])
def test_counter_pickles_and_deep_copies(copier: Any) -> None:
    counter = ours.NgramCounter()
    assert copier(counter).N() == 0 and len(copier(counter)) == 0
    text = [[("a",), ("b",), ("a", "b"), ("x y",), ("<s>", "a")], [("b", "a", "c")]]
    counter.update(text)
    copied = copier(counter)
    assert copied.N() == counter.N() and len(copied) == len(counter) == 3
    assert copied[["a"]] == counter[["a"]] and copied["x y"] == 1 and copied[("b", "a")]["c"] == 1
    for n in (1, 2, 3):
        assert copied[n] == counter[n]
    copied.update([[("a", "b")]])
    assert copied[["a"]]["b"] == 2 and counter[["a"]]["b"] == 1


def test_counter_pickle_of_another_version_is_refused() -> None:
    state = ours.NgramCounter().__getstate__()
    state["version"] = 7
    with pytest.raises(ValueError, match="NgramCounter of pickle version 7; this rnnkit reads"):
        ours.NgramCounter.__new__(ours.NgramCounter).__setstate__(state)
