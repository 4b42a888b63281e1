r"""rnnkit.ngram: exact n-gram counts in hashed sparse tables (C++), and their vocabulary.

* :class:`Vocabulary` maps words to ids: 0 ``<unk>``, 1 ``<s>``, 2 ``</s>``, then the words
  in order of first appearance (or of frequency, with :meth:`Vocabulary.build`'s cut-offs).
* :class:`NgramCounts` counts every n-gram of orders 1..N of sentences padded as lmplz pads
  them, ``<s> w1 ... wk </s>`` (``<s>`` is counted once per sentence as a unigram, and no
  n-gram reaches before it), in C++ with the GIL released.

Sentences come as text (a ``str``/``bytes`` whose lines are sentences), as an iterable of
sentence strings, or as an iterable of token sequences; words are separated by ASCII
whitespace (space, ``\t``, ``\r``, ``\v``, ``\f``; ``\n`` ends a sentence), as KenLM splits
them: other Unicode whitespace (U+00A0, U+3000, ...) is part of a word. Bytes must be UTF-8.
Counts are exact (an n-gram's key is its prefix's entry and its last word, never a lossy
hash) and 64-bit.
"""

from __future__ import annotations

import itertools
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import _core
from .._checks import check_bool, check_path
from ._files import write_atomically

__all__ = [
    "Built",
    "Evaluation",
    "NgramCounts",
    "NgramModel",
    "State",
    "Vocabulary",
    "build",
    "estimate",
    "load_arpa",
    "load_model",
]

#: One sentence: a string of whitespace-separated words, or a sequence of words.
Sentence = str | Sequence[str]
#: Sentences: a text (str or bytes; its lines are sentences) or an iterable of sentences.
Sentences = str | bytes | Iterable[Sentence]

# Sentences joined and tokenized in C++ per batch, so that memory stays bounded on a stream.
_BATCH_SENTENCES = 65536


# The highest order the C++ store handles (csrc/ngram: kMaxOrder).
_MAX_ORDER = 64
# count_of_counts asks the store for at most this many values; past the largest count the
# rest are zeros, so a huge max_count costs no more than its output.
_COUNT_OF_COUNTS_DIRECT = 256


def _check_int(value: Any, name: str, minimum: int, maximum: int | None = None) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return int(value)


