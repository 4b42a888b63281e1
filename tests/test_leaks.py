"""No leaks: the resident memory grows by less than 2 MiB over 10,000 calls of each API (after
a warm-up of 1,000 calls that fills the pools and caches), error paths included."""

from __future__ import annotations

import gc
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rnnkit
from rnnkit import nn
from rnnkit.data import random_batches, sequential_batches
from rnnkit.lm import Adam, RNNLanguageModel, load_model, softmax_cross_entropy
from rnnkit.ngram import NgramCounts, NgramModel, estimate, load_arpa
from rnnkit.ngram.nltk_compat import MLE
from rnnkit.ngram.nltk_compat.preprocessing import padded_everygram_pipeline
from rnnkit.text import WordTokenizer, build_vocabulary, decode, encode

CALLS = 10_000
WARM_UP = 1_000
FILES = Path(tempfile.mkdtemp(prefix="rnnkit-leaks-"))  # the loaders' files
REGRESSIONS = Path(__file__).resolve().parent.parent / "fuzz" / "regressions"


def rss_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


LIMIT = 2 * 2**20


def window(fn: Callable[[], object]) -> int:
    """RSS growth over CALLS calls."""
    gc.collect()
    before = rss_bytes()
    for _ in range(CALLS):
        fn()
    gc.collect()
    return rss_bytes() - before


def growth(fn: Callable[[], object]) -> int:
    """RSS growth over CALLS calls after WARM_UP calls. A window over the limit is measured
    again: the allocator grows its heap in one-off steps (about 1 MiB here, more on other
    runs) that a second window does not see, where a leak grows in every window."""
    for _ in range(WARM_UP):
        fn()
    grown = window(fn)
    return grown if grown < LIMIT else window(fn)


def raises(fn: Callable[[], object]) -> Callable[[], None]:
    def call() -> None:
        try:
            fn()
        except (TypeError, ValueError, KeyError, RuntimeError, ZeroDivisionError):
            return
        raise AssertionError("expected an error")

    return call


def make_cases() -> dict[str, Callable[[], object]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 4), dtype=np.float32)
    w4 = rng.standard_normal((16, 4), dtype=np.float32)
    w3 = rng.standard_normal((12, 4), dtype=np.float32)
    out = rnnkit.lstm_forward(x, None, None, w4, w4)
    lstm = nn.LSTM(4, 4, num_layers=2, bidirectional=True, seed=0)
    text = "the cat sat\nthe dog sat\na cat ran\n" * 20
    model = estimate(NgramCounts(3).update(text), "witten_bell")
    ids = np.array([3, 4, 5, 3], dtype=np.int32)
    offsets = np.array([0, 2, 4], dtype=np.int64)
    nltk = MLE(2)
    nltk.fit(*padded_everygram_pipeline(2, [s.split() for s in text.splitlines()]))
    lm = RNNLanguageModel(8, 4, 4, 1, seed=0)
    logits = rng.standard_normal((5, 7), dtype=np.float32)
    targets = np.array([1, 2, 3, 4, 5])

    model.save(FILES / "model.bin")
    model.write_arpa(FILES / "model.arpa")
    count_bytes = NgramCounts(3).update(text).to_bytes()
    tokenizer = WordTokenizer()
    vocabulary = build_vocabulary(text, tokenizer)
    word_lm = RNNLanguageModel(
        len(vocabulary), 4, 4, 1, vocabulary=vocabulary, tokenizer=tokenizer, seed=0
    )
    word_lm.save(FILES / "lm.npz")
    stream = encode(text, vocabulary, tokenizer)
    adam = Adam(lm.parameters(), lr=1e-3)
    damaged = {p.parent.name: p for p in sorted(REGRESSIONS.glob("*/*"))}

    def estimate_mkn() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the discounts' fallback on so little data
            estimate(NgramCounts(3).update(text), "mkn")

    def adam_step() -> None:
        for _, grad in lm.parameters():
            grad.fill(0.01)
        adam.step()

    def nn_step() -> None:
        lstm.zero_grad()
        lstm.forward(x)
        lstm.backward(np.ones((3, 2, 8), np.float32))

    return {
        "lstm_forward": lambda: rnnkit.lstm_forward(x, None, None, w4, w4, training=True),
        "lstm_backward": lambda: rnnkit.lstm_backward(out.y, None, None, out.cache),
        "gru_forward": lambda: rnnkit.gru_forward(x, None, w3, w3),
        "nn.LSTM step": nn_step,
        "NgramModel.score": lambda: model.score("the cat sat"),
        "NgramModel.score_batch": lambda: model.score_batch(ids, offsets),
        "NgramCounts.update": lambda: NgramCounts(2).update("a b c\nb c d\n"),
        "nltk_compat score": lambda: nltk.score("cat", ["the"]),
        "lm loss": lambda: lm.loss(np.array([[1, 2], [3, 4]]), np.array([[2, 3], [4, 5]])),
        "softmax_cross_entropy": lambda: softmax_cross_entropy(logits, targets),
        "NgramModel.load (binary)": lambda: NgramModel.load(FILES / "model.bin"),
        "load_arpa": lambda: load_arpa(FILES / "model.arpa"),
        "NgramCounts.from_bytes": lambda: NgramCounts.from_bytes(count_bytes),
        "estimate mkn": estimate_mkn,
        "text encode/decode": lambda: decode(
            encode("the cat ran", vocabulary, tokenizer), vocabulary, tokenizer
        ),
        "data batches": lambda: (
            list(sequential_batches(stream, 4, 5)),
            list(random_batches(stream, 4, 5, seed=1)),
        ),
        "Adam step": adam_step,
        "lm load_model": lambda: load_model(FILES / "lm.npz"),
        "lm generate": lambda: word_lm.generate("the cat", 5, seed=1),
        "error: dtype": raises(
            lambda: rnnkit.lstm_forward(x.astype(np.float64), None, None, w4, w4)
        ),
        "error: shape": raises(lambda: rnnkit.gru_forward(x, None, w4, w4)),
        "error: ngram word": raises(lambda: model.score_batch(ids.astype(np.int64), offsets)),
        "error: nltk lookup": raises(lambda: nltk.score(3, None)),  # type: ignore[arg-type]
        "error: damaged ARPA": raises(lambda: load_arpa(damaged["arpa"])),
        "error: damaged binary model": raises(lambda: NgramModel.load(damaged["binary_model"])),
        "error: damaged count bytes": raises(
            lambda: NgramCounts.from_bytes(damaged["counts_bytes"].read_bytes())
        ),
        "error: damaged checkpoint": raises(lambda: load_model(damaged["lm_checkpoint"])),
        "error: data": raises(lambda: list(sequential_batches(stream, 0, 5))),
    }


CASES = make_cases()


@pytest.mark.parametrize("name", list(CASES))
def test_no_leak(name: str) -> None:
    grown = growth(CASES[name])
    assert grown < LIMIT, f"{name}: RSS grew {grown / 2**20:.2f} MiB over {CALLS} calls"
