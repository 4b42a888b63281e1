"""Plain-Python n-gram counts: the oracle :class:`rnnkit.ngram.NgramCounts` is tested against.

Sentences are padded as lmplz pads them, ``<s> w1 ... wk </s>``, and every n-gram of orders
1..N inside the padded sentence is counted with a :class:`collections.Counter` (so ``<s>`` is a
unigram counted once per sentence, and no n-gram reaches before ``<s>``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

__all__ = ["BOS", "EOS", "count_ngrams", "count_of_counts", "pad"]

BOS = "<s>"
EOS = "</s>"


def pad(sentence: Sequence[str]) -> list[str]:
    """``[<s>, *sentence, </s>]``."""
    return [BOS, *sentence, EOS]


def count_ngrams(sentences: Iterable[Sequence[str]], order: int) -> list[Counter[tuple[str, ...]]]:
    """``counts[n - 1][(w1, ..., wn)]``: how often each n-gram of order n occurs in the padded
    sentences (each a sequence of words), n = 1..order."""
    counts: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order)]
    for sentence in sentences:
        words = pad(sentence)
        for n in range(1, order + 1):
            for start in range(len(words) - n + 1):
                counts[n - 1][tuple(words[start : start + n])] += 1
    return counts


def count_of_counts(counts: Counter[tuple[str, ...]], max_count: int) -> list[int]:
    """``[N_1, ..., N_max_count]``: how many n-grams occur exactly k times."""
    hist = Counter(counts.values())
    return [hist.get(k, 0) for k in range(1, max_count + 1)]
