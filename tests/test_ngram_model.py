"""rnnkit.ngram.estimate (modified Kneser-Ney, lmplz's way), NgramModel scoring and ARPA files:
against a float64 reference (rnnkit.reference.ngram), against lmplz's published numbers,
against the kenlm module reading our ARPA files, and for normalisation."""

from __future__ import annotations

import copy
import math
import pickle
import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers import ISSUE_405, zipf_corpus
from hypothesis import given, settings
from hypothesis import strategies as st
from kenlm_peer import kenlm, needs_kenlm
from rnnkit import _core
from rnnkit.ngram import NgramCounts, NgramModel, State, Vocabulary, build, estimate, load_arpa
from rnnkit.reference import ngram as ref


def test_lmplz_issue_405_values() -> None:
    """The discounts (with lmplz's raw-count slip in the count-of-counts, kpu/kenlm #427) and
    the probabilities lmplz printed for this text, to float32 precision."""
    m = estimate(NgramCounts(2).update(ISSUE_405))
    d1, d2, d3 = m.discounts[0]
    assert (d1, d2, d3) == pytest.approx((0.4, 1.6, 1.4), abs=1e-6)
    assert m.discounts[1] == pytest.approx((0.3, 1.742857, 3.0), abs=1e-6)
    expected = {
        "<unk>": (-1.30103, 0.0),
        "<s>": (0.0, -0.059768215),
        "</s>": (-1.1249387, 0.0),
        "I": (-1.0579919, -0.5228788),
        "went": (-0.6726411, -0.022929981),
        "go": (-0.82390875, 0.0),
        "<s> I": (-0.9649993, 0.0),
    }
    for ngram, (prob, backoff) in expected.items():
        got = m[ngram]
        assert got == pytest.approx((prob, backoff), abs=2e-7), ngram


METHODS = ["mkn", "kn", "absolute", "witten_bell"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_probabilities_equal_the_reference(
    order: int, method: str, rng: np.random.Generator
) -> None:
    """Every stored n-gram's probability and backoff against the float64 reference given the
    same discounts (the float32 estimator agrees to float32 precision)."""
    sents = zipf_corpus(rng, 400)
    counts = NgramCounts(order).update(sents)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # order 1 of tiny data may fall back
        m = estimate(counts, method)
    p, gamma = ref.interpolated(ref.count_ngrams(sents, order), method, m.discounts)
    words = m.vocabulary.words
    for n in range(1, order + 1):
        ids, probs, backoffs = m.ngrams(n)
        assert ids.shape[0] == len([g for g in p if len(g) == n])
        for row, lp, lb in zip(ids.tolist(), probs.tolist(), backoffs.tolist(), strict=True):
            g = tuple(words[i] for i in row)
            assert lp == pytest.approx(min(0.0, math.log10(p[g])), abs=3e-6), g
            if n < order:
                expected = math.log10(gamma[g]) if g in gamma else 0.0
                assert lb == pytest.approx(expected, abs=3e-6), g


# Pruned stores: n-grams whose every left extension was pruned have continuation count 0,
# and a context whose extensions are all such has no mass of its own (0 / 0 made each of its
# probabilities 1: a context's distribution summed to 3.6, every unigram's to 6).
PRUNINGS = [None, [1, 1, 4], [1, 1, 1000], [1, 4, 4], [1, 1000, 1000]]


@pytest.mark.parametrize("prune", PRUNINGS[1:], ids=str)
@pytest.mark.parametrize("method", METHODS)
def test_pruned_probabilities_equal_the_reference(
    method: str, prune: list[int], rng: np.random.Generator
) -> None:
    """A pruned store's model against the reference given the same pruned counts."""
    counts = NgramCounts(3).update(zipf_corpus(rng, 300, vocab=25)).prune(prune)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        m = estimate(counts, method)
    pruned = [Counter(dict(counts.items(n))) for n in (1, 2, 3)]
    p, gamma = ref.interpolated(pruned, method, m.discounts)
    words = m.vocabulary.words
    for n in (1, 2, 3):
        ids, probs, backoffs = m.ngrams(n)
        for row, lp, lb in zip(ids.tolist(), probs.tolist(), backoffs.tolist(), strict=True):
            g = tuple(words[i] for i in row)
            assert lp == pytest.approx(min(0.0, math.log10(p[g])), abs=3e-6), g
            if n < 3:
                expected = math.log10(gamma[g]) if g in gamma else 0.0
                assert lb == pytest.approx(expected, abs=3e-6), g


@pytest.mark.parametrize("prune", PRUNINGS, ids=str)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("order", [2, 3])
def test_every_context_distribution_sums_to_one(
    order: int, method: str, prune: list[int] | None, rng: np.random.Generator
) -> None:
    """For the empty context and every stored context h: sum over the vocabulary (all words
    but <s>, <unk> included) of p(w | h), by backoff, is 1; pruned stores included."""
    counts = NgramCounts(order).update(zipf_corpus(rng, 300, vocab=25))
    if prune is not None:
        counts.prune(prune[:order])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # fallback discounts normalise too
        m = estimate(counts, method)
    vocab = [w for w in m.vocabulary.words if w != "<s>"]
    contexts: list[tuple[str, ...]] = [()]
    for n in range(1, order):
        ids, _, _ = m.ngrams(n)
        contexts += [tuple(m.vocabulary.words[i] for i in row) for row in ids.tolist()]
    for h in contexts:
        if h and h[-1] == "</s>":
            continue  # nothing follows </s>
        total = sum(10 ** m.logprob(w, h) for w in vocab)
        assert total == pytest.approx(1.0, abs=2e-5), h


# Small random corpora may leave an order without valid discounts (lmplz's fallback then).
@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
@pytest.mark.parametrize(
    ("order", "method"),
    [(2, "mkn"), (3, "mkn"), (5, "mkn"), (3, "kn"), (3, "absolute"), (4, "witten_bell")],
)
@needs_kenlm
def test_kenlm_reads_our_arpa_and_scores_the_same(
    order: int, method: str, rng: np.random.Generator, tmp_path: Path
) -> None:
    train = zipf_corpus(rng, 500)
    m = estimate(NgramCounts(order).update(train), method)
    path = tmp_path / "model.arpa"
    m.write_arpa(path)
    k = kenlm.Model(str(path))
    held_out = [" ".join(s) for s in zipf_corpus(rng, 150, vocab=2500)]  # some unseen words
    held_out += ["", "w0", "unseen words only", "w1 w1 w1 w1 w1 w1"]
    for s in held_out:
        assert m.score(s) == k.score(s), s
        assert m.score(s, bos=False, eos=False) == k.score(s, bos=False, eos=False), s
        ours = m.full_scores(s)
        theirs = list(k.full_scores(s))
        assert [(p, n, o) for p, n, o in ours] == [(p, n, o) for p, n, o in theirs], s
        assert m.perplexity(s) == pytest.approx(k.perplexity(s), rel=1e-6)
    ids = np.concatenate([m.vocabulary.encode(s) for s in held_out]).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum([len(s.split()) for s in held_out])])
    batch = m.score_batch(ids, offsets.astype(np.int64))
    np.testing.assert_array_equal(batch, [m.score(s) for s in held_out])


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
@pytest.mark.parametrize(
    ("bos", "eos"), [(True, True), (False, True), (True, False), (False, False)]
)
def test_score_batch_of_many_sentences_equals_each_scored_alone(
    bos: bool, eos: bool, rng: np.random.Generator
) -> None:
    """Enough tokens for every thread (each scores many sentences side by side, one token of
    each in turn), empty sentences among them: each sentence's score is the one it gets
    alone, to the bit."""
    m = estimate(NgramCounts(4).update(zipf_corpus(rng, 800)), "mkn")
    held_out = [" ".join(s) for s in zipf_corpus(rng, 4000, vocab=2500)]
    for i in range(0, len(held_out), 97):
        held_out[i] = ""
    ids = np.concatenate([m.vocabulary.encode(s) for s in held_out]).astype(np.int32)
    assert ids.size > 20000
    offsets = np.concatenate([[0], np.cumsum([len(s.split()) for s in held_out])])
    batch = m.score_batch(ids, offsets.astype(np.int64), bos=bos, eos=eos)
    np.testing.assert_array_equal(batch, [m.score(s, bos=bos, eos=eos) for s in held_out])


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
@pytest.mark.parametrize("order", [3, 18])
def test_score_of_text_equals_the_batch_at_every_length(order: int) -> None:
    """A sentence given as text of up to 16 words is scored on its own path (score_short,
    with its context on the stack up to order 16, on the heap beyond): the same bits as the
    batch, for every length around that bound, unknown words included."""
    corpus = [" ".join(f"w{(i * 7 + j * j) % 13}" for j in range(30)) for i in range(40)]
    m = estimate(NgramCounts(order).update(corpus), "witten_bell")
    sentences = [
        " ".join(f"w{(k + j) % 15}" for j in range(n)) for k in range(3) for n in range(40)
    ]
    for bos, eos in [(True, True), (False, False), (True, False)]:
        ids = np.concatenate([m.vocabulary.encode(s) for s in sentences]).astype(np.int32)
        offsets = np.cumsum([0] + [len(s.split()) for s in sentences]).astype(np.int64)
        batch = m.score_batch(ids, offsets, bos=bos, eos=eos)
        np.testing.assert_array_equal(batch, [m.score(s, bos=bos, eos=eos) for s in sentences])


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
def _float32_text(value: float) -> str:
    """Oracle for ARPA numbers (double-conversion's ToShortestSingle, decimal range [-6, 21)),
    from NumPy's shortest float32 printing."""
    x = np.float32(value)
    if x == 0:
        return "-0" if math.copysign(1.0, float(x)) < 0 else "0"
    if -6 <= math.floor(math.log10(abs(float(x)))) < 21:
        return np.format_float_positional(x, unique=True, trim="-")
    return np.format_float_scientific(x, unique=True, trim="-", exp_digits=1).replace("e+", "e")


