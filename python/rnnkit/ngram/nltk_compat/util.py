"""``nltk.util``'s sequence helpers used with ``nltk.lm``: :func:`pad_sequence`, :func:`ngrams`
and :func:`everygrams`.

:func:`ngrams` and :func:`everygrams` return :class:`Grams`, a re-iterable sequence of n-gram
tuples in nltk's order that also keeps the tokens it was made from: the language models of
:mod:`rnnkit.ngram.nltk_compat` count and score a ``Grams`` in C++ without building its tuples.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

__all__ = ["Grams", "everygrams", "ngrams", "pad_sequence"]


def pad_sequence(
    sequence: Iterable[Any],
    n: int,
    pad_left: bool = False,
    pad_right: bool = False,
    left_pad_symbol: Any = None,
    right_pad_symbol: Any = None,
) -> Iterator[Any]:
    """``sequence`` with ``n - 1`` pad symbols on the left and/or right (an iterator)."""
    it: Iterator[Any] = iter(sequence)
    if pad_left:
        it = chain((left_pad_symbol,) * (n - 1), it)
    if pad_right:
        it = chain(it, (right_pad_symbol,) * (n - 1))
    return it


class Grams:
    """Every n-gram of ``tokens`` with ``min_len <= n <= max_len``, as nltk's ``everygrams``
    yields them: for each start position, the n-grams starting there by increasing length."""

    __slots__ = ("max_len", "min_len", "tokens")

    def __init__(self, tokens: list[Any], min_len: int, max_len: int) -> None:
        self.tokens = tokens
        self.min_len = min_len
        self.max_len = max_len

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        tokens, lo, hi = self.tokens, self.min_len, self.max_len
        for start in range(len(tokens)):
            top = min(hi, len(tokens) - start)
            for length in range(lo, top + 1):
                yield tuple(tokens[start : start + length])

    def __len__(self) -> int:
        size, lo, hi = len(self.tokens), self.min_len, self.max_len
        return sum(max(0, min(hi, size - s) - lo + 1) for s in range(size))

    def __repr__(self) -> str:
        return f"Grams({len(self.tokens)} tokens, lengths {self.min_len}..{self.max_len})"


def _positive(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def ngrams(sequence: Iterable[Any], n: int, **kwargs: Any) -> Grams:
    """The n-grams of ``sequence`` (padded as :func:`pad_sequence` with ``kwargs``)."""
    n = _positive(n, "n")
    return Grams(list(pad_sequence(sequence, n, **kwargs)), n, n)


def everygrams(
    sequence: Iterable[Any],
    min_len: int = 1,
    max_len: int = -1,
    pad_left: bool = False,
    pad_right: bool = False,
    **kwargs: Any,
) -> Grams:
    """The n-grams of ``sequence`` of every length ``min_len..max_len`` (``-1``: the
    sequence's length), padded to ``max_len`` as :func:`pad_sequence` pads."""
    tokens = list(sequence)
    min_len = _positive(min_len, "min_len")
    if max_len == -1:
        max_len = len(tokens)
    max_len = _positive(max_len, "max_len") if tokens or max_len != 0 else 0
    padded = list(pad_sequence(tokens, max_len, pad_left, pad_right, **kwargs))
    return Grams(padded, min_len, max_len)
