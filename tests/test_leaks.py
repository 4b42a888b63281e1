"""No leaks: the resident memory grows by less than 2 MiB over 10,000 calls of each API (after
a warm-up of 1,000 calls that fills the pools and caches), error paths included."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rnnkit
from rnnkit import nn
from rnnkit.lm import RNNLanguageModel, softmax_cross_entropy
from rnnkit.ngram import NgramCounts, estimate
from rnnkit.ngram.nltk_compat import MLE
from rnnkit.ngram.nltk_compat.preprocessing import padded_everygram_pipeline

CALLS = 10_000
WARM_UP = 1_000


def rss_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


def growth(fn: Callable[[], object]) -> int:
    for _ in range(WARM_UP):
        fn()
    gc.collect()
    before = rss_bytes()
    for _ in range(CALLS):
        fn()
    gc.collect()
    return rss_bytes() - before


def raises(fn: Callable[[], object]) -> Callable[[], None]:
    def call() -> None:
        try:
            fn()
        except (TypeError, ValueError, KeyError, RuntimeError):
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
        "error: dtype": raises(
            lambda: rnnkit.lstm_forward(x.astype(np.float64), None, None, w4, w4)
        ),
        "error: shape": raises(lambda: rnnkit.gru_forward(x, None, w4, w4)),
        "error: ngram word": raises(lambda: model.score_batch(ids.astype(np.int64), offsets)),
        "error: nltk lookup": raises(lambda: nltk.score(3, None)),  # type: ignore[arg-type]
    }


CASES = make_cases()


@pytest.mark.parametrize("name", list(CASES))
def test_no_leak(name: str) -> None:
    grown = growth(CASES[name])
    assert grown < 2 * 2**20, f"{name}: RSS grew {grown / 2**20:.2f} MiB over {CALLS} calls"