def test_arpa_numbers_are_the_shortest_float32_text(rng: np.random.Generator) -> None:
    values = np.concatenate(
        [
            -np.abs(rng.standard_normal(5000) * 3),
            -(10 ** rng.uniform(-12, 3, 5000)),
            [0, -1, -0.30103, -99, -100, 1e-7, -1e-7, 1.2345e28, -1.5e-7, -0.059768215],
        ]
    ).astype(np.float32)
    for v in values:
        text = _core._format_float32(float(v))
        assert text == _float32_text(v), v
        assert np.float32(text) == v


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
def test_arpa_round_trip(rng: np.random.Generator, tmp_path: Path) -> None:
    m = estimate(NgramCounts(3).update(zipf_corpus(rng, 200)))
    first, second = tmp_path / "a.arpa", tmp_path / "b.arpa"
    m.write_arpa(first)
    loaded = load_arpa(first)
    loaded.write_arpa(second)
    assert first.read_text() == second.read_text()
    for s in ["w0 w1 w2", "w3 nothing w0"]:
        assert loaded.score(s) == m.score(s)
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["a.arpa", "b.arpa"]


def test_srilm_variants_are_read(tmp_path: Path) -> None:
    """-99 for <s>, missing backoffs, comments before \\data\\, CRLF line ends."""
    text = (
        "# made by SRILM\r\n\r\n\\data\\\r\nngram 1=4\r\nngram 2=2\r\n\r\n\\1-grams:\r\n"
        "-1.0\t</s>\r\n-99\t<s>\t-0.5\r\n-0.5\ta\t-0.25\r\n-2\t<unk>\r\n\r\n"
        "\\2-grams:\r\n-0.2\t<s> a\r\n-0.3\ta </s>\r\n\r\n\\end\\\r\n"
    )
    path = tmp_path / "srilm.arpa"
    path.write_bytes(text.encode())
    m = load_arpa(path)
    assert m["<s>"] == (0.0, -0.5)
    assert m["a"] == (-0.5, -0.25)
    assert m.score("a") == pytest.approx(-0.2 + -0.3, abs=1e-6)
    assert m.score("b") == pytest.approx(-0.5 + -2 + -1.0, abs=1e-6)  # <s> backoff, <unk>, </s>


