"""``nltk.lm.preprocessing``: padding sentences and the training pipeline."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from itertools import chain
from typing import Any

from .util import Grams, everygrams, pad_sequence

__all__ = [
    "PaddedEverygrams",
    "PaddedTokens",
    "flatten",
    "pad_both_ends",
    "padded_everygram_pipeline",
    "padded_everygrams",
]

flatten = chain.from_iterable

pad_both_ends = partial(
    pad_sequence,
    pad_left=True,
    left_pad_symbol="<s>",
    pad_right=True,
    right_pad_symbol="</s>",
)
pad_both_ends.__doc__ = """``sentence`` with ``n - 1`` ``<s>`` before it and ``n - 1`` ``</s>``
after it (``pad_both_ends(sentence, n)``)."""


def padded_everygrams(order: int, sentence: Iterable[Any]) -> Grams:
    """The n-grams of lengths 1..order of the padded sentence."""
    return everygrams(list(pad_both_ends(sentence, n=order)), max_len=order)


class _Pipeline:
    """What the two halves of :func:`padded_everygram_pipeline` share: the sentences, and
    once asked for, their padded tokens encoded in C++ (``(words, ids, offsets, counts)``:
    the ``_core._Vocabulary`` of their words, numbered in order of first appearance after the
    three reserved ids, the tokens' ids, each sentence's end, each id's count), or None when a
    token cannot go through the tokenizer."""

    def __init__(self, order: int, text: Sequence[Iterable[Any]]) -> None:
        self.order = order
        self.text = text
        self._encoded: Any = _NOT_YET

    def sentences(self) -> list[list[Any]]:
        return [s if isinstance(s, list) else list(s) for s in self.text]

    def encoded(self) -> Any:
        if self._encoded is _NOT_YET:
            self._encoded = _encode_padded(self.order, self.sentences())
        return self._encoded


_NOT_YET = object()


class _PipelinePart:
    """An iterator over the padded sentences; rnnkit takes a whole one at once."""

    def __init__(self, shared: _Pipeline) -> None:
        self._shared = shared
        self._it: Iterator[Any] | None = None

    @property
    def order(self) -> int:
        return self._shared.order

    def __iter__(self) -> _PipelinePart:
        return self

    def _sentences(self) -> Iterator[Any]:
        if self._it is None:
            self._it = iter(self._shared.text)
        return self._it

    def _take_encoded(self) -> Any:
        """The shared encoding of all sentences, when none was iterated yet (they are
        consumed then), else None."""
        if self._it is not None:
            return None
        encoded = self._shared.encoded()
        if encoded is not None:
            self._it = iter(())
        return encoded


class PaddedEverygrams(_PipelinePart):
    """The first half of :func:`padded_everygram_pipeline`: each sentence's padded
    everygrams (a :class:`~.util.Grams`), as nltk yields them. ``fit`` counts a whole one
    (not yet iterated) in one C++ call."""

    def __next__(self) -> Grams:
        return padded_everygrams(self.order, next(self._sentences()))


class PaddedTokens(_PipelinePart):
    """The second half of :func:`padded_everygram_pipeline`: every token of the padded
    sentences. ``Vocabulary.update`` counts a whole one (not yet iterated) in C++."""

    def __init__(self, shared: _Pipeline) -> None:
        super().__init__(shared)
        self._tokens: Iterator[Any] = iter(())

    def __next__(self) -> Any:
        while True:
            try:
                return next(self._tokens)
            except StopIteration:
                self._tokens = pad_both_ends(next(self._sentences()), n=self.order)

    def _remaining(self) -> Iterator[Any]:
        """The tokens not yet read, those left of a sentence partly read included (they are
        consumed as the result is read)."""
        order = self.order
        rest = chain(self._tokens, flatten(pad_both_ends(s, n=order) for s in self._sentences()))
        self._tokens = iter(())
        return rest


def padded_everygram_pipeline(
    order: int, text: Sequence[Iterable[Any]]
) -> tuple[PaddedEverygrams, PaddedTokens]:
    """``(training n-grams, vocabulary text)`` of tokenized sentences, as nltk makes them:
    each sentence's padded everygrams, and every token of the padded sentences (two
    iterators). ``text`` is read twice, so it must be a sequence (a list), not an iterator."""
    shared = _Pipeline(order, text)
    return PaddedEverygrams(shared), PaddedTokens(shared)


def _encode_padded(order: int, sentences: list[list[Any]]) -> Any:
    """See :class:`_Pipeline`."""
    from ... import _core

    words = _core._Vocabulary()
    # None for a token that is not a str, is empty or holds whitespace.
    encoded = words.encode_sentences(sentences, order - 1)
    if encoded is None:
        return None
    ids, offsets, counts = encoded
    return words, ids, offsets, counts
