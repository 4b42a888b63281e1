"""``nltk.lm.Vocabulary``: words seen at least ``unk_cutoff`` times, the rest mapped to
``unk_label`` by :meth:`Vocabulary.lookup`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

import numpy as np

from .preprocessing import PaddedTokens
from .util import Grams

__all__ = ["Vocabulary"]


class Vocabulary:
    """nltk's vocabulary, with the same behaviour (``lookup`` of a ``str`` gives the word or
    ``unk_label``; of an iterable, a tuple of lookups; of a :class:`~.util.Grams`, a
    ``Grams`` of the looked-up tokens)."""

    def __init__(
        self, counts: Iterable[str] | None = None, unk_cutoff: int = 1, unk_label: str = "<UNK>"
    ) -> None:
        self.unk_label = unk_label
        if unk_cutoff < 1:
            raise ValueError(f"Cutoff value cannot be less than 1. Got: {unk_cutoff}")
        self._cutoff = unk_cutoff
        self.counts: Counter[str] = Counter()
        self._version = 0
        self._len = 0
        # (the C++ vocabulary of a pipeline's encoding, which of its ids are known here) while
        # the counts are exactly that encoding's: lets fit translate the encoding's ids without
        # a Python loop over its words
        self._counted_from: tuple[Any, Any] | None = None
        self.update(counts if counts is not None else "")

    @property
    def cutoff(self) -> int:
        """Words seen fewer times than this are unknown."""
        return self._cutoff

    def update(self, *counter_args: Any, **counter_kwargs: Any) -> None:
        """Adds to the counts, as ``collections.Counter.update`` (the tokens of a
        :class:`~.preprocessing.PaddedTokens` are counted in C++)."""
        encoded = None
        if len(counter_args) == 1 and not counter_kwargs:
            (arg,) = counter_args
            if isinstance(arg, PaddedTokens):
                encoded = arg._take_encoded()
                counter_args = (_padded_token_counts(arg, encoded),)
        was_empty = not self.counts
        self.counts.update(*counter_args, **counter_kwargs)
        # len(list(self)), as nltk counts it (unk_label is always "in": when it is also a
        # counted word, nltk's iteration yields it twice, and so does its length)
        cutoff, counts = self._cutoff, self.counts
        self._counted_from = None
        if was_empty and encoded is not None:
            # the counts are the encoding's counts by id (0 for reserved ids never seen)
            words, _, _, counts_by_id = encoded
            known = counts_by_id >= cutoff
            size = int(np.count_nonzero(known))
            unk = words.find(self.unk_label)
            if unk >= 0:
                known[unk] = True
            self._counted_from = (words, known)
        else:
            size = sum(c >= cutoff for c in counts.values())
        if counts.get(self.unk_label, cutoff) < cutoff:
            size += 1
        self._len = size + (1 if counts else 0)
        self._version += 1

    def lookup(self, words: Any) -> Any:
        """``words`` with every unknown word replaced by ``unk_label``."""
        if isinstance(words, str):
            return words if words in self else self.unk_label
        if isinstance(words, Grams):
            known = self._known()
            unk = self.unk_label
            return Grams(
                [w if w in known else unk for w in words.tokens], words.min_len, words.max_len
            )
        if isinstance(words, Iterable):
            return tuple(self.lookup(w) for w in words)
        raise TypeError(f"Unsupported type for looking up in vocabulary: {type(words)}")

    def _known(self) -> frozenset[str]:
        """The words lookup keeps (unk_label included), cached until the next update."""
        cached = getattr(self, "_known_cache", None)
        if cached is None or cached[0] != self._version:
            cutoff = self._cutoff
            words = frozenset([w for w, c in self.counts.items() if c >= cutoff] + [self.unk_label])
            cached = self._known_cache = (self._version, words)
        return cached[1]

    def __getstate__(self) -> dict[str, Any]:
        # the C++ vocabulary in _counted_from does not pickle; it only speeds up a fit
        return {**self.__dict__, "_counted_from": None}

    def __getitem__(self, item: str) -> int:
        return self._cutoff if item == self.unk_label else self.counts[item]

    def __contains__(self, item: object) -> bool:
        return self[item] >= self.cutoff  # type: ignore[index]

    def __iter__(self) -> Iterator[str]:
        return chain(
            (item for item in self.counts if item in self),
            [self.unk_label] if self.counts else [],
        )

    def __len__(self) -> int:
        return self._len

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vocabulary)
            and self.unk_label == other.unk_label
            and self.cutoff == other.cutoff
            and self.counts == other.counts
        )

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return (
            f"<{type(self).__name__} with cutoff={self.cutoff} unk_label='{self.unk_label}' "
            f"and {len(self)} items>"
        )


def _padded_token_counts(tokens: PaddedTokens, encoded: Any) -> Any:
    """The counts of the tokens of ``encoded`` (``tokens``' whole encoding, see
    ``preprocessing._Pipeline``) in order of first appearance, as Counter.update would meet
    them, counted in C++; else (None: ``tokens`` was partly read, or cannot be encoded) the
    tokens not yet read."""
    if encoded is None:
        return tokens._remaining()
    words, ids, _, _ = encoded
    return words.count_words(ids)


def _known_in_encoding(vocab: Vocabulary, encoded: Any) -> Any:
    """Which of the encoding's words (by its ids) ``vocab`` knows, as a bool array, when
    ``vocab``'s counts are that encoding's (it was built from it alone and is unchanged since);
    else None."""
    counted_from = vocab._counted_from
    if counted_from is None or counted_from[0] is not encoded[0]:
        return None
    return counted_from[1]