@needs_kenlm
def test_arpa_files_that_kenlm_reads_load(tmp_path: Path) -> None:
    """No blank line before a section's header or \\end\\, blank lines inside a section and
    a '+' sign on a number: KenLM reads these files, and so must load_arpa (an audit)."""
    tight = (
        "\\data\\\nngram 1=4\nngram 2=2\n\n\\1-grams:\n-1.0\t</s>\n0\t<s>\t-0.5\n"
        "-0.5\ta\t+0.25\n\n-2\t<unk>\n\\2-grams:\n-0.2\t<s> a\n\n\n-0.3\ta </s>\n\\end\\\n"
    )
    path = tmp_path / "tight.arpa"
    path.write_text(tight)
    m = load_arpa(path)
    kenlm_model = kenlm.Model(str(path))
    assert m["a"] == (-0.5, 0.25)
    for sentence in ["a", "b", "a a", ""]:
        assert m.score(sentence) == pytest.approx(kenlm_model.score(sentence), abs=1e-6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # a header announcing more unigrams than any vocabulary: its own line
        ("\\data\\\nngram 1=2147483648\n\n", r"bad.arpa:2: too many unigrams"),
        # control bytes in a quoted line are written \xNN (a NUL made the message binary)
        (
            "\\data\\\nngram 1=1\n\n\\1-grams:\n-1\ta\x00b\tz\n\n\\end\\\n",
            r"bad.arpa:5: malformed log10 backoff 'z'",
        ),
        (
            "\\data\\\nngram 1=1\n\n\\1-grams:\n-1\ta\x00b\tc\td\n\n\\end\\\n",
            r"got '-1\ta\\x00b\tc\td'$",
        ),
        (
            "\\data\\\nngram 1=1\n\n\\1-grams:\n-1\ta\t0\n\\3-grams:\n",
            r"bad.arpa:6: expected '\\end\\' after the 1 1-grams the header announces, "
            r"got '\\3-grams:'",
        ),
        (
            "\\data\\\nngram 1=1\n\n\\1-grams:\n-1\ta\t+-1\n\n\\end\\\n",
            r"bad.arpa:5: malformed log10 backoff '\+-1'",
        ),
        (
            "\\data\\\nngram 1=1\n\n\\1-grams:\n-1\ta\tx\n\n\\end\\\n",
            r"bad.arpa:5: malformed log10 backoff",
        ),
        ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\ta\n\n\\end\\\n", r"announces 2 1-grams, found 1"),
        ("\\data\\\nngram 1=1\n\n\\2-grams:\n", r"bad.arpa:4: expected '\\1-grams:'"),
        ("\\data\\\nngram 1=1\n\n\\1-grams:\n0.5\ta\n\n\\end\\\n", r"bad.arpa:5: positive log10"),
        ("\\data\\\nngram 1=1\n\n\\1-grams:\nnan\ta\n\n\\end\\\n", r"bad.arpa:5: NaN in 'nan\ta'"),
        ("no data here\n", r"no \\data\\ line"),
        # a duplicate n-gram is an error, not its last line winning (found by review)
        (
            "\\data\\\nngram 1=5\n\n\\1-grams:\n-1\t<unk>\t0\n0\t<s>\t-0.3\n-0.5\ta\t-0.2\n"
            "-0.7\ta\t-0.2\n-1\t</s>\n\n\\end\\\n",
            r"bad.arpa:8: a duplicate unigram 'a'",
        ),
        (
            "\\data\\\nngram 1=2\nngram 2=3\n\n\\1-grams:\n-1\ta\t0\n-1\tb\t0\n\n"
            "\\2-grams:\n-1\ta b\n-1\tb a\n-2\ta b\n\n\\end\\\n",
            r"bad.arpa:12: a duplicate 2-gram",
        ),
        ("\\data\\\nngram 1=1\n\n\\1-grams:\n-1\ta\tinf\n\n\\end\\\n", r"bad.arpa:5: infinite"),
        (
            "\\data\\\nngram 1=1\n\n\\1-grams:\n-1\ta\t+inf\n\n\\end\\\n",
            r"bad.arpa:5: infinite log",
        ),
        ("\\data\\\nngram 1=1\n\n\\1-grams:\n-1\ta\tnan\n\n\\end\\\n", r"bad.arpa:5: NaN"),
        ("\\data\\\nngram 1=1\n\n\\1-grams:\ninf\ta\n\n\\end\\\n", r"bad.arpa:5: positive"),
        (
            "\\data\\\nngram 1=1\nngram 2=1\n\n\\1-grams:\n-1\ta\t0\n\n"
            "\\2-grams:\n-1\tb a\n\n\\end\\\n",
            r"bad.arpa:9: the word 'b' has no unigram",
        ),
        (
            "\\data\\\nngram 1=1\n\n\\1-grams:\n-1\ta\n\nextra\n",
            r"bad.arpa:7: expected '\\end\\' after the 1 1-grams the header announces, got 'extra'",
        ),
        # more lines than announced
        (
            "\\data\\\nngram 1=1\n\n\\1-grams:\n-1\ta\n-1\tb\n\n\\end\\\n",
            r"bad.arpa:6: expected '\\end\\' after the 1 1-grams the header announces, got '-1\tb'",
        ),
        # n-grams of order >= 2 are added in batches: a missing prefix is still reported at
        # its own line, after valid lines of its batch and before a later line's error
        (
            "\\data\\\nngram 1=2\nngram 2=1\nngram 3=3\n\n\\1-grams:\n-1\ta\t0\n-1\tb\t0\n\n"
            "\\2-grams:\n-1\ta b\t0\n\n\\3-grams:\n-1\ta b a\n-1\tb a b\n-1\ta b b\tnope\n\n"
            "\\end\\\n",
            r"bad.arpa:15: the n-gram's first n-1 words are not an n-gram of the model",
        ),
        # ... so are their words, looked up together: a word without a unigram is reported
        # at its own line, after an earlier line's error and before a later line's
        (
            "\\data\\\nngram 1=2\nngram 2=1\nngram 3=3\n\n\\1-grams:\n-1\ta\t0\n-1\tb\t0\n\n"
            "\\2-grams:\n-1\ta b\t0\n\n\\3-grams:\n-1\ta b a\n-1\ta b zz\n-1\ta b b\tnope\n\n"
            "\\end\\\n",
            r"bad.arpa:15: the word 'zz' has no unigram",
        ),
        (
            "\\data\\\nngram 1=2\nngram 2=1\nngram 3=3\n\n\\1-grams:\n-1\ta\t0\n-1\tb\t0\n\n"
            "\\2-grams:\n-1\ta b\t0\n\n\\3-grams:\n-1\tb a b\n-1\ta b zz\n-1\ta b a\n\n"
            "\\end\\\n",
            r"bad.arpa:14: the n-gram's first n-1 words are not an n-gram of the model",
        ),
    ],
)
@pytest.mark.parametrize("threads", [1, 2])  # one thread reads and adds; or two, side by side
def test_malformed_arpa_files_raise_with_the_line(
    text: str, message: str, threads: int, tmp_path: Path, restore_threads: int
) -> None:
    import rnnkit

    rnnkit.set_num_threads(threads)
    path = tmp_path / "bad.arpa"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_arpa(path)


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
@pytest.mark.parametrize("threads", [1, 2])
def test_long_arpa_files_load_and_report_errors_in_file_order(
    rng: np.random.Generator, tmp_path: Path, threads: int, restore_threads: int
) -> None:
    """Lines are read (and their words looked up) on one thread and added to the model on
    another, in chunks of 8192 lines: a file of several chunks loads the same, and an error
    in a chunk already handed over is reported before one the reader finds later."""
    import rnnkit

    rnnkit.set_num_threads(threads)
    path = tmp_path / "m.arpa"
    estimate(NgramCounts(3).update(zipf_corpus(rng, 4000))).write_arpa(path)
    lines = path.read_text().split("\n")
    start = lines.index("\\3-grams:")
    assert len(lines) - start > 3 * 8192
    again = tmp_path / "again.arpa"
    load_arpa(path).write_arpa(again)
    assert again.read_text() == path.read_text()
    # A duplicate 3-gram in the third chunk, a malformed line (a reader's error) after it
    bad = list(lines)
    duplicate_at, malformed_at = start + 2 * 8192 + 100, start + 3 * 8192 + 5
    bad[duplicate_at] = bad[start + 1]
    bad[malformed_at] = "-1\tw1 w2"
    path.write_text("\n".join(bad))
    with pytest.raises(ValueError, match=f":{duplicate_at + 1}: a duplicate 3-gram"):
        load_arpa(path)
    bad[duplicate_at] = lines[duplicate_at]
    path.write_text("\n".join(bad))
    with pytest.raises(ValueError, match=f":{malformed_at + 1}: a 3-gram line needs"):
        load_arpa(path)


