"""``nltk.lm.NgramCounter`` on rnnkit's C++ count store, with nltk's ``FreqDist`` and
``ConditionalFreqDist`` views of its counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ... import _core
from .util import Grams
from .vocabulary import _known_in_encoding

__all__ = ["ConditionalFreqDist", "FreqDist", "NgramCounter"]


class FreqDist(Counter[Any]):
    """nltk's frequency distribution: a Counter with ``N()``, ``B()`` and ``freq()``."""

    def N(self) -> int:
        """Total count."""
        return sum(self.values())

    def B(self) -> int:
        """Number of samples with a count."""
        return len(self)

    def freq(self, sample: Any) -> float:
        """count(sample) / N(), 0 for an empty distribution."""
        n = self.N()
        return 0 if n == 0 else self[sample] / n

    def __repr__(self) -> str:
        return f"<FreqDist with {self.B()} samples and {self.N()} outcomes>"


class ConditionalFreqDist(dict[tuple[Any, ...], FreqDist]):
    """Contexts mapped to the frequency distributions of the words after them; a missing
    context gives an empty distribution."""

    def __missing__(self, key: tuple[Any, ...]) -> FreqDist:
        return FreqDist()

    def N(self) -> int:
        """Total count over every context."""
        return sum(fd.N() for fd in self.values())

    def conditions(self) -> list[tuple[Any, ...]]:
        """The contexts."""
        return list(self)

    def __repr__(self) -> str:
        return f"<ConditionalFreqDist with {len(self)} conditions>"


def _context_keys(contexts: NDArray[np.int32], base: int) -> NDArray[np.int64]:
    """One int64 per row of context ids, the ids as digits in ``base`` (every id < base)."""
    key = np.zeros(contexts.shape[0], dtype=np.int64)
    for j in range(contexts.shape[1]):
        key = key * np.int64(base) + contexts[:, j]
    return key


