"""Plain-Python n-gram counts: the oracle :class:`rnnkit.ngram.NgramCounts` is tested against.

Sentences are padded as lmplz pads them, ``<s> w1 ... wk </s>``, and every n-gram of orders
1..N inside the padded sentence is counted with a :class:`collections.Counter` (so ``<s>`` is a
unigram counted once per sentence, and no n-gram reaches before ``<s>``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

__all__ = [
    "BOS",
    "EOS",
    "UNK",
    "adjusted_counts",
    "backed_off",
    "count_ngrams",
    "count_of_counts",
    "interpolated",
    "pad",
]

BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"


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


def adjusted_counts(counts: list[Counter[tuple[str, ...]]]) -> list[dict[tuple[str, ...], int]]:
    """Kneser-Ney's adjusted counts (lmplz's rule): the raw count at the top order and for
    n-grams beginning with ``<s>``; else the number of distinct words seen before the n-gram.
    ``<s>`` as a unigram gets 0."""
    order = len(counts)
    adjusted: list[dict[tuple[str, ...], int]] = []
    for n in range(1, order + 1):
        if n == order:
            adjusted.append(dict(counts[n - 1]))
            continue
        left: Counter[tuple[str, ...]] = Counter(g[1:] for g in counts[n])
        adjusted.append({g: (c if g[0] == BOS else left[g]) for g, c in counts[n - 1].items()})
    adjusted[0][(BOS,)] = 0
    return adjusted


def interpolated(
    counts: list[Counter[tuple[str, ...]]],
    method: str,
    discounts: list[tuple[float, float, float]],
) -> tuple[dict[tuple[str, ...], float], dict[tuple[str, ...], float]]:
    """An interpolated estimator in float64: ``(p, gamma)``, the probability of every counted
    n-gram (and of ``<unk>``) and the interpolation weight of every context.
    p(hw) = u(hw) + gamma(h) p(h'w); unigrams interpolate with 1/V, V = the unigram types
    other than ``<s>`` (``<unk>`` included); p(<s>) = 1.

    ``method``: ``"mkn"``/``"kn"`` (adjusted counts, discounts D1, D2, D3+ per order as given:
    u = (a - D(a)) / sum a, gamma = (D1 N1 + D2 N2 + D3 N3+) / sum a), ``"absolute"`` (the same
    on raw counts), ``"witten_bell"`` (raw counts, u = c / (sum c + T), gamma = T / (sum c + T),
    T the number of distinct extensions; ``discounts`` unused)."""
    order = len(counts)
    if method in ("mkn", "kn"):
        a = adjusted_counts(counts)
    else:
        a = [dict(c) for c in counts]
        a[0][(BOS,)] = 0
    a[0].setdefault((UNK,), 0)

    def disc(n: int, value: int) -> float:
        return 0.0 if value == 0 or method == "witten_bell" else discounts[n - 1][min(value, 3) - 1]

    def context_stats(n: int) -> dict[tuple[str, ...], list[float]]:
        stats: dict[tuple[str, ...], list[float]] = {}
        for g, v in a[n - 1].items():
            s = stats.setdefault(g[:-1], [0.0, 0.0, 0.0, 0.0])
            s[0] += v
            if v >= 1:
                s[min(v, 3)] += 1
        return stats

    p: dict[tuple[str, ...], float] = {}
    gamma: dict[tuple[str, ...], float] = {}
    vocab_size = sum(1 for g in a[0] if g != (BOS,))
    for n in range(1, order + 1):
        d1, d2, d3 = discounts[n - 1]
        stats = context_stats(n)
        total: dict[tuple[str, ...], float] = {}
        for h, (den, n1, n2, n3) in stats.items():
            if den == 0:
                # Every extension of h has adjusted count 0 (only after pruning: n-grams whose
                # every left extension was pruned): h has no mass of its own, all of it comes
                # from the lower order.
                total[h], gamma[h] = math.inf, 1.0
            elif method == "witten_bell":
                types = n1 + n2 + n3
                total[h] = den + types
                gamma[h] = types / (den + types)
            else:
                total[h] = den
                gamma[h] = (d1 * n1 + d2 * n2 + d3 * n3) / den
        for g, v in a[n - 1].items():
            if g == (BOS,):
                p[g] = 1.0
                continue
            lower = 1.0 / vocab_size if n == 1 else p[g[1:]]
            p[g] = (v - disc(n, v)) / total[g[:-1]] + gamma[g[:-1]] * lower
    return p, gamma


def backed_off(
    counts: list[Counter[tuple[str, ...]]], vocabulary: Sequence[str], method: str, param: float
) -> tuple[dict[tuple[str, ...], float], dict[tuple[str, ...], float]]:
    """A backoff estimator in float64: ``(p, backoff)``, the probability (score) of every
    counted n-gram (and of every vocabulary word for ``"add_k"``, of ``<unk>`` always) and the
    backoff weight of every counted n-gram below the top order, on raw counts with
    c(h .) = the sum of c(hw):

    * ``"mle"``: p(hw) = c(hw) / c(h .); backoff 0 for a context with extensions, else 1.
    * ``"add_k"`` (``param`` = k): p(hw) = (c(hw) + k) / (c(h .) + k V), V = the vocabulary
      without ``<s>``; backoff(h) = (k (V - T(h)) / (c(h .) + k V)) / (1 - sum over the words
      w seen after h of p(h'w)), T(h) the number of words seen after h, h' = h without its
      first word (1 when every word was seen, or none).
    * ``"stupid_backoff"`` (``param`` = alpha): p(hw) = c(hw) / c(h .); backoff alpha.

    ``<s>`` gets p = 1 (it is never predicted) and counts in no denominator."""
    order = len(counts)
    words = [w for w in vocabulary if w != BOS]
    size = len(words)
    k = param if method == "add_k" else 0.0
    p: dict[tuple[str, ...], float] = {}
    backoff: dict[tuple[str, ...], float] = {}
    total = sum(c for g, c in counts[0].items() if g != (BOS,))
    unigrams = set(counts[0]) | {(UNK,)} | ({(w,) for w in words} if method == "add_k" else set())
    for g in unigrams:
        p[g] = 1.0 if g == (BOS,) else (counts[0].get(g, 0) + k) / (total + k * size)
    for n in range(2, order + 1):
        den: Counter[tuple[str, ...]] = Counter()
        types: Counter[tuple[str, ...]] = Counter()
        lower: dict[tuple[str, ...], float] = {}
        for g, c in counts[n - 1].items():
            den[g[:-1]] += c
            types[g[:-1]] += 1
            lower[g[:-1]] = lower.get(g[:-1], 0.0) + p[g[1:]]
        for g, c in counts[n - 1].items():
            p[g] = (c + k) / (den[g[:-1]] + k * size)
        for h in [g for g in p if len(g) == n - 1]:
            if method == "stupid_backoff":
                backoff[h] = param
            elif types[h] == 0:
                backoff[h] = 1.0
            elif method == "mle":
                backoff[h] = 0.0
            else:
                left = k * (size - types[h]) / (den[h] + k * size)
                unseen = 1.0 - lower[h]
                backoff[h] = left / unseen if left > 0 and unseen > 0 else 1.0
    if method == "stupid_backoff" and order >= 2:
        for g in unigrams:
            backoff.setdefault(g, param)
    return p, backoff