def test_tiny_data_falls_back_to_lmplz_discounts() -> None:
    with pytest.warns(RuntimeWarning, match=r"discount_fallback values 0.5, 1, 1.5"):
        m = estimate(NgramCounts(3).update(["a b c"]))
    assert m.discounts[0] == (0.5, 1.0, 1.5)


def test_bad_estimate_arguments() -> None:
    with pytest.raises(
        ValueError,
        match=r"method must be one of 'mkn', 'kn', 'absolute', 'witten_bell', 'mle', 'add_k', "
        r"'laplace', 'stupid_backoff', got 'kn2'",
    ):
        estimate(NgramCounts(2), method="kn2")
    with pytest.raises(TypeError, match=r"counts must be NgramCounts, got list"):
        estimate([])  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
def test_estimation_is_the_same_for_any_thread_count(
    rng: np.random.Generator, tmp_path: Path, restore_threads: int
) -> None:
    import rnnkit

    counts = NgramCounts(4).update(zipf_corpus(rng, 3000))
    texts = []
    for threads in (1, 2, 3):
        rnnkit.set_num_threads(threads)
        path = tmp_path / f"t{threads}.arpa"
        estimate(counts).write_arpa(path)
        texts.append(path.read_text())
    assert texts[0] == texts[1] == texts[2]


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
@needs_kenlm
def test_states_score_word_by_word_as_kenlm(rng: np.random.Generator, tmp_path: Path) -> None:
    m = estimate(NgramCounts(3).update(zipf_corpus(rng, 400)))
    path = tmp_path / "m.arpa"
    m.write_arpa(path)
    k = kenlm.Model(str(path))
    for sentence in zipf_corpus(rng, 30, vocab=2500):
        state, kstate = m.begin_state(), kenlm.State()
        k.BeginSentenceWrite(kstate)
        per_word = []
        for w in [*sentence, "</s>"]:
            prob, length, after = m.full_score(state, w)
            kafter = kenlm.State()
            full = k.BaseFullScore(kstate, w, kafter)
            assert (prob, length) == (full.log_prob, full.ngram_length), w
            per_word.append((prob, length))
            state, kstate = after, kafter
        assert per_word == [(p, n) for p, n, _ in m.full_scores(" ".join(sentence))]
    a = m.full_score(m.begin_state(), "w1")[2]
    b = m.full_score(m.full_score(m.begin_state(), "w7")[2], "w1")[2]
    assert m.base_score(m.null_state(), "w1")[0] == m["w1"][0]
    assert hash(a) == hash(m.full_score(m.begin_state(), "w1")[2]) and len(m.null_state()) == 0
    assert (a == b) == (a._entries == b._entries)


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
def test_next_word_distribution(rng: np.random.Generator) -> None:
    m = estimate(NgramCounts(3).update(zipf_corpus(rng, 400, vocab=300)))
    for context in [None, "w0", ["w3", "w1"], "never seen words", m.null_state()]:
        dist = m.next_word_distribution(context)
        probs = [p for _, p in dist]
        assert probs == sorted(probs, reverse=True)
        assert sum(10**p for p in probs) == pytest.approx(1.0, abs=2e-5)
        assert {w for w, _ in dist} == set(m.vocabulary.words) - {"<s>"}
        # (the first top_k of the whole sorted list, ties at the boundary broken by id as
        # there: words seen as often tie in an unseen context)
        for k in (1, 5, 37, len(dist) - 1, len(dist), len(dist) + 5):
            assert m.next_word_distribution(context, top_k=k) == dist[:k]
    ctx = ["<s>", "w0"]
    for word, prob in m.next_word_distribution("w0", top_k=20):
        assert prob == pytest.approx(m.logprob(word, ctx), abs=1e-6)
    with pytest.raises(ValueError, match=r"top_k must be a positive int or None, got 0"):
        m.next_word_distribution(None, top_k=0)
    with pytest.raises(TypeError, match=r"state must be a rnnkit.ngram.State, got tuple"):
        m.full_score((), "w0")  # type: ignore[arg-type]
    # bos/eos are flags, not truth values (None or "no" used to be taken as False/True)
    ids, offsets = np.array([3, 4], np.int32), np.array([0, 2], np.int64)
    for call in (
        lambda flags: m.score("w0 w1", **flags),
        lambda flags: m.score(["w0", "w1"], **flags),
        lambda flags: m.full_scores("w0 w1", **flags),
        lambda flags: m.score_batch(ids, offsets, **flags),
    ):
        for name, bad in (("bos", None), ("eos", "no"), ("bos", 1)):
            with pytest.raises(
                TypeError, match=f"^{name} must be a bool, got {type(bad).__name__}$"
            ):
                call({name: bad})
        assert call({"bos": np.bool_(False)}) == call({"bos": False})


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
@pytest.mark.parametrize("entry", [2**63, 2**70, -1, -(2**33)])
def test_state_entries_out_of_range(entry: int) -> None:
    """Past int64 pybind11 refused the state with its generic dump; -2**33 passed for a
    unigram state and scored as another context."""
    m = estimate(NgramCounts(3).update(ISSUE_405))
    message = (
        r"^entries must be in \[0, 2\*\*63\) \(references to stored n-grams, as "
        rf"NgramModel.full_score returns them\), got entries\[1\] = {entry}$"
    )
    with pytest.raises(ValueError, match=message):
        m.full_score(State((1, entry)), "I")
    with pytest.raises(ValueError, match=message):
        State((1, entry))


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
def test_states_of_another_model_or_made_up_are_refused() -> None:
    """A state's entries index this model's tables: one of another model, or made up, read
    outside them (a segfault, found by an audit) or scored another context without a word."""
    small = estimate(NgramCounts(3).update(["a b c", "b c a"]), "witten_bell")
    big = estimate(NgramCounts(3).update(["x y z a b c", "a b c d e f", "b c a d"] * 3), "mkn")
    state = big.begin_state()
    for word in "x y z a".split():
        _, _, state = big.full_score(state, word)
    assert len(state) == 2
    message = "^state is not a state of this model$"
    made_up = [(3, (1 << 32) | 10**9), (3, 17 << 32), (3, 5 << 32), (1 << 32, 1 << 32), (3, 3)]
    for bad in [state, *map(State, made_up)]:
        with pytest.raises(ValueError, match=message):
            small.full_score(bad, "a")
        with pytest.raises(ValueError, match=message):
            small.next_word_distribution(bad)
    # A state of the model itself, and the same entries rebuilt, still score
    state = small.begin_state()
    for word in "a b c a".split():
        _, _, state = small.full_score(state, word)
    assert len(state) == 2
    rebuilt = State(state._entries)
    assert small.full_score(rebuilt, "b") == small.full_score(state, "b")
    assert big.full_score(big.begin_state(), "x")[1] == 2


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
def test_a_unigram_model_scores_without_context() -> None:
    m = estimate(NgramCounts(1).update(ISSUE_405))
    assert m.begin_state() == m.null_state()
    assert m.score("I went") == pytest.approx(m["I"][0] + m["went"][0] + m["</s>"][0], abs=1e-6)
    assert m.full_score(m.begin_state(), "I")[1] == 1
    dist = m.next_word_distribution("I")
    assert sum(10**p for _, p in dist) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