class NgramCounter:
    """nltk's n-gram counter, in rnnkit's C++ store: ``update`` with sentences of n-gram tuples
    (or :class:`~.util.Grams`, counted without building tuples); ``counter["w"]`` the count of
    a word, ``counter[("a", "b")]`` the distribution of the words after a context,
    ``counter[n]`` every context of order n, ``N()`` the total over all orders.

    Unlike nltk's (which refuses more than ``nltk.lm.counter.MAX_NGRAMS`` distinct n-grams to
    bound its memory), the store has no cap: it holds an n-gram in tens of bytes, not the
    kilobyte of nested dictionaries and tuples nltk spends."""

    def __init__(self, ngram_text: Iterable[Iterable[Any]] | None = None) -> None:
        self._words = _core._Vocabulary()  # word -> id, for every word ever counted
        self._store: _core._NgramCounts | None = None
        self._version = 0
        self._views: dict[Any, Any] = {}
        if ngram_text:
            self.update(ngram_text)

    # ------------------------------------------------------------------ pickle and copy
    #: The layout of :meth:`__getstate__`'s dict; a pickle of another layout is refused.
    _PICKLE_VERSION = 1

    def __getstate__(self) -> dict[str, Any]:
        """The words in id order and the store's own serialization (``to_bytes``: exact
        counts), for ``pickle`` and ``copy.deepcopy`` (the C++ objects do not pickle); the
        views are caches, rebuilt on demand."""
        store = self._store
        return {
            "version": self._PICKLE_VERSION,
            "words": list(self._words.words()),
            "store": None if store is None else store.to_bytes(),
            "counted": self._version,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("version") != self._PICKLE_VERSION:
            raise ValueError(
                f"cannot unpickle an NgramCounter of pickle version {state.get('version')}; "
                f"this rnnkit reads version {self._PICKLE_VERSION}"
            )
        words = _core._Vocabulary()
        # The first words are the reserved ones a new vocabulary already holds; the others
        # get their ids back in order, which the store's n-grams refer to.
        words.add_words(state["words"][len(words) :])
        if len(words) != len(state["words"]) or list(words.words()) != state["words"]:
            raise ValueError("the pickled NgramCounter's words do not rebuild its ids")
        store = state["store"]
        self._words = words
        self._store = None if store is None else _core._NgramCounts.from_bytes(store)
        self._version = state["counted"]
        self._views = {}

    # ------------------------------------------------------------------ ids
    def _order(self) -> int:
        return 0 if self._store is None else self._store.order

    def _ensure_order(self, n: int) -> _core._NgramCounts:
        """The store, able to hold n-grams of n words (rebuilt at a higher order if needed)."""
        old = self._store
        if old is not None and old.order >= n:
            return old
        store = _core._NgramCounts(n)
        if old is not None:
            for k in range(1, old.order + 1):
                words, counts = old.ngrams(k)
                store.add_ngrams(words.ravel(), k, counts)
        self._store = store
        return store

    def _ids(self, tokens: Sequence[Any], grow: bool) -> NDArray[np.int32]:
        """Counter ids of string tokens (-1 for unknown ones when not ``grow``)."""
        if not tokens:
            return np.zeros(0, np.int32)
        try:
            joined = " ".join(tokens)
        except TypeError:
            bad = next(t for t in tokens if not isinstance(t, str))
            raise TypeError(
                f"n-gram words must be str, got {type(bad).__name__}: {bad!r}"
            ) from None
        # The C++ tokenizer splits at ASCII whitespace: it sees these tokens as they are when
        # none is empty or holds whitespace (isprintable rejects \t \n \r \v \f).
        if joined.isprintable() and joined.count(" ") == len(tokens) - 1:
            ids, _, _ = self._words.encode_text(joined, grow)
            if len(ids) == len(tokens):
                if not grow:  # the tokenizer gives 0 (<unk>) for unknown words too
                    for i in np.flatnonzero(ids == 0).tolist():
                        ids[i] = self._words.find(tokens[i])
                return ids
        get = self._words.add if grow else self._words.find
        return np.array([get(t) for t in tokens], dtype=np.int32)

    def _word(self, i: int) -> str:
        return str(self._words.word(i))

    # ------------------------------------------------------------------ counting
    def update(self, ngram_text: Iterable[Iterable[Any]]) -> None:
        """Counts the n-grams of every sentence of ``ngram_text`` (sentences of n-gram tuples,
        or :class:`~.util.Grams`)."""
        by_length: dict[int, list[tuple[Any, ...]]] = {}
        grams: list[Grams] = []
        for sent in ngram_text:
            if isinstance(sent, Grams) and sent.min_len == 1 and sent.max_len >= 1:
                grams.append(sent)
                continue
            for ngram in sent:
                if not isinstance(ngram, tuple):
                    raise TypeError(f"Ngram <{ngram}> isn't a tuple, but {type(ngram)}")
                if not ngram:
                    raise ValueError("an n-gram must hold at least one word, got ()")
                by_length.setdefault(len(ngram), []).append(ngram)
        top = max([*by_length, *(g.max_len for g in grams)], default=0)
        if top == 0:
            return
        store = self._ensure_order(top)
        # Everygrams of lengths 1..order: whole sentences, counted in C++ (in parallel).
        full = [g for g in grams if g.max_len == store.order]
        for g in grams:
            if g.max_len != store.order:  # fewer orders than the store: n-gram by n-gram
                for ngram in g:
                    by_length.setdefault(len(ngram), []).append(ngram)
        if full:
            tokens = [t for g in full for t in g.tokens]
            ids = self._ids(tokens, grow=True)
            offsets = np.zeros(len(full) + 1, dtype=np.int64)
            np.cumsum([len(g.tokens) for g in full], out=offsets[1:])
            store.add(ids, offsets, pad=False)
        for n, rows in sorted(by_length.items()):
            flat = [w for ngram in rows for w in ngram]
            ids = self._ids(flat, grow=True)
            store.add_ngrams(ids, n, np.ones(len(rows), dtype=np.uint64))
        self._version += 1
        self._views.clear()

    def _update_encoded(self, encoded: Any, order: int, vocab: Any) -> bool:
        """Counts the everygrams (lengths 1..order) of sentences encoded by
        ``preprocessing._encode_padded``, their words looked up in ``vocab`` (an rnnkit
        Vocabulary), in one C++ call; False (nothing counted) when the store holds another
        order."""
        store = self._store
        if store is not None and store.order != order:
            return False
        source, ids, offsets, _ = encoded
        words = self._words
        unk = words.add(vocab.unk_label)
        in_vocab = _known_in_encoding(vocab, encoded)
        if in_vocab is None:
            known = vocab._known()
            in_vocab = np.fromiter((w in known for w in source.words()), bool, len(source))
        translate = np.where(in_vocab, words.add_vocabulary(source), np.int32(unk))
        self._ensure_order(order).add(translate[ids], offsets, pad=False)
        self._version += 1
        self._views.clear()
        return True

    # ------------------------------------------------------------------ access
    def N(self) -> int:
        """Total count of n-grams over every order."""
        store = self._store
        if store is None:
            return 0
        return sum(int(store.total(k)) for k in range(1, store.order + 1))

    @property
    def unigrams(self) -> FreqDist:
        """The unigram counts."""
        return self[1]  # type: ignore[no-any-return]

    def _followers(self, context: tuple[Any, ...]) -> FreqDist:
        """The words after ``context`` and their counts; one object per context until the
        counts change, as nltk hands out the FreqDist it holds."""
        try:
            cached = self._views.get(("context", context))
        except TypeError:  # (an unhashable word: it was never counted)
            cached = None
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        followers = self._followers_of(context)
        try:
            self._views[("context", context)] = followers
        except TypeError:
            pass
        return followers

    def _followers_of(self, context: tuple[Any, ...]) -> FreqDist:
        store = self._store
        if store is None or len(context) + 1 > store.order:
            return FreqDist()
        ids = self._ids(list(context), grow=False)
        if (ids < 0).any():
            return FreqDist()
        index = self._follower_index(len(context) + 1)
        if index is None:  # (contexts too long for one int64 key: the store's own scan)
            words, counts = store.followers(ids)
        else:
            base, keys, last_words, key_counts = index
            if (ids >= base).any():  # a word added after the index: never counted
                return FreqDist()
            key = _context_keys(ids.reshape(1, -1), base)[0]
            lo, hi = np.searchsorted(keys, key, "left"), np.searchsorted(keys, key, "right")
            words, counts = last_words[lo:hi], key_counts[lo:hi]
        return FreqDist({self._word(int(w)): int(c) for w, c in zip(words, counts, strict=True)})

    def _follower_index(
        self, n: int
    ) -> tuple[int, NDArray[np.int64], NDArray[np.int32], NDArray[Any]] | None:
        """The n-grams of order n sorted by context: (context keys, last words, counts), made
        once per change of the counts, so that a context's followers are a binary search
        away (the store finds them by scanning a sixteenth of its table: milliseconds per
        lookup on a large corpus, where nltk reads a dict), with the key's base (the word
        list may grow after: a scorer adds the vocabulary's words). None when a context of
        n - 1 words does not fit one int64 key."""
        cached = self._views.get(("followers", n))
        if cached is None:
            assert self._store is not None
            base = len(self._words)
            if base ** (n - 1) >= 2**63:
                return None
            ngrams, counts = self._store.ngrams(n)
            keys = _context_keys(ngrams[:, :-1], base)
            order = np.argsort(keys, kind="stable")
            cached = (base, keys[order], ngrams[order, -1], counts[order])
            self._views[("followers", n)] = cached
        return cached  # type: ignore[no-any-return]

    def _order_view(self, n: int) -> Any:
        if n in self._views:
            return self._views[n]
        store = self._store
        view: Any
        if n == 1:
            view = FreqDist()
            if store is not None:
                words, counts = store.ngrams(1)
                for w, c in zip(words[:, 0], counts, strict=True):
                    view[self._word(int(w))] = int(c)
        else:
            view = ConditionalFreqDist()
            if store is not None and n <= store.order:
                words, counts = store.ngrams(n)
                names = [self._word(i) for i in range(len(self._words))]
                for row, c in zip(words.tolist(), counts.tolist(), strict=True):
                    if c:
                        ctx = tuple(names[i] for i in row[:-1])
                        fd = view.get(ctx)
                        if fd is None:
                            fd = view[ctx] = FreqDist()
                        fd[names[row[-1]]] = c
        self._views[n] = view
        return view

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, int) and not isinstance(item, bool):
            if item < 1:
                raise ValueError(f"an n-gram order must be >= 1, got {item}")
            return self._order_view(item)
        if isinstance(item, str):
            return self[1][item]
        if isinstance(item, Sequence):
            if len(item) == 0:
                # nltk looks the empty context up as the key () of the unigram table: 0
                return self[1][()]
            return self._followers(tuple(item))
        raise TypeError(f"counter keys are an order (int), a word (str) or a context, got {item!r}")

    def __len__(self) -> int:
        return self._order()

    def __contains__(self, item: object) -> bool:
        return isinstance(item, int) and 1 <= item <= self._order()

    def __iter__(self) -> Iterator[int]:
        return iter(range(1, self._order() + 1))

    def __str__(self) -> str:
        return f"<{type(self).__name__} with {len(self)} ngram orders and {self.N()} ngrams>"