def _check_n(n: Any, order: int) -> int:
    """An n-gram order ``n`` in ``[1, order]`` (the messages of the C++ store's own check)."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, (bool, np.bool_)):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if not 1 <= n <= order:
        raise ValueError(f"n must be in [1, {order}], got {n}")
    return int(n)


# The whitespace that separates words everywhere in rnnkit.ngram: the ASCII whitespace the C++
# tokenizer splits at (csrc/ngram/vocab.hpp), which is what KenLM splits at too. str.split()
# and str.isspace() also take U+00A0, U+3000, \x1c-\x1f, \x85, ... for whitespace: a word
# holding one would be counted but refused when read back, so they are not used here.
_WHITESPACE = re.compile("[ \t\n\r\v\f]+")


def _split_words(text: str) -> list[str]:
    """The words of ``text``: its pieces between runs of ASCII whitespace."""
    return [word for word in _WHITESPACE.split(text) if word]


def _check_word(word: Any, what: str = "a word") -> str:
    if not isinstance(word, str):
        raise TypeError(f"{what} must be a str, got {type(word).__name__}")
    if not word or _WHITESPACE.search(word):
        raise ValueError(
            f"{what} must be non-empty and hold no whitespace (the ASCII whitespace words are "
            f"split at: space, \\t, \\n, \\r, \\v, \\f), got {word!r}"
        )
    try:
        word.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"{what} must be valid Unicode (it holds a lone surrogate, as decoding invalid "
            f"UTF-8 with errors='surrogateescape' makes), got {word!r}"
        ) from None
    return word


def _all_plain_words(words: list[Any]) -> bool:
    """Whether every item is a word :func:`_check_word` accepts, checked on them all at once
    (a per-word check costs a microsecond each)."""
    if not all(type(w) is str for w in words):
        return False
    if not all(words):  # (an empty word)
        return False
    joined = "\n".join(words)
    if _WHITESPACE.search(joined.replace("\n", "")) or joined.count("\n") != len(words) - 1:
        return False
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text_batches(sentences: Sentences) -> Iterator[tuple[str | bytes, NDArray[np.int64] | None]]:
    """``(text, expected words per line or None)`` batches: lines are sentences. Token
    sequences are joined with spaces, and their lengths returned, so that a token holding
    whitespace (which would split) is caught after tokenizing."""
    if isinstance(sentences, (str, bytes)):
        yield sentences, None
        return
    if not isinstance(sentences, Iterable):
        raise TypeError(
            "sentences must be a str or bytes (lines are sentences) or an iterable of sentences "
            f"(strings or sequences of words), got {type(sentences).__name__}"
        )
    lines: list[str] = []
    lengths: list[int] = []
    tokenized: bool | None = None
    for i, sentence in enumerate(sentences):
        if isinstance(sentence, str):
            is_tokens = False
            if "\n" in sentence:
                raise ValueError(
                    f"sentence {i} holds a newline; give one sentence per item, or the whole "
                    "text as one str (whose lines are sentences)"
                )
            lines.append(sentence)
        elif isinstance(sentence, Sequence) and not isinstance(sentence, bytes):
            is_tokens = True
            for word in sentence:
                if not isinstance(word, str):
                    raise TypeError(f"sentence {i} must hold str words, got {type(word).__name__}")
            lines.append(" ".join(sentence))
            lengths.append(len(sentence))
        else:
            raise TypeError(
                f"sentence {i} must be a str or a sequence of str words, got "
                f"{type(sentence).__name__}"
            )
        if tokenized is None:
            tokenized = is_tokens
        elif tokenized != is_tokens:
            raise TypeError(
                f"sentence {i} is a {'sequence of words' if is_tokens else 'str'} but the "
                "sentences before it were not: give all sentences the same way"
            )
        if len(lines) == _BATCH_SENTENCES:
            yield "\n".join(lines) + "\n", (np.array(lengths) if tokenized else None)
            lines, lengths = [], []
    if lines:
        yield "\n".join(lines) + "\n", (np.array(lengths) if tokenized else None)


def _check_no_markers(ids: NDArray[np.int32], offsets: NDArray[np.int64], first: int) -> None:
    """A sentence holding <s> or </s> (ids 1, 2) is an error naming it (sentences numbered
    from ``first``: a text's lines), before anything is counted. (The store's own check can
    only name the position in the batch's id array.)"""
    markers = np.flatnonzero((ids == Vocabulary.BOS) | (ids == Vocabulary.EOS))
    if markers.size:
        line = first + int(np.searchsorted(offsets, markers[0], side="right")) - 1
        word = "<s>" if ids[markers[0]] == Vocabulary.BOS else "</s>"
        # Numbered as the other errors about an iterable's sentences (from 0), and as a line
        raise ValueError(
            f"sentence {line - 1} (from 0; line {line} of a text) holds {word}, which the "
            "store adds around each sentence: a sentence must not contain <s> or </s>"
        )


def _encode(
    vocab: _core._Vocabulary,
    text: str | bytes,
    lengths: NDArray[np.int64] | None,
    grow: bool,
    first_line: int = 1,
) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
    """The ids and offsets of a batch (lines numbered from ``first_line`` in messages). After
    an error the words it added stay: the caller that keeps the vocabulary (update) undoes
    them."""
    try:
        ids, offsets, _ = vocab.encode_text(text, grow, False, first_line)
    except UnicodeEncodeError as error:  # a lone surrogate (str text only)
        assert isinstance(text, str)
        line = first_line + text.count("\n", 0, error.start)
        raise ValueError(
            f"sentence {line - 1} (from 0; line {line} of a text) holds a lone surrogate "
            f"{text[error.start]!r}, which is not valid Unicode (decoding invalid UTF-8 with "
            "errors='surrogateescape' makes them)"
        ) from None
    if lengths is not None:
        got = np.diff(offsets)
        bad = np.flatnonzero(got != lengths)
        if bad.size:
            raise ValueError(
                f"a word of sentence {first_line - 1 + int(bad[0])} is empty or holds whitespace "
                "(words must be non-empty and hold no space, \\t, \\n, \\r, \\v or \\f)"
            )
    return ids, offsets


class Vocabulary:
    r"""Words and their ids: 0 ``<unk>``, 1 ``<s>``, 2 ``</s>``, then ``words`` in order.

    A vocabulary that is not ``frozen`` grows as :class:`NgramCounts` meets new words; a
    frozen one maps unknown words to ``<unk>`` (0). Words are non-empty strings without ASCII
    whitespace (space, ``\t``, ``\n``, ``\r``, ``\v``, ``\f``: what the tokenizer splits at).

    >>> from rnnkit.ngram import Vocabulary
    >>> v = Vocabulary.build(["the cat sat", "the dog sat down"], min_count=2)
    >>> v.words
    ['<unk>', '<s>', '</s>', 'the', 'sat']
    >>> v.encode("the dog sat")
    array([3, 0, 4], dtype=int32)
    >>> v.decode([3, 0, 4])
    ['the', '<unk>', 'sat']
    """

    UNK = 0
    BOS = 1
    EOS = 2

    def __init__(self, words: Iterable[str] = (), *, frozen: bool = False) -> None:
        if isinstance(words, (str, bytes)) or not isinstance(words, Iterable):
            raise TypeError(f"words must be an iterable of str words, got {type(words).__name__}")
        self._core = _core._Vocabulary()
        items = words if isinstance(words, list) else list(words)
        if _all_plain_words(items):
            self._core.add_words(items)  # (one C++ call: millions of words in a second)
        else:  # (the first bad word named, in order)
            for word in items:
                self._core.add(_check_word(word))
        self.frozen = bool(frozen)

    def copy(self, *, frozen: bool | None = None) -> Vocabulary:
        """A new vocabulary with the same words and ids (``frozen`` as this one's unless
        given), copied in C++."""
        out = Vocabulary(frozen=self.frozen if frozen is None else check_bool(frozen, "frozen"))
        out._core.add_vocabulary(self._core)
        return out

    @classmethod
    def build(
        cls, sentences: Sentences, *, min_count: int = 1, max_size: int | None = None
    ) -> Vocabulary:
        """A frozen vocabulary of the words of ``sentences`` seen at least ``min_count`` times,
        at most ``max_size`` of them (the most frequent; ties by first appearance), in order
        of decreasing count. ``max_size`` counts the words only, not the 3 special ids."""
        min_count = _check_int(min_count, "min_count", 1)
        if max_size is not None:
            max_size = _check_int(max_size, "max_size", 0)
        seen = _core._Vocabulary()
        totals = np.zeros(0, dtype=np.uint64)
        for text, lengths in _text_batches(sentences):
            _, _, counts = seen.encode_text(text, True, True)
            assert counts is not None  # asked for (with_counts=True)
            if lengths is not None:
                _encode(seen, text, lengths, False)  # checks the words
            grown = np.zeros(len(seen), dtype=np.uint64)
            grown[: totals.size] = totals
            grown[: counts.size] += counts
            totals = grown
        candidates = np.arange(3, totals.size)
        candidates = candidates[totals[3:] >= min_count]
        # Decreasing count, ties by first appearance (the id): a stable sort on -count.
        order = candidates[np.argsort(-totals[candidates].astype(np.int64), kind="stable")]
        if max_size is not None:
            order = order[:max_size]
        words = seen.words()
        return cls((words[i] for i in order), frozen=True)

    def __len__(self) -> int:
        return len(self._core)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self._core.find(word) >= 0

    def __iter__(self) -> Iterator[str]:
        return iter(self._core.words())

    def __getitem__(self, word: str) -> int:
        if not isinstance(word, str):
            raise TypeError(f"word must be a str, got {type(word).__name__}")
        found = self._core.find(word)
        if found < 0:
            raise KeyError(word)
        return int(found)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self.frozen == other.frozen and self.words == other.words

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} ids{', frozen' if self.frozen else ''})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_vocabulary_from_words, (self.words[3:], self.frozen))

    @property
    def words(self) -> list[str]:
        """Every word in id order, the 3 special ones first."""
        return list(self._core.words())

    def lookup(self, word: str) -> int:
        """The id of ``word``; ``<unk>`` (0) when absent."""
        if not isinstance(word, str):
            raise TypeError(f"word must be a str, got {type(word).__name__}")
        return max(int(self._core.find(word)), 0)

    def add(self, word: str) -> int:
        """The id of ``word``, added when new (a frozen vocabulary refuses new words)."""
        _check_word(word, "word")
        found = self._core.find(word)
        if found >= 0:
            return int(found)
        if self.frozen:
            raise ValueError(f"this vocabulary is frozen: cannot add {word!r}")
        return int(self._core.add(word))

    def word(self, id: int) -> str:
        """The word of ``id``."""
        return self._core.word(_check_int(id, "id", 0, len(self) - 1))

    def encode(self, sentence: Sentence) -> NDArray[np.int32]:
        """The ids of one sentence (a string or a sequence of words); unknown words are 0.
        No ``<s>``/``</s>`` are added."""
        if isinstance(sentence, str):
            if "\n" in sentence:
                raise ValueError("sentence holds a newline: encode one sentence at a time")
            ids, _ = _encode(self._core, sentence, None, False)
            return ids
        batches = list(_text_batches([sentence]))
        ids, _ = _encode(self._core, batches[0][0], batches[0][1], False)
        return ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The words of ``ids``."""
        words = self._core.words()
        arr = np.asarray(ids)
        if arr.dtype == object:  # (Python ints past int64 among them: refused by value)
            for i in arr.reshape(-1).tolist():
                if isinstance(i, int) and not isinstance(i, bool) and not 0 <= i < len(words):
                    raise ValueError(f"ids must be in [0, {len(words)}), got {i}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"ids must be integers, got dtype {arr.dtype}")
        out = []
        for i in arr.reshape(-1).tolist():
            if not 0 <= i < len(words):
                raise ValueError(f"ids must be in [0, {len(words)}), got {i}")
            out.append(words[i])
        return out


def _vocabulary_from_words(words: list[str], frozen: bool) -> Vocabulary:
    return Vocabulary(words, frozen=frozen)


# The container of NgramCounts.to_bytes: magic, format version, the vocabulary, the C++
# store's own bytes (which carry their own checksum), and a CRC-32 of everything before it.
_MAGIC = b"RNKCOUNT"
_FORMAT_VERSION = 1


def _ngram_ids(ngram: Any, order: int, vocabulary: Vocabulary) -> NDArray[np.int32]:
    """The ids of ``ngram``'s words in ``vocabulary`` (-1 for a word outside it), checked:
    1 to ``order`` non-empty words without whitespace."""
    if isinstance(ngram, str):
        words = _split_words(ngram)
    elif isinstance(ngram, Sequence) and all(isinstance(w, str) for w in ngram):
        words = list(ngram)
        for i, word in enumerate(words):  # ("a b" is no word: it was never counted)
            _check_word(word, f"ngram[{i}]")
    else:
        kind = type(ngram).__name__
        if isinstance(ngram, Sequence) and not isinstance(ngram, (bytes, bytearray)):
            kind += " holding " + ", ".join(
                sorted({type(w).__name__ for w in ngram if not isinstance(w, str)})
            )
        raise TypeError(
            f"ngram must be a str of whitespace-separated words or a sequence of str, got {kind}"
        )
    if not 1 <= len(words) <= order:
        raise ValueError(f"an n-gram must have 1 to {order} words, got {len(words)}")
    ids = [vocabulary._core.find(w) for w in words]
    return np.array(ids, dtype=np.int32)


class NgramCounts:
    """Exact counts of every n-gram of orders 1..``order`` (C++, hashed sparse tables).

    ``vocabulary``: the words' ids (a fresh growing :class:`Vocabulary` when None; a frozen
    one maps unknown words to ``<unk>``). :meth:`update` counts more sentences (any number of
    times); :meth:`update_ids` counts id arrays directly.

    >>> from rnnkit.ngram import NgramCounts
    >>> c = NgramCounts(3).update(["the cat sat", "the cat ran"])
    >>> c["the cat"], c[("<s>", "the", "cat")], c["cat sat </s>"], c["dog"]
    (2, 2, 1, 0)
    >>> [c.size(n) for n in (1, 2, 3)]
    [6, 6, 5]
    >>> sorted(c.items(2))[:2]
    [(('<s>', 'the'), 2), (('cat', 'ran'), 1)]
    """

    def __init__(self, order: int, vocabulary: Vocabulary | None = None) -> None:
        order = _check_int(order, "order", 1)
        if order > _MAX_ORDER:
            raise ValueError(f"order must be in [1, {_MAX_ORDER}], got {order}")
        if vocabulary is not None and not isinstance(vocabulary, Vocabulary):
            raise TypeError(
                f"vocabulary must be a rnnkit.ngram.Vocabulary or None, got "
                f"{type(vocabulary).__name__}"
            )
        self._store = _core._NgramCounts(order)
        self.vocabulary = vocabulary if vocabulary is not None else Vocabulary()

    @property
    def order(self) -> int:
        return int(self._store.order)

    def update(self, sentences: Sentences) -> NgramCounts:
        """Counts ``sentences`` (a text whose lines are sentences, or an iterable of sentence
        strings or of word sequences); returns self. A sentence must not contain ``<s>`` or
        ``</s>``: the store adds them. All or nothing: after an error (a bad sentence, text
        that is not UTF-8, counts past 2^63 - 1) the store and its vocabulary are as they
        were."""
        return self._update(sentences)

    def _update(self, sentences: Sentences, first_line: int = 1) -> NgramCounts:
        """:meth:`update`, the text's lines numbered from ``first_line`` in messages."""
        # One change for every other thread: no other use of the vocabulary or the store may
        # come between the encoding, the counting and the undoing of an error (a RuntimeError
        # here, before anything changes, when another thread is using either).
        grow = not self.vocabulary.frozen
        with self.vocabulary._core.claim(change=grow), self._store.claim(change=True):
            return self._update_claimed(sentences, first_line, grow)

    def _update_claimed(self, sentences: Sentences, first_line: int, grow: bool) -> NgramCounts:
        vocab = self.vocabulary._core
        words_before = len(vocab)
        fresh = self._store.word_bound() == 0
        line = first_line
        try:
            batches = _text_batches(sentences)
            first = next(batches, None)
            second = next(batches, None) if first is not None else None
            # One batch is counted here: its checks come before any change. A stream of
            # several is not held whole, so its batches are counted as they come: into this
            # store while it is empty (an error empties it again), else into a store of their
            # own that is merged once every batch has been counted.
            several = second is not None
            target = self._store if fresh or not several else _core._NgramCounts(self.order)
            for text, lengths in itertools.chain(
                [b for b in (first, second) if b is not None], batches
            ):
                ids, offsets = _encode(vocab, text, lengths, grow, line)
                _check_no_markers(ids, offsets, line)
                line += offsets.size - 1
                target.add(ids, offsets)
            if target is not self._store:
                self._store.merge(target)
        except BaseException:
            if fresh:
                self._store = _core._NgramCounts(self.order)
            if len(vocab) != words_before:  # (a frozen one got none, and is only read)
                vocab.truncate(words_before)
            raise
        return self

    def update_ids(self, ids: Any, offsets: Any) -> NgramCounts:
        """Counts sentences given as ids: sentence s is ``ids[offsets[s]:offsets[s + 1]]``
        (``ids`` int32, ``offsets`` int64 with one more entry than sentences, non-decreasing);
        every id must be below ``len(vocabulary)`` and not 1 or 2 (``<s>``, ``</s>``)."""
        ids_arr = np.asarray(ids) if not isinstance(ids, np.ndarray) else ids
        if ids_arr.dtype == np.int32 and ids_arr.ndim == 1 and ids_arr.size:
            top = int(ids_arr.max())
            if top >= len(self.vocabulary):
                raise ValueError(
                    f"ids must be < len(vocabulary) = {len(self.vocabulary)}, got {top}"
                )
        self._store.add(
            ids_arr, offsets if isinstance(offsets, np.ndarray) else np.asarray(offsets)
        )
        return self

    def _ids(self, ngram: Any) -> NDArray[np.int32]:
        return _ngram_ids(ngram, self.order, self.vocabulary)

    def count(self, ngram: str | Sequence[str]) -> int:
        """How many times ``ngram`` ("w1 w2 ..." or a sequence of words) was seen (0 if never;
        a word outside the vocabulary was never seen)."""
        ids = self._ids(ngram)
        if (ids < 0).any():
            return 0
        return int(self._store.count(ids))

    __getitem__ = count

    def __contains__(self, ngram: object) -> bool:
        try:
            return self.count(ngram) > 0  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False

    def size(self, n: int) -> int:
        """Number of distinct n-grams of order ``n``."""
        return int(self._store.size(_check_n(n, self.order)))

    def __len__(self) -> int:
        """Distinct n-grams over all orders."""
        return sum(self.size(n) for n in range(1, self.order + 1))

    def total(self, n: int) -> int:
        """Number of n-gram tokens of order ``n`` (the sum of its counts)."""
        return int(self._store.total(_check_n(n, self.order)))

    def ngrams(self, n: int) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        """The n-grams of order ``n`` as ``(ids [M, n] int32, counts [M] int64)``."""
        ids, counts = self._store.ngrams(_check_n(n, self.order))
        return ids, counts.astype(np.int64)

    def items(self, n: int) -> Iterator[tuple[tuple[str, ...], int]]:
        """``((w1, ..., wn), count)`` for every n-gram of order ``n``."""
        with self.vocabulary._core.claim(change=False), self._store.claim(change=False):
            ids, counts = self.ngrams(n)
            words = self.vocabulary.words
        for row, count in zip(ids.tolist(), counts.tolist(), strict=True):
            yield tuple(words[i] for i in row), count

    def continuation_counts(self, n: int) -> NDArray[np.int64]:
        """N1+(. g) for every n-gram g of order ``n`` < ``order``, in :meth:`ngrams`'s order:
        how many distinct words were seen right before it (Kneser-Ney's continuation counts;
        ``<s>`` and n-grams starting with it have none)."""
        return self._store.continuation_counts(_check_n(n, self.order)).astype(np.int64)

    def count_of_counts(self, n: int, max_count: int = 4) -> NDArray[np.int64]:
        """``[N_1, ..., N_max_count]``: how many n-grams of order ``n`` were seen exactly k
        times (the statistics of Good-Turing and Kneser-Ney discounts)."""
        n = _check_n(n, self.order)
        max_count = _check_int(max_count, "max_count", 1, 2**31 - 1)
        if max_count <= _COUNT_OF_COUNTS_DIRECT:
            return self._store.count_of_counts(n, max_count).astype(np.int64)
        with self._store.claim(change=False):
            _, counts = self._store.ngrams(n)
            known = int(min(max_count, counts.max(initial=1)))
            out = np.zeros(max_count, dtype=np.int64)  # untouched pages: free until written
            out[:known] = self._store.count_of_counts(n, known)
        return out

    def merge(self, other: NgramCounts) -> NgramCounts:
        """Adds ``other``'s counts (same order) to this store; returns self. Merging is
        associative and commutative. With another vocabulary, other's words are translated
        (added here when this vocabulary grows, ``<unk>`` otherwise). Counts that would pass
        2^63 - 1 raise ``OverflowError``, and leave this store as it was."""
        if not isinstance(other, NgramCounts):
            raise TypeError(f"other must be NgramCounts, got {type(other).__name__}")
        if other.order != self.order:
            raise ValueError(
                f"other must have the same order, got {other.order} (this store: {self.order})"
            )
        # (one change for other threads, as update; other is only read)
        with (
            self.vocabulary._core.claim(change=True),
            self._store.claim(change=True),
            other.vocabulary._core.claim(change=False),
            other._store.claim(change=False),
        ):
            return self._merge_claimed(other)

    def _merge_claimed(self, other: NgramCounts) -> NgramCounts:
        if other.vocabulary is self.vocabulary or (
            other.vocabulary.words == self.vocabulary.words[: len(other.vocabulary)]
        ):
            self._store.merge(other._store)
            return self
        theirs = other.vocabulary.words
        mine = self.vocabulary
        words_before = len(mine)
        translate = np.empty(len(theirs), dtype=np.uint32)
        translate[:3] = (0, 1, 2)
        try:
            for i, word in enumerate(theirs[3:], start=3):
                translate[i] = mine.lookup(word) if mine.frozen else mine.add(word)
            self._store.merge(other._store, translate)
        except BaseException:
            mine._core.truncate(words_before)  # all or nothing, as update
            raise
        return self

    def prune(self, min_counts: int | Sequence[int]) -> NgramCounts:
        """Drops the n-grams of order n seen fewer than ``min_counts[n - 1]`` times (one value:
        the same for orders >= 2; unigrams are then kept; a list must not decrease from one
        order to the next, as lmplz's ``--prune``), keeping any n-gram that is a prefix of a
        kept one; returns self. The unigrams ``<s>`` and ``</s>`` always stay (a model needs
        them; lmplz does not prune unigrams at all): a word whose unigram is dropped, with
        every n-gram holding it, is then unknown to a model estimated from the store."""
        if isinstance(min_counts, (int, np.integer)) and not isinstance(min_counts, bool):
            value = _check_int(min_counts, "min_counts", 0)
            # (unigrams kept: at 1, which drops none of them, or 0, the same)
            values = [min(1, value)] + [value] * (self.order - 1)
        elif isinstance(min_counts, Iterable) and not isinstance(min_counts, (str, bytes)):
            values = [_check_int(v, f"min_counts[{i}]", 0) for i, v in enumerate(min_counts)]
            if len(values) != self.order:
                raise ValueError(
                    f"min_counts must have one value per order ({self.order}), got {len(values)}"
                )
        else:
            raise TypeError(
                "min_counts must be an int or a sequence of ints (one per order), got "
                f"{type(min_counts).__name__}"
            )
        for n in range(1, len(values)):
            if values[n] < values[n - 1]:
                # (lmplz's rule too) an n-gram's suffix is seen at least as often as it: with
                # thresholds that never decrease, a kept n-gram's suffix is kept, and the
                # estimators, which read each n-gram's suffix, find it
                raise ValueError(
                    "min_counts must not decrease from one order to the next, got "
                    f"{values[n]} for order {n + 1} after {values[n - 1]} for order {n}"
                )
        # Counts are 64-bit: a larger minimum drops the same n-grams as 2**63 - 1.
        self._store.prune([min(v, 2**63 - 1) for v in values])
        return self

    # ------------------------------------------------------------------ serialization
    def to_bytes(self) -> bytes:
        """Every count and the vocabulary, in a portable, versioned, checksummed format."""
        with self.vocabulary._core.claim(change=False), self._store.claim(change=False):
            vocab = "\n".join(self.vocabulary.words[3:]).encode("utf-8")
            store = self._store.to_bytes()
        header = (
            _MAGIC
            + _FORMAT_VERSION.to_bytes(4, "little")
            + bytes([1 if self.vocabulary.frozen else 0])
            + len(vocab).to_bytes(8, "little")
        )
        crc = zlib.crc32(store, zlib.crc32(vocab, zlib.crc32(header)))
        return b"".join((header, vocab, store, crc.to_bytes(4, "little")))

    @classmethod
    def from_bytes(cls, data: bytes) -> NgramCounts:
        """The store :meth:`to_bytes` wrote (``ValueError`` for anything else)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        # A memoryview throughout: a store of a few GB is read in place, never sliced copies.
        view = memoryview(data).cast("B")
        fixed = len(_MAGIC) + 4 + 1 + 8
        if len(view) < fixed + 4 or bytes(view[: len(_MAGIC)]) != _MAGIC:
            raise ValueError("not NgramCounts bytes (no RNKCOUNT header)")
        if zlib.crc32(view[:-4]) != int.from_bytes(view[-4:], "little"):
            raise ValueError("NgramCounts bytes are corrupted (checksum mismatch)")
        data = bytes(view[:fixed])
        version = int.from_bytes(data[8:12], "little")
        if version != _FORMAT_VERSION:
            raise ValueError(
                f"NgramCounts bytes have format version {version}; this rnnkit reads version "
                f"{_FORMAT_VERSION}"
            )
        frozen = bool(data[12])
        vocab_size = int.from_bytes(data[13:21], "little")
        if vocab_size > len(view) - fixed - 4:
            raise ValueError("NgramCounts bytes are truncated (vocabulary)")
        vocab_bytes = bytes(view[fixed : fixed + vocab_size])
        words = vocab_bytes.decode("utf-8").split("\n") if vocab_bytes else []
        store = _core._NgramCounts.from_bytes(view[fixed + vocab_size : -4])
        counts = cls.__new__(cls)
        counts._store = store
        counts.vocabulary = Vocabulary(words, frozen=frozen)
        if store.word_bound() > len(counts.vocabulary):
            raise ValueError("NgramCounts bytes are inconsistent (ids beyond the vocabulary)")
        return counts

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes :meth:`to_bytes` to ``path`` atomically (a temporary file in the same
        directory, then renamed over it): a reader never sees a partial file."""
        data = self.to_bytes()

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())

        write_atomically(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NgramCounts:
        """The store :meth:`save` wrote to ``path``."""
        return cls.from_bytes(Path(check_path(path)).read_bytes())

    def __reduce__(self) -> tuple[Any, ...]:
        return (NgramCounts.from_bytes, (self.to_bytes(),))

    def __eq__(self, other: object) -> bool:
        """Same order, vocabulary and counts (in any insertion order)."""
        if not isinstance(other, NgramCounts):
            return NotImplemented
        if other.order != self.order or other.vocabulary.words != self.vocabulary.words:
            return False
        for n in range(1, self.order + 1):
            a_ids, a_counts = self.ngrams(n)
            b_ids, b_counts = other.ngrams(n)
            if a_ids.shape != b_ids.shape:
                return False
            a_order = np.lexsort(a_ids.T[::-1])
            b_order = np.lexsort(b_ids.T[::-1])
            if not (
                np.array_equal(a_ids[a_order], b_ids[b_order])
                and np.array_equal(a_counts[a_order], b_counts[b_order])
            ):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        sizes = ", ".join(str(self.size(n)) for n in range(1, self.order + 1))
        return (
            f"NgramCounts(order={self.order}, sizes=[{sizes}], vocabulary={len(self.vocabulary)})"
        )


from ._model import (  # noqa: E402 (needs the classes above)
    Built,
    Evaluation,
    NgramModel,
    State,
    build,
    estimate,
    load_arpa,
    load_model,
)