def test_mutated_arpa_files_never_crash(rng: np.random.Generator, tmp_path: Path) -> None:
    """300 mutations of a valid ARPA file (bytes flipped, lines deleted, duplicated or cut,
    numbers replaced by junk): each either loads or raises ValueError / UnicodeDecodeError,
    and a model that loads scores without crashing."""
    m = estimate(NgramCounts(3).update(zipf_corpus(rng, 60, vocab=50)))
    good = tmp_path / "good.arpa"
    m.write_arpa(good)
    lines = good.read_bytes().split(b"\n")
    junk = [b"", b"-", b"nan", b"1e999", b"-inf", b"\t", b"\\end\\", b"\\data\\", b"ngram 9=1"]
    path = tmp_path / "mutant.arpa"
    loaded = 0
    for _ in range(300):
        mutant = list(lines)
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, len(mutant)))
            kind = int(rng.integers(0, 5))
            if kind == 0:
                del mutant[i]
            elif kind == 1:
                mutant.insert(i, mutant[i])
            elif kind == 2:
                mutant[i] = mutant[i][: int(rng.integers(0, len(mutant[i]) + 1))]
            elif kind == 3:
                fields = mutant[i].split(b"\t")
                fields[int(rng.integers(0, len(fields)))] = junk[int(rng.integers(0, len(junk)))]
                mutant[i] = b"\t".join(fields)
            else:
                raw = bytearray(mutant[i] or b" ")
                raw[int(rng.integers(0, len(raw)))] = int(rng.integers(0, 256))
                mutant[i] = bytes(raw)
        path.write_bytes(b"\n".join(mutant))
        try:
            model = load_arpa(path)
        except (ValueError, UnicodeDecodeError):
            continue
        loaded += 1
        model.score("w0 w1 w2 nothing")
    assert loaded < 300  # most mutations are caught


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
@needs_kenlm
def test_evaluate_a_text(rng: np.random.Generator, tmp_path: Path) -> None:
    m = estimate(NgramCounts(3).update(zipf_corpus(rng, 300)))
    held_out = [" ".join(s) for s in zipf_corpus(rng, 80, vocab=2500)]
    result = m.evaluate(held_out)
    scores = [m.full_scores(s) for s in held_out]
    assert result.tokens == sum(len(s) for s in scores)
    assert result.oovs == sum(oov for s in scores for _, _, oov in s)
    # KenLM query's sums: the sentences' float32 scores, less the unknown words' values
    total = math.fsum(m.score(s) for s in held_out)
    known = total - math.fsum(p for s in scores for p, _, oov in s if oov)
    assert result.log10_prob == pytest.approx(total, rel=1e-12)
    assert result.perplexity == pytest.approx(10 ** (-total / result.tokens), rel=1e-9)
    assert result.perplexity_without_oovs == pytest.approx(
        10 ** (-known / (result.tokens - result.oovs)), rel=1e-9
    )
    assert m.evaluate("\n".join(held_out) + "\n") == result
    assert m.evaluate([s.split() for s in held_out]) == result
    path = tmp_path / "m.arpa"
    m.write_arpa(path)
    k = kenlm.Model(str(path))
    assert result.log10_prob == pytest.approx(math.fsum(k.score(s) for s in held_out), rel=1e-12)


def test_binary_round_trip_is_exact(rng: np.random.Generator, tmp_path: Path) -> None:
    from rnnkit.ngram import NgramModel, load_model

    m = estimate(NgramCounts(4).update(zipf_corpus(rng, 3000)))
    path = tmp_path / "m.bin"
    m.save(path)
    loaded = NgramModel.load(path)
    assert loaded.vocabulary.words == m.vocabulary.words and loaded.vocabulary.frozen
    for n in range(1, 5):
        for a, b in zip(m.ngrams(n), loaded.ngrams(n), strict=True):
            assert np.array_equal(a, b)
    sentences = [" ".join(s) for s in zipf_corpus(rng, 50)] + ["never seen words"]
    assert [loaded.score(s) for s in sentences] == [m.score(s) for s in sentences]
    assert load_model(path).score(sentences[0]) == m.score(sentences[0])
    m.write_arpa(tmp_path / "m.arpa")
    assert load_model(tmp_path / "m.arpa").score(sentences[0]) == m.score(sentences[0])
    # saved atomically, with the permissions of a new file (not mkstemp's private ones)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.arpa", "m.bin"]
    assert path.stat().st_mode & 0o777 == (tmp_path / "m.arpa").stat().st_mode & 0o777
    assert path.stat().st_mode & 0o044  # readable by others under the usual umask


def test_damaged_binary_files_raise_never_crash(rng: np.random.Generator, tmp_path: Path) -> None:
    from rnnkit.ngram import NgramModel

    m = estimate(NgramCounts(3).update(zipf_corpus(rng, 1000)))
    good = tmp_path / "m.bin"
    m.save(good)
    data = good.read_bytes()
    bad = tmp_path / "bad.bin"
    cases = 0
    for _ in range(200):  # random bit flips anywhere
        damaged = bytearray(data)
        damaged[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
        bad.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match=str(bad)):
            NgramModel.load(bad)
        cases += 1
    for cut in [0, 4, 8, 20, 40, 100, len(data) // 2, len(data) - 9, len(data) - 1]:
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=r"truncated|not an rnnkit"):
            NgramModel.load(bad)
    bad.write_bytes(data + b"\0")
    with pytest.raises(ValueError, match="trailing bytes"):
        NgramModel.load(bad)
    bad.write_bytes(b"\\data\\\nngram 1=1\n")
    with pytest.raises(ValueError, match="not an rnnkit binary model"):
        NgramModel.load(bad)
    newer = bytearray(data)
    newer[8] = 3  # format version 3
    bad.write_bytes(bytes(newer))
    with pytest.raises(ValueError, match="format version 3; this rnnkit reads version 2"):
        NgramModel.load(bad)
    swapped = bytearray(data)
    swapped[12:16] = bytes(reversed(swapped[12:16]))  # the byte order mark
    bad.write_bytes(bytes(swapped))
    with pytest.raises(ValueError, match="another byte order"):
        NgramModel.load(bad)
    huge = bytearray(data)
    huge[24:32] = (2**62).to_bytes(8, "little")  # vocabulary size
    bad.write_bytes(bytes(huge))
    with pytest.raises(ValueError, match="impossible vocabulary size"):
        NgramModel.load(bad)
    with pytest.raises(FileNotFoundError):
        NgramModel.load(tmp_path / "missing.bin")
    assert cases == 200


BACKED_OFF = [("mle", {}), ("add_k", {"k": 0.3}), ("laplace", {}), ("stupid_backoff", {})]


@pytest.mark.parametrize(("method", "options"), BACKED_OFF)
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_backoff_estimators_equal_the_reference(
    order: int, method: str, options: dict[str, float], rng: np.random.Generator
) -> None:
    sents = zipf_corpus(rng, 300, vocab=60)
    m = estimate(NgramCounts(order).update(sents), method, **options)
    param = {"mle": 0.0, "add_k": 0.3, "laplace": 1.0, "stupid_backoff": 0.4}[method]
    kind = "add_k" if method == "laplace" else method
    p, backoff = ref.backed_off(ref.count_ngrams(sents, order), m.vocabulary.words, kind, param)
    words = m.vocabulary.words

    def log10(x: float) -> float:
        return -99.0 if x == 0 else min(0.0, math.log10(x))

    for n in range(1, order + 1):
        ids, probs, backoffs = m.ngrams(n)
        assert ids.shape[0] == len([g for g in p if len(g) == n])
        for row, lp, lb in zip(ids.tolist(), probs.tolist(), backoffs.tolist(), strict=True):
            g = tuple(words[i] for i in row)
            assert lp == pytest.approx(log10(p[g]), abs=3e-6), g
            if n < order:
                b = backoff[g]  # (add-k: may exceed 1, as Katz's weights may)
                assert lb == pytest.approx(-99.0 if b == 0 else math.log10(b), abs=3e-6), g


@pytest.mark.parametrize(("method", "options"), BACKED_OFF[:3])
@pytest.mark.parametrize("order", [2, 3])
def test_backoff_estimators_distributions_sum_to_one(
    order: int, method: str, options: dict[str, float], rng: np.random.Generator
) -> None:
    m = estimate(NgramCounts(order).update(zipf_corpus(rng, 300, vocab=25)), method, **options)
    vocab = [w for w in m.vocabulary.words if w != "<s>"]
    contexts: list[tuple[str, ...]] = [(), ("never-seen",), ("w1", "never-seen")]
    for n in range(1, order):
        ids, _, _ = m.ngrams(n)
        contexts += [tuple(m.vocabulary.words[i] for i in row) for row in ids.tolist()]
    for h in contexts:
        if h and h[-1] == "</s>":
            continue
        total = sum(10 ** m.logprob(w, h) for w in vocab if 10 ** m.logprob(w, h) > 1e-90)
        assert total == pytest.approx(1.0, abs=2e-5), h


@pytest.mark.parametrize(("method", "options"), BACKED_OFF)
@needs_kenlm
def test_kenlm_scores_the_backoff_estimators_arpa_the_same(
    method: str, options: dict[str, float], rng: np.random.Generator, tmp_path: Path
) -> None:
    sents = zipf_corpus(rng, 500)
    m = estimate(NgramCounts(3).update(sents), method, **options)
    m.write_arpa(tmp_path / "m.arpa")
    k = kenlm.Model(str(tmp_path / "m.arpa"))
    for s in [" ".join(x) for x in zipf_corpus(rng, 40)] + ["w1 never-seen w2"]:
        assert m.score(s) == pytest.approx(k.score(s), abs=1e-4)


def test_backoff_estimator_options_are_checked() -> None:
    counts = NgramCounts(2).update("a b\nb c\n")
    with pytest.raises(ValueError, match="k must be a finite number > 0, got 0"):
        estimate(counts, "add_k", k=0)
    with pytest.raises(ValueError, match="alpha must be in"):
        estimate(counts, "stupid_backoff", alpha=1.5)
    with pytest.raises(TypeError, match="takes only 'k'"):
        estimate(counts, "add_k", alpha=0.1)
    with pytest.raises(TypeError, match="takes no options"):
        estimate(counts, "mle", k=1)
    with pytest.raises(TypeError, match="takes no options"):
        estimate(counts, "mkn", k=1)
    with pytest.raises(TypeError, match="must be a number"):
        estimate(counts, "add_k", k="1")  # type: ignore[arg-type]
    assert estimate(counts, "laplace")["b c"] == estimate(counts, "add_k", k=1)["b c"]


def test_generate_samples_the_model(rng: np.random.Generator) -> None:
    m = estimate(NgramCounts(3).update(zipf_corpus(rng, 400, vocab=30)), "witten_bell")
    words = m.generate("w0", 60, seed=5)
    assert words == m.generate("w0", 60, seed=5) and words != m.generate("w0", 60, seed=6)
    assert len(words) == 60 and "<unk>" not in words and "<s>" not in words
    greedy = m.generate(["w0", "w1"], 3, temperature=0)
    best = m.next_word_distribution("w0 w1", top_k=2)
    expected = best[0][0] if best[0][0] != "<unk>" else best[1][0]
    assert greedy[0] == expected
    assert m.generate("w0", 20, top_k=1, seed=1) == m.generate("w0", 20, temperature=0)
    # (the smallest temperatures: greedy, not NaN probabilities)
    assert m.generate("w0", 20, temperature=5e-324, seed=2) == m.generate("w0", 20, temperature=0)
    with pytest.raises(ValueError, match="temperature"):
        m.generate("", 3, temperature=-1)
    with pytest.raises(ValueError, match="top_k"):
        m.generate("", 3, top_k=0)


def test_minus_infinity_and_srilm_minus_99_still_load(tmp_path: Path) -> None:
    # A zero probability or backoff weight: -inf (rnnkit and KenLM write it), SRILM's -99.
    path = tmp_path / "zeros.arpa"
    path.write_text(
        "\\data\\\nngram 1=4\nngram 2=1\n\n\\1-grams:\n-1\t<unk>\t0\n-99\t<s>\t-0.5\n"
        "-0.3\ta\t-inf\n-inf\t</s>\n\n\\2-grams:\n-0.1\ta </s>\n\n\\end\\\n"
    )
    m = load_arpa(path)
    assert m["<s>"] == (0.0, -0.5) and m["a"] == (pytest.approx(-0.3), -math.inf)
    assert m["</s>"][0] == -math.inf and m.score("a") == pytest.approx(-0.5 - 0.3 - 0.1)


@pytest.mark.parametrize("space", ["\u00a0", "\u3000", "\u2028", "\x1c", "\x1f", "\x85"])
def test_words_holding_unicode_whitespace_in_models(space: str, tmp_path: Path) -> None:
    # Words are split at ASCII whitespace only, in every path: estimate, ARPA, binary, scores.
    word = f"a{space}b"
    text = f"x {word} c\nx c\n{word} c x\n"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (tiny data: fallback discounts)
        m = estimate(NgramCounts(3).update(text))
    assert word in m.vocabulary and f"x {word}" in m
    m.write_arpa(tmp_path / "m.arpa")
    m.save(tmp_path / "m.bin")
    sentence = f"x {word} c"
    expected = m.score(sentence)
    for loaded in (load_arpa(tmp_path / "m.arpa"), NgramModel.load(tmp_path / "m.bin")):
        assert loaded.vocabulary.words == m.vocabulary.words
        assert loaded.score(sentence) == expected
        assert loaded.score(["x", word, "c"]) == expected
        assert sum(p for p, _, _ in loaded.full_scores(sentence)) == pytest.approx(expected)
        assert not any(oov for _, _, oov in loaded.full_scores(sentence))
        assert loaded.evaluate([sentence]).oovs == 0
        assert loaded[f"x {word}"] == m[f"x {word}"]
    assert m.logprob("c", f"x {word}") == m.logprob("c", ["x", word])


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
def test_words_given_in_lists_are_checked() -> None:
    """A listed "word" the tokenizer could never make (empty, or holding whitespace) scored
    as <unk> without a word said (an audit); update and evaluate already refused them."""
    m = estimate(NgramCounts(3).update(ISSUE_405))
    counts = NgramCounts(2).update(["a b"])
    for call, name in (
        (lambda bad: m.score(["I", bad]), r"sentence\[1\]"),
        (lambda bad: m.full_scores([bad]), r"sentence\[0\]"),
        (lambda bad: m.perplexity(["I", bad]), r"sentence\[1\]"),
        (lambda bad: m.logprob(bad, "I"), "word"),
        (lambda bad: m.logprob("I", ["I", bad]), r"context\[1\]"),
        (lambda bad: m.full_score(m.begin_state(), bad), "word"),
        (lambda bad: counts.count(["a", bad]), r"ngram\[1\]"),
    ):
        for bad in ("", "a b", "a\tb"):
            with pytest.raises(ValueError, match=f"^{name} must be non-empty and hold no"):
                call(bad)
    with pytest.raises(TypeError, match=r"^ngram must be a .* got list holding int$"):
        counts.count(["a", 1])
    assert m.score(["I", "went"]) == m.score("I went")


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
def test_evaluate_adds_the_sentence_scores_as_kenlm_query(rng: np.random.Generator) -> None:
    """KenLM's query adds each sentence's float32 score in double; adding the tokens' values
    in float64 instead gave another total (6.5e-5 apart on one 1000-word sentence)."""
    sentences = [" ".join(words) for words in zipf_corpus(rng, 300, 60)]
    m = estimate(NgramCounts(3).update(sentences[:200]))
    # one long sentence, and unknown words
    held_out = [*sentences[200:], " ".join(sentences[200:260]), "zz1 w1 zz2"]
    result = m.evaluate(held_out)
    scores = [m.score(s) for s in held_out]
    assert result.log10_prob == pytest.approx(math.fsum(scores), rel=1e-13)
    oov_total = sum(p for s in held_out for p, _, oov in m.full_scores(s) if oov)
    tokens = sum(len(s.split()) + 1 for s in held_out)
    assert result.oovs > 0
    assert result.perplexity_without_oovs == pytest.approx(
        10 ** (-(result.log10_prob - oov_total) / (tokens - result.oovs)), rel=1e-12
    )


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
def test_words_added_after_the_model_are_unknown() -> None:
    """A word added to an unfrozen vocabulary after estimation has no unigram: it scores as
    <unk>, and must be flagged as one (it was not)."""
    m = estimate(NgramCounts(3).update(ISSUE_405))
    m.vocabulary.frozen = False
    m.vocabulary.add("zzz")
    assert m.full_scores("I zzz")[1] == (*m.full_scores("I <unk>")[1][:2], True)
    assert m.evaluate(["I zzz"]).oovs == 1


def test_outputs_in_missing_directories_are_named(tmp_path: Path) -> None:
    """The error named a temporary file (or directory) the caller never gave."""
    m = estimate(NgramCounts(2).update(["a b", "b a"]), "add_k")
    missing = tmp_path / "nowhere" / "model.arpa"
    message = f"^[a-z]+ {re.escape(repr(str(missing)))} cannot be written: no directory "
    for call in (
        lambda: m.write_arpa(missing),
        lambda: m.save(missing),
        lambda: NgramCounts(2).save(missing),
        lambda: build(["a b"], 2, arpa=missing),
    ):
        with pytest.raises(FileNotFoundError, match=message):
            call()
    with pytest.raises(FileNotFoundError, match=r"^temp_dir must be an existing directory"):
        build(["a b"], 2, arpa=tmp_path / "m.arpa", temp_dir=tmp_path / "nowhere")


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
@needs_kenlm
def test_words_without_a_unigram_are_flagged_unknown_as_kenlm_flags_them(tmp_path: Path) -> None:
    """A word of a frozen vocabulary that was never counted has no unigram: it scores as
    <unk>, and full_scores and evaluate must call it unknown, as KenLM does on the ARPA file
    (they said it was known, and evaluate counted no OOV)."""
    v = Vocabulary(["a", "b", "x"], frozen=True)
    counts = NgramCounts(2, vocabulary=v).update(["a a b", "b a"])
    for method in ["mkn", "witten_bell", "mle", "stupid_backoff"]:
        m = estimate(counts, method)
        assert "x" in m.vocabulary and "x" not in m
        m.write_arpa(tmp_path / "m.arpa")
        k = kenlm.Model(str(tmp_path / "m.arpa"))
        for s in ["a x b", "x", "zz a x"]:
            assert m.full_scores(s) == [tuple(t) for t in k.full_scores(s)], (method, s)
        result = m.evaluate(["a x b", "zz a"])
        assert result.oovs == 2
        assert result.log10_prob == pytest.approx(k.score("a x b") + k.score("zz a"), rel=1e-12)
        assert "x" not in dict(m.next_word_distribution("a"))
    # add_k gives every vocabulary word a unigram: x is known there
    m = estimate(counts, "add_k")
    assert "x" in m and m.full_scores("x")[0][2] is False and m.evaluate(["x"]).oovs == 0


METHODS_ALL = ["mkn", "kn", "absolute", "witten_bell", "mle", "add_k", "laplace", "stupid_backoff"]


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
@pytest.mark.parametrize("method", METHODS_ALL)
def test_models_pickle_and_round_trip_through_bytes_exactly(
    method: str, rng: np.random.Generator, tmp_path: Path
) -> None:
    """NgramModel did not pickle (a model could not go to multiprocessing or Dask workers):
    to_bytes is save's file, from_bytes and pickle give back the same scores, vocabulary,
    order, method and discounts."""
    m = estimate(NgramCounts(3).update(zipf_corpus(rng, 300)), method)
    assert m.method == method
    m.save(tmp_path / "m.bin")
    data = m.to_bytes()
    assert data == (tmp_path / "m.bin").read_bytes()
    sentences = [" ".join(s) for s in zipf_corpus(rng, 30, vocab=2500)] + ["", "never seen"]
    copies = [
        pickle.loads(pickle.dumps(m)),
        copy.deepcopy(m),
        NgramModel.from_bytes(data),
        NgramModel.from_bytes(bytearray(data)),
        NgramModel.from_bytes(memoryview(data)),
    ]
    for i, other in enumerate(copies):
        assert other.vocabulary == m.vocabulary and other.order == m.order
        assert other.to_bytes() == data
        for n in range(1, 4):
            for a, b in zip(m.ngrams(n), other.ngrams(n), strict=True):
                assert np.array_equal(a, b)
        assert [other.score(s) for s in sentences] == [m.score(s) for s in sentences]
        assert other.full_scores(sentences[0]) == m.full_scores(sentences[0])
        if i < 2:  # pickle and deepcopy keep the estimation's metadata; the bytes do not
            assert other.method == method and other.discounts == m.discounts
        else:
            assert other.method is None and other.discounts == []
    m.write_arpa(tmp_path / "m.arpa")
    loaded = pickle.loads(pickle.dumps(load_arpa(tmp_path / "m.arpa")))
    assert loaded.method is None and loaded.vocabulary.frozen
    assert [loaded.score(s) for s in sentences] == [m.score(s) for s in sentences]


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
def test_models_whose_vocabulary_grew_save_and_pickle() -> None:
    """Words added to a model's vocabulary after estimation are not the model's: save wrote
    none of them but raised ValueError ("the vocabulary has 9 words, the model 8"), so such a
    model could not be saved (nor pickled). Saved: the model's words; pickled: all of them."""
    m = estimate(NgramCounts(3).update(ISSUE_405))
    words = m.vocabulary.words
    m.vocabulary.frozen = False
    m.vocabulary.add("zzz")
    saved = NgramModel.from_bytes(m.to_bytes())
    assert saved.vocabulary.words == words
    assert saved.full_scores("I zzz went") == m.full_scores("I zzz went")
    again = pickle.loads(pickle.dumps(m))
    assert again.vocabulary.words == [*words, "zzz"] and not again.vocabulary.frozen
    assert again.full_scores("I zzz went") == m.full_scores("I zzz went")
    assert again.full_scores("I zzz")[1][2] is True


def test_damaged_model_bytes_raise_value_error() -> None:
    m = estimate(NgramCounts(2).update(["a b", "b a c"]), "witten_bell")
    data = m.to_bytes()
    for bad in [b"", b"RNKMODEL", data[:-1], data + b"\0", data[:40], b"\\data\\\n"]:
        with pytest.raises(ValueError, match=r"^NgramModel bytes: "):
            NgramModel.from_bytes(bad)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 4
    with pytest.raises(ValueError, match=r"^NgramModel bytes: "):
        NgramModel.from_bytes(bytes(flipped))
    with pytest.raises(TypeError, match="data must be bytes, got str"):
        NgramModel.from_bytes("abc")  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
@pytest.mark.parametrize("method", METHODS_ALL)
@needs_kenlm
def test_pruning_unigrams_keeps_the_sentence_markers(method: str, tmp_path: Path) -> None:
    """prune with a unigram threshold above the number of sentences dropped <s> and </s>:
    the model could not end a sentence (</s> scored as <unk>) and KenLM refused its ARPA file
    ("missing <s>"). They stay; the pruned words are unknown to the model."""
    counts = NgramCounts(3).update(["a a a a a b", "a a c"]).prune([3, 3, 3])
    assert dict(counts.items(1)) == {("<s>",): 2, ("</s>",): 2, ("a",): 7}
    m = estimate(counts, method)
    m.write_arpa(tmp_path / "m.arpa")
    k = kenlm.Model(str(tmp_path / "m.arpa"))
    for s in ["a a b", "a", "", "c a"]:
        assert m.score(s) == pytest.approx(k.score(s), abs=1e-5), s
        assert m.full_scores(s) == [tuple(t) for t in k.full_scores(s)], s
    if method != "stupid_backoff":
        words = [w for w in m.vocabulary.words if w == "<unk>" or (w != "<s>" and w in m)]
        assert "</s>" in words
        for h in [(), ("<s>",), ("a",), ("<s>", "a"), ("b",)]:
            total = sum(10 ** m.logprob(w, h) for w in words if m.logprob(w, h) > -90)
            assert total == pytest.approx(1.0, abs=2e-5), h


@pytest.mark.filterwarnings("ignore:could not compute Kneser-Ney discounts:RuntimeWarning")
@settings(max_examples=25, deadline=None)
@given(
    sentences=st.lists(st.lists(st.integers(0, 20), max_size=6), min_size=1, max_size=12),
    vocab_size=st.integers(1, 6),
    repeat=st.integers(1, 3),
    order=st.sampled_from([1, 2, 3, 5, 7, 10]),
    min_count=st.integers(1, 3),
    max_size=st.sampled_from([None, 0, 1, 3]),
    method=st.sampled_from(METHODS_ALL),
)
def test_estimators_on_adversarial_corpora_equal_the_reference(
    sentences: list[list[int]],
    vocab_size: int,
    repeat: int,
    order: int,
    min_count: int,
    max_size: int | None,
    method: str,
) -> None:
    """Tiny vocabularies, empty and one-word sentences, repeated sentences, <unk> from the
    vocabulary's cut-offs, orders up to 10 (count-of-counts of zero: lmplz's fallback
    discounts): every stored value equals the float64 reference's, and every proper
    estimator's distribution sums to 1 after contexts seen, unseen, and holding <unk>/<s>."""
    sents = [[f"w{i % vocab_size}" for i in s] for s in sentences] * repeat
    vocab = Vocabulary.build(sents, min_count=min_count, max_size=max_size)
    counts = NgramCounts(order, vocabulary=vocab).update(sents)
    known = set(vocab.words)
    ref_counts = ref.count_ngrams([[w if w in known else "<unk>" for w in s] for s in sents], order)
    assert [Counter(dict(counts.items(n))) for n in range(1, order + 1)] == ref_counts
    m = estimate(counts, method)
    if method in METHODS:
        p, weights = ref.interpolated(ref_counts, method, m.discounts)
    else:
        param = {"mle": 0.0, "add_k": 0.5, "laplace": 1.0, "stupid_backoff": 0.4}[method]
        kind = "add_k" if method == "laplace" else method
        p, weights = ref.backed_off(ref_counts, vocab.words, kind, param)
    words = m.vocabulary.words

    def log10(x: float) -> float:
        return -99.0 if x == 0 else min(0.0, math.log10(x))

    for n in range(1, order + 1):
        ids, probs, backoffs = m.ngrams(n)
        assert ids.shape[0] == sum(1 for g in p if len(g) == n)
        for row, lp, lb in zip(ids.tolist(), probs.tolist(), backoffs.tolist(), strict=True):
            g = tuple(words[i] for i in row)
            assert lp == pytest.approx(log10(p[g]), abs=3e-6), g
            if n < order:
                b = weights.get(g, 1.0)  # (add-k: may exceed 1, as Katz's weights may)
                assert lb == pytest.approx(-99.0 if b == 0 else math.log10(b), abs=3e-6), g
    if method == "stupid_backoff":
        return
    predictable = [w for w in words if w != "<s>" and w in m]
    contexts = [(), ("<s>",), ("<unk>",), ("never-seen",), ("<s>", "<unk>"), ("w0", "<s>")]
    contexts += [(w,) for w in predictable if w != "</s>"]
    for h in contexts:
        total = sum(10 ** m.logprob(w, h) for w in predictable if m.logprob(w, h) > -90)
        assert total == pytest.approx(1.0, abs=2e-5), h
    dist = dict(m.next_word_distribution(None))
    assert dist == {w: m.logprob(w, ["<s>"]) for w in predictable}
