"""Backoff n-gram language models: estimation from counts, ARPA files, and scoring."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from .. import _core
from .._checks import check_bool, check_input_file, check_path, make_rng
from .._sampling import sample_token
from . import (
    NgramCounts,
    Sentences,
    Vocabulary,
    _all_plain_words,
    _check_n,
    _check_no_markers,
    _check_word,
    _encode,
    _split_words,
    _text_batches,
)
from ._files import check_distinct_files, check_output_file, write_atomically

__all__ = ["Built", "Evaluation", "NgramModel", "State", "build", "estimate", "load_arpa"]

INTERPOLATED = ("mkn", "kn", "absolute", "witten_bell")
#: method -> (its option, default); laplace is add_k with k = 1.
BACKED_OFF: dict[str, tuple[str, float] | None] = {
    "mle": None,
    "add_k": ("k", 0.5),
    "laplace": None,
    "stupid_backoff": ("alpha", 0.4),
}
METHODS = INTERPOLATED + tuple(BACKED_OFF)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _words(value: Any, name: str) -> list[str]:
    """Words given as a str (split at ASCII whitespace, as the tokenizer splits) or as a
    sequence of str."""
    if isinstance(value, str):
        return _split_words(value)
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        words = list(value)
        if not _all_plain_words(words):
            # A word that the tokenizer could never make (empty, or holding whitespace) would
            # score as <unk> without a word said.
            for i, word in enumerate(words):
                if not isinstance(word, str):
                    raise TypeError(f"{name} must hold str words, got {type(word).__name__}")
                _check_word(word, f"{name}[{i}]")
        return words
    raise TypeError(
        f"{name} must be a str of whitespace-separated words or a sequence of str, got "
        f"{type(value).__name__}"
    )


def _check_top_k(top_k: Any) -> int | None:
    if top_k is not None and (not _is_int(top_k) or top_k < 1):
        raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
    return None if top_k is None else int(top_k)


def pow10(exponent: float) -> float:
    """``10 ** exponent``, infinite past float64's range (the perplexity of a text with a
    token the model gives a probability under 1e-308, such as a file's -1e30)."""
    try:
        return 10.0**exponent
    except OverflowError:
        return math.inf


class Built(NamedTuple):
    """What :func:`build` reports."""

    discounts: list[tuple[float, ...]]  # D1, D2, D3+ per order (NgramModel.discounts)
    sizes: list[int]  # n-grams per order
    seconds: tuple[float, float, float]  # counting, estimating, writing the files


class Evaluation(NamedTuple):
    """A text's score (:meth:`NgramModel.evaluate`), as KenLM's ``query`` summarises it."""

    log10_prob: float
    tokens: int  # words and </s>
    oovs: int  # unknown words
    perplexity: float  # 10 ** (-log10_prob / tokens)
    perplexity_without_oovs: float  # the same over the known tokens only


class State:
    """Where scoring stands after some words: the stored n-grams ending at the last one (as
    KenLM's ``kenlm.State``). Immutable, comparable and hashable; equal states give equal
    scores for whatever follows. Made by :meth:`NgramModel.begin_state`,
    :meth:`NgramModel.null_state` and returned by :meth:`NgramModel.full_score`."""

    __slots__ = ("_entries",)

    def __init__(self, entries: tuple[int, ...] = ()) -> None:
        if isinstance(entries, (str, bytes)) or not isinstance(entries, Iterable):
            raise TypeError(f"entries must be a sequence of ints, got {type(entries).__name__}")
        self._entries = tuple(entries)
        for k, entry in enumerate(self._entries):
            if not _is_int(entry):
                raise TypeError(f"entries must hold ints, got {type(entry).__name__}")
            # The model reads each entry as an int64 reference to a stored n-gram: past that
            # range pybind11 refused it with its generic dump, and a negative one could pass
            # for a unigram and score as another word.
            if not 0 <= entry < 2**63:
                raise ValueError(
                    f"entries must be in [0, 2**63) (references to stored n-grams, as "
                    f"NgramModel.full_score returns them), got entries[{k}] = {entry}"
                )

    def __len__(self) -> int:
        """How many words of context the state keeps (the longest stored n-gram's length)."""
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, State) and other._entries == self._entries

    def __hash__(self) -> int:
        return hash(self._entries)

    def __repr__(self) -> str:
        return f"State(length={len(self)})"


class NgramModel:
    """A backoff n-gram model (the ARPA form): log10 probabilities and backoffs of n-grams of
    orders 1..``order``, scored as KenLM scores them (the longest stored n-gram ending at the
    word, plus the backoffs of the longer stored contexts).

    Made by :func:`estimate` from :class:`NgramCounts`, or by :func:`load_arpa`. Picklable
    (through :meth:`to_bytes`: the same scores, vocabulary, :attr:`method` and
    :attr:`discounts` after a round trip), so that it can be sent to other processes.
    """

    def __init__(self, model: _core._NgramModel, vocabulary: Vocabulary) -> None:
        self._model = model
        self.vocabulary = vocabulary
        #: Discounts per order (method "mkn": D1, D2, D3+), when estimated here.
        self.discounts: list[tuple[float, ...]] = []
        #: The :func:`estimate` method that made the model (None for a model read from a file).
        self.method: str | None = None
        # Which ids have no unigram (made when first needed; the model never changes).
        self._absent: NDArray[np.bool_] | None = None

    @property
    def order(self) -> int:
        return int(self._model.order)

    def size(self, n: int) -> int:
        """Number of n-grams of order ``n`` stored."""
        return int(self._model.size(_check_n(n, self.order)))

    def _unknown(self, ids: NDArray[np.int32]) -> NDArray[np.bool_]:
        """Which ids score as ``<unk>``: <unk> itself, and every word without a unigram (words
        of a frozen vocabulary that were never counted or were pruned, words added to the
        vocabulary after the model was made), as KenLM flags the words its ARPA file lacks."""
        size = self._model.vocab_size
        if self._absent is None:
            absent = np.ones(size, dtype=np.bool_)
            absent[self._model.ngrams(1)[0][:, 0]] = False
            self._absent = absent
        inside = ids < size
        unknown = ~inside | (ids == 0)
        unknown[inside] |= self._absent[ids[inside]]
        return unknown

    def _ids(self, words: Sequence[str]) -> NDArray[np.int32]:
        return np.array([self.vocabulary.lookup(w) for w in words], dtype=np.int32)

    def __getitem__(self, ngram: str | Sequence[str]) -> tuple[float, float]:
        """``(log10 prob, log10 backoff)`` of a stored n-gram (KeyError when absent)."""
        words = _words(ngram, "ngram")
        if not words or any(w not in self.vocabulary for w in words):
            raise KeyError(ngram)
        found = self._model.get(self._ids(words))
        if found is None:
            raise KeyError(ngram)
        return float(found[0]), float(found[1])

    def __contains__(self, ngram: object) -> bool:
        try:
            self[ngram]  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            return False
        return True

    def ngrams(self, n: int) -> tuple[NDArray[np.int32], NDArray[np.float32], NDArray[np.float32]]:
        """``(ids [M, n], log10 probs [M], log10 backoffs [M])`` of the n-grams of order n."""
        return self._model.ngrams(_check_n(n, self.order))

    # ------------------------------------------------------------------ scoring
    def _encode(self, sentence: str | Sequence[str]) -> NDArray[np.int32]:
        if isinstance(sentence, str):
            # Tokenized in C++ (whitespace, newlines included, as kenlm splits); unknown -> 0.
            ids, _, _ = self.vocabulary._core.encode_text(sentence, False, False)
            return ids
        if isinstance(sentence, Sequence) and not isinstance(sentence, (bytes, bytearray)):
            return self._ids(_words(sentence, "sentence"))
        raise TypeError(
            f"sentence must be a str or a sequence of words, got {type(sentence).__name__}"
        )

    def _run(
        self, ids: NDArray[np.int32], offsets: NDArray[np.int64], bos: bool, eos: bool, tokens: bool
    ) -> tuple[NDArray[np.float64], NDArray[np.float32], NDArray[np.int32]]:
        return self._model.score(
            ids, offsets, check_bool(bos, "bos"), check_bool(eos, "eos"), tokens
        )

    def score(self, sentence: str | Sequence[str], bos: bool = True, eos: bool = True) -> float:
        """log10 probability of ``sentence`` (after ``<s>`` when bos, with ``</s>`` when eos):
        the number ``kenlm.Model.score`` gives on the same ARPA file (summed in float32, as
        KenLM sums). Unknown words score as ``<unk>``."""
        if isinstance(sentence, str):
            return float(
                self._model.score_text(
                    self.vocabulary._core, sentence, check_bool(bos, "bos"), check_bool(eos, "eos")
                )
            )
        ids = self._encode(sentence)
        scores, _, _ = self._run(ids, np.array([0, ids.size], dtype=np.int64), bos, eos, False)
        return float(scores[0])

    def full_scores(
        self, sentence: str | Sequence[str], bos: bool = True, eos: bool = True
    ) -> list[tuple[float, int, bool]]:
        """Per scored token (the words, then ``</s>`` when eos): ``(log10 prob, length of the
        n-gram matched, whether the word is unknown)``, as ``kenlm.Model.full_scores``."""
        ids = self._encode(sentence)
        _, probs, lengths = self._run(ids, np.array([0, ids.size], dtype=np.int64), bos, eos, True)
        oov = self._unknown(ids).tolist() + ([False] if eos else [])
        return [
            (float(p), int(n), o)
            for p, n, o in zip(probs.tolist(), lengths.tolist(), oov, strict=True)
        ]

    def perplexity(self, sentence: str | Sequence[str]) -> float:
        """``10 ** (-score / (words + 1))`` with ``<s>`` and ``</s>``, as ``kenlm.Model``."""
        ids = self._encode(sentence)
        scores, _, _ = self._run(ids, np.array([0, ids.size], dtype=np.int64), True, True, False)
        return pow10(-float(scores[0]) / (ids.size + 1))

    def begin_state(self) -> State:
        """The state at the start of a sentence (after ``<s>``; a unigram model keeps no
        context, so there it is the null state)."""
        return State((Vocabulary.BOS,) if self.order > 1 else ())

    def null_state(self) -> State:
        """The state with no context at all."""
        return State()

    def full_score(self, state: State, word: str) -> tuple[float, int, State]:
        """``(log10 p(word | state), length of the n-gram matched, the state after word)``:
        KenLM's ``Model.BaseFullScore``. An unknown word scores as ``<unk>``."""
        if not isinstance(state, State):
            raise TypeError(f"state must be a rnnkit.ngram.State, got {type(state).__name__}")
        _check_word(word, "word")
        prob, matched, after = self._model.full_score(
            list(state._entries), self.vocabulary.lookup(word)
        )
        return float(prob), int(matched), State(after)

    def base_score(self, state: State, word: str) -> tuple[float, State]:
        """``(log10 p(word | state), the state after word)``: KenLM's ``Model.BaseScore``."""
        prob, _, after = self.full_score(state, word)
        return prob, after

    def next_word_distribution(
        self, context: State | str | Sequence[str] | None = None, top_k: int | None = None
    ) -> list[tuple[str, float]]:
        """``(word, log10 p(word | context))`` for every word that can come next (every
        vocabulary word but ``<s>``), most probable first; the first ``top_k`` only when given.
        ``context``: a :class:`State`, or words that follow ``<s>`` (None: a sentence's start).
        The probabilities sum to 1. Computed in C++ on all threads."""
        top_k = _check_top_k(top_k)
        if isinstance(context, State):
            state = context
        else:
            state = self.begin_state()
            for w in [] if context is None else _words(context, "context"):
                _, _, state = self.full_score(state, w)
        log_probs = self._model.distribution(list(state._entries))
        valid = np.flatnonzero(np.isfinite(log_probs))
        if top_k is not None and top_k < valid.size:
            # Only the candidates, before sorting: every word at least as probable as the
            # top_k-th (ties at the boundary included, so that the stable sort below still
            # breaks them by id, as sorting every word would).
            values = log_probs[valid]
            kth = np.partition(values, values.size - top_k)[values.size - top_k]
            valid = valid[values >= kth]
        order = valid[np.argsort(-log_probs[valid], kind="stable")]
        if top_k is None:
            words = self.vocabulary.words
            return [(words[i], float(log_probs[i])) for i in order.tolist()]
        word = self.vocabulary._core.word
        return [(word(i), float(log_probs[i])) for i in order[:top_k].tolist()]

    def generate(
        self,
        prompt: str | Sequence[str] = "",
        n: int = 100,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = 0,
    ) -> list[str]:
        """``n`` words sampled one at a time after ``<s>`` and ``prompt`` (words), from the
        model's distribution at ``temperature`` over the ``top_k`` most probable words (all
        when None); ``temperature=0`` takes the most probable. After ``</s>`` (which is
        returned as a word) the context starts again from ``<s>``; ``<unk>`` is never drawn.
        Returns the new words."""
        if not _is_int(n) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        if (
            not isinstance(temperature, (int, float, np.integer, np.floating))
            or isinstance(temperature, (bool, np.bool_))
            or not 0 <= temperature < math.inf
        ):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
        top_k = _check_top_k(top_k)
        rng = make_rng(seed)
        state = self.begin_state()
        for w in _words(prompt, "prompt"):
            _, _, state = self.full_score(state, w)
        words = self.vocabulary.words
        out: list[str] = []
        for _ in range(int(n)):
            log_probs = self._model.distribution(list(state._entries)).astype(np.float64)
            log_probs[Vocabulary.UNK] = -np.inf
            # (natural-log scores: the temperature divides log probabilities in base e)
            choice = sample_token(log_probs * math.log(10), temperature, top_k, rng)
            word = words[choice]
            out.append(word)
            state = (
                self.begin_state() if choice == Vocabulary.EOS else self.full_score(state, word)[2]
            )
        return out

    def evaluate(self, sentences: str | bytes | Iterable[str | Sequence[str]]) -> Evaluation:
        """Scores a whole text (a str/bytes whose lines are sentences, or an iterable of
        sentences) with ``<s>`` and ``</s>`` around each sentence, in C++ on all threads, and
        returns KenLM ``query``'s summary: the total log10 probability (the sum of the
        sentences' :meth:`score`, as KenLM adds them), the number of tokens (words and
        ``</s>``) and of unknown words, and the perplexity over all tokens and over the known
        ones, ``10 ** (-log10 prob / tokens)``."""
        from . import _text_batches  # the same sentence handling as NgramCounts.update

        total = known = 0.0
        tokens = oovs = 0
        line = 1
        for text, lengths in _text_batches(sentences):
            ids, offsets = _encode(self.vocabulary._core, text, lengths, False, line)
            line += offsets.size - 1
            scores, probs, _ = self._run(ids, offsets, True, True, True)
            # Token t of sentence s sits at offsets[s] + s + t (one </s> per sentence before).
            sentence_of_word = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
            word_slots = np.arange(ids.size) + sentence_of_word
            unknown = self._unknown(ids)
            # As KenLM's query: each sentence's float32 score (score()'s), added in float64,
            # and the unknown words' log10 probabilities taken out of that for the rest.
            sentences_total = float(scores.sum())
            total += sentences_total
            known += sentences_total - float(probs[word_slots[unknown]].astype(np.float64).sum())
            tokens += int(probs.size)
            oovs += int(unknown.sum())
        perplexity = pow10(-total / tokens) if tokens else math.nan
        kept = tokens - oovs
        return Evaluation(
            log10_prob=total,
            tokens=tokens,
            oovs=oovs,
            perplexity=perplexity,
            perplexity_without_oovs=pow10(-known / kept) if kept else math.nan,
        )

    def score_batch(
        self, ids: Any, offsets: Any, bos: bool = True, eos: bool = True
    ) -> NDArray[np.float64]:
        """log10 probability of each sentence ``ids[offsets[s]:offsets[s + 1]]`` (int32 ids of
        this model's vocabulary, int64 offsets starting at 0), on all threads with the GIL
        released."""
        ids = np.asarray(ids)
        if ids.dtype == np.int32 and ids.ndim == 1 and ids.size:
            low, high, size = int(ids.min()), int(ids.max()), self._model.vocab_size
            if low < 0 or high >= size:
                raise ValueError(
                    f"ids must be in [0, {size}) (this model's vocabulary), got values in "
                    f"[{low}, {high}]"
                )
        scores, _, _ = self._run(ids, np.asarray(offsets), bos, eos, False)
        return scores

    def logprob(self, word: str, context: Sequence[str] | str = (), base: float = 10) -> float:
        """log p(word | context) in ``base`` (10 by default; ``math.e`` for natural logs): the
        context's last ``order - 1`` words, with no ``<s>`` added (give it in the context)."""
        if (
            not isinstance(base, (int, float, np.integer, np.floating))
            or isinstance(base, (bool, np.bool_))
            or not (0 < base < math.inf and base != 1)
        ):
            raise ValueError(f"base must be a finite number > 0 other than 1, got {base!r}")
        history = _words(context, "context")
        history = history[len(history) - (self.order - 1) :] if self.order > 1 else []
        ids = self._ids([*history, _check_word(word, "word")])
        _, probs, _ = self._run(ids, np.array([0, ids.size], dtype=np.int64), False, False, True)
        value = float(probs[-1])
        return value if base == 10 else value * math.log(10) / math.log(base)

    # ------------------------------------------------------------------ ARPA
    def write_arpa(self, path: str | os.PathLike[str]) -> None:
        """Writes the model as an ARPA file with lmplz's conventions (log10 values printed as
        the shortest float32 text, a backoff column on every n-gram below the top order), in
        C++ on all threads, atomically (a temporary file renamed over ``path``). Lines come in
        storage order (unigrams by id, then grouped by first word), not lmplz's sorted order."""
        write_atomically(path, lambda tmp: self._model.write_arpa(self.vocabulary._core, tmp))

    # ------------------------------------------------------------------ binary
    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the model in rnnkit's binary format: its arrays as they are in memory
        (64-byte aligned, little-endian), the vocabulary and a checksum, atomically (a
        temporary file renamed over ``path``). :meth:`load` reads it back in about the time
        the file takes to read, with exactly the same scores."""
        write_atomically(path, lambda tmp: self._model.save_binary(self.vocabulary._core, tmp))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NgramModel:
        """The model :meth:`save` wrote. A file that is not one, or is truncated, corrupted
        (checksum) or inconsistent raises ``ValueError`` naming the file."""
        check_input_file(path, "model file")
        vocab = Vocabulary()
        try:
            model = _core._load_binary_model(os.fspath(path), vocab._core)
        except RuntimeError as error:  # I/O failures
            raise OSError(str(error)) from None
        vocab.frozen = True
        return cls(model, vocab)

    def to_bytes(self) -> bytes:
        """The model in rnnkit's binary format: the bytes :meth:`save` writes to a file (the
        model's words of the vocabulary, its arrays, a checksum). :meth:`from_bytes` reads
        them back with exactly the same scores."""
        return self._model.to_bytes(self.vocabulary._core)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> NgramModel:
        """The model :meth:`to_bytes` gave (or a binary model file's contents). Data that is
        not one, or is truncated, corrupted (checksum) or inconsistent raises ``ValueError``.
        (:attr:`method` and :attr:`discounts` are not in the bytes; pickle keeps them.)"""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        vocab = Vocabulary()
        model = _core._binary_model_from_bytes(
            memoryview(data).cast("B"), vocab._core, "NgramModel bytes"
        )
        vocab.frozen = True
        return cls(model, vocab)

    def __reduce__(self) -> tuple[Any, ...]:
        # The binary bytes, then what they do not hold: the words added to the vocabulary
        # after the model was made (none of them is the model's), whether it is frozen, and
        # the estimation's metadata.
        extra = self.vocabulary.words[self._model.vocab_size :]
        return (
            _model_from_pickle,
            (self.to_bytes(), extra, self.vocabulary.frozen, self.discounts, self.method),
        )

    def __repr__(self) -> str:
        sizes = ", ".join(str(self.size(n)) for n in range(1, self.order + 1))
        return f"NgramModel(order={self.order}, sizes=[{sizes}])"


def _model_from_pickle(
    data: bytes,
    extra: list[str],
    frozen: bool,
    discounts: list[tuple[float, ...]],
    method: str | None,
) -> NgramModel:
    model = NgramModel.from_bytes(data)
    if extra:
        model.vocabulary._core.add_words(extra)
    model.vocabulary.frozen = frozen
    model.discounts = [tuple(d) for d in discounts]
    model.method = method
    return model


def estimate(counts: NgramCounts, method: str = "mkn", **options: float) -> NgramModel:
    """A backoff model from ``counts``.

    The interpolated estimators: at every order p(w | h) = u(hw) + gamma(h) p(w | h without
    its first word), unigrams interpolated with the uniform distribution over the words
    (``<unk>`` included, ``<s>`` excluded, which gets probability 1 and is never predicted).

    ``"mkn"``: interpolated modified Kneser-Ney exactly as KenLM's ``lmplz`` estimates it
    (float32 arithmetic, three discounts per order from the count-of-counts, continuation
    counts below the top order except for n-grams that begin with ``<s>``); its ARPA file
    matches lmplz's value for value on the same text when the vocabulary grew while counting
    (lmplz numbers words by first appearance, and one of its statistics depends on that order).
    ``"kn"``: interpolated Kneser-Ney with one discount per order, D = n1 / (n1 + 2 n2) over
    the same continuation counts. ``"absolute"``: interpolated absolute discounting, the same
    single discount on raw counts. ``"witten_bell"``: interpolated Witten-Bell on raw counts,
    u(hw) = c(hw) / (c(h) + T(h)) and gamma(h) = T(h) / (c(h) + T(h)), T(h) the number of
    distinct words seen after h.

    The backoff estimators, on raw counts, c(h .) the sum of the counts of the n-grams that
    extend h (in double precision, stored as float32):

    ``"mle"``: p(w | h) = c(hw) / c(h .): a word never seen after a seen context gets
    probability 0: the context's backoff is written log10 -99 as ARPA files write zero, so
    the word scores about -99 plus its lower-order log10 probability (a context never seen
    backs off to its longest seen suffix).
    ``"add_k"`` (option ``k``, default 0.5; ``"laplace"``: k = 1): Lidstone's
    (c(hw) + k) / (c(h .) + k V) for the seen n-grams, V the number of words that can be
    predicted (all but ``<s>``), unigrams over the whole vocabulary; each context's remaining
    mass, which is exactly Lidstone's mass for its unseen words, goes to them in proportion to
    the next lower order (Katz's backoff normalisation), not uniformly as Lidstone (and
    ``nltk_compat.Lidstone``) would. ``"stupid_backoff"`` (option ``alpha``, default 0.4):
    Brants et al.'s S(w | h) = c(hw) / c(h .), times alpha per context backed off from:
    scores, not probabilities (they do not sum to 1). As in every ARPA model, a context that
    was never seen is skipped without the alpha Brants et al. would charge for it.

    Every other estimator's distribution sums to 1 over the vocabulary for every context
    (tested). Where the count-of-counts of an order give no valid Kneser-Ney discounts (small
    or artificial data), lmplz stops; here its ``--discount_fallback`` values are used (0.5,
    1, 1.5; 0.5 for a single discount) with a warning. (NLTK's own formulas are in
    ``nltk_compat``.)
    """
    if not isinstance(counts, NgramCounts):
        raise TypeError(f"counts must be NgramCounts, got {type(counts).__name__}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    if method in BACKED_OFF:
        return _backed_off(counts, method, options)
    if options:
        raise TypeError(f"method {method!r} takes no options, got {', '.join(options)}")
    _check_not_empty(counts)
    model, discounts, fallback = _core._NgramModel.interpolated(
        counts._store, len(counts.vocabulary), method
    )
    if fallback:
        values = "0.5, 1, 1.5" if method == "mkn" else "0.5"
        warnings.warn(
            "could not compute Kneser-Ney discounts from the count-of-counts of order(s) "
            f"{', '.join(map(str, fallback))} (small or artificial data?); using lmplz's "
            f"--discount_fallback values {values} there",
            RuntimeWarning,
            stacklevel=2,
        )
    out = NgramModel(model, counts.vocabulary.copy(frozen=True))
    out.discounts = [tuple(discounts[3 * k : 3 * k + 3]) for k in range(counts.order)]
    out.method = method
    return out


def build(
    sentences: Sentences | os.PathLike[str],
    order: int = 5,
    *,
    binary: str | os.PathLike[str] | None = None,
    arpa: str | os.PathLike[str] | None = None,
    temp_dir: str | os.PathLike[str] | None = None,
) -> Built:
    """Text to a modified Kneser-Ney model file, as lmplz builds one, without holding the
    counts or the model in memory: ``binary`` gets, byte for byte, the file that
    ``estimate(NgramCounts(order).update(sentences), "mkn").save(binary)`` writes, ``arpa``
    the one its ``write_arpa(arpa)`` writes (give either or both). The counts are made one
    partition of the n-grams at a time, the model one order at a time, through temporary
    files (lmplz's way; for order 5 on the 20 M-token benchmark corpus the process peaks at
    1.13 GiB instead of 4.4 GiB, and takes less time: BENCHMARKS.md). Temporary files
    of up to about 50 bytes per n-gram (with ``arpa``, also its text) go to a fresh directory
    in ``temp_dir`` (default: the output's directory) and are removed; each output is written
    atomically. At most 4 threads work (each holds 1/16 of the counts or of an order).

    ``sentences`` as :meth:`NgramCounts.update` takes them, or the path of a text file (an
    ``os.PathLike`` such as ``pathlib.Path``, not a str, which is text), read and tokenized
    here so that the text is not held while building; ``order`` >= 2. Text that is not UTF-8
    raises ``ValueError`` naming the line before anything is written; so do ``binary`` and
    ``arpa`` naming one file, or naming the input file. Returns the discounts
    per order (:attr:`NgramModel.discounts`), the n-grams per order and the seconds of each
    step (:class:`Built`); warns as :func:`estimate` does where the count-of-counts give no
    valid discounts. Load the files with :func:`load_model`.
    """
    import tempfile

    order = _check_order(order)
    outputs = {
        name: check_path(value, name)
        for name, value in (("binary", binary), ("arpa", arpa))
        if value is not None
    }
    if not outputs:
        raise TypeError("build needs binary= and/or arpa=: where to write the model")
    check_distinct_files(
        {
            **({"sentences": sentences} if isinstance(sentences, os.PathLike) else {}),
            **outputs,
        }
    )
    scratch_parent = check_path(temp_dir, "temp_dir") if temp_dir is not None else None
    # Before the text is read: these would fail only once the model is made.
    for name, path in outputs.items():
        check_output_file(path, name)
    if scratch_parent is not None and not os.path.isdir(scratch_parent):
        raise FileNotFoundError(f"temp_dir must be an existing directory, got {scratch_parent}")
    # (in a function of its own: nothing keeps the text alive once it is encoded, neither the
    # file's bytes nor a batch)
    vocabulary, ids, offsets = _encoded_sentences(sentences)
    if scratch_parent is None:
        scratch_parent = os.path.dirname(os.path.abspath(next(iter(outputs.values()))))
    result: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="rnnkit-build-", dir=scratch_parent) as scratch:

        def run(paths: dict[str, str]) -> None:
            try:
                result.extend(
                    _core._build_model_files(
                        ids,
                        offsets,
                        order,
                        vocabulary._core,
                        paths.get("binary", ""),
                        paths.get("arpa", ""),
                        scratch,
                    )
                )
            except RuntimeError as error:
                if not str(error).startswith("cannot "):  # not an I/O failure
                    raise
                raise OSError(str(error)) from None

        # Each output to a temporary file renamed over its path once all are written.
        def write(names: list[str], paths: dict[str, str]) -> None:
            if not names:
                run(paths)
                return
            first, rest = names[0], names[1:]
            write_atomically(outputs[first], lambda tmp: write(rest, {**paths, first: tmp}))

        write(list(outputs), {})
    discounts, fallback, sizes, seconds = result
    if fallback:
        warnings.warn(
            "could not compute Kneser-Ney discounts from the count-of-counts of order(s) "
            f"{', '.join(map(str, fallback))} (small or artificial data?); using lmplz's "
            "--discount_fallback values 0.5, 1, 1.5 there",
            RuntimeWarning,
            stacklevel=2,
        )
    return Built(
        [tuple(discounts[3 * k : 3 * k + 3]) for k in range(order)],
        [int(n) for n in sizes],
        (float(seconds[0]), float(seconds[1]), float(seconds[2])),
    )


def _encoded_sentences(
    sentences: Sentences | os.PathLike[str],
) -> tuple[Vocabulary, NDArray[np.int32], NDArray[np.int64]]:
    """:func:`build`'s text as a vocabulary grown in order of first appearance, the ids of
    its sentences and their offsets (sentence s is ``ids[offsets[s]:offsets[s + 1]]``)."""
    vocabulary = Vocabulary()
    ids_parts, offset_parts, base = [], [np.zeros(1, np.int64)], 0
    if isinstance(sentences, os.PathLike):
        sentences = Path(sentences).read_bytes()
    line = 1
    for text, lengths in _text_batches(sentences):
        ids, offsets = _encode(vocabulary._core, text, lengths, True, line)
        _check_no_markers(ids, offsets, line)
        line += offsets.size - 1
        ids_parts.append(ids)
        offset_parts.append(offsets[1:] + base)
        base += int(offsets[-1])
    if len(ids_parts) == 1:  # one text: its ids as they are, not copied
        ids = ids_parts[0]
    else:
        ids = np.concatenate(ids_parts) if ids_parts else np.zeros(0, np.int32)
    offsets = np.concatenate(offset_parts)
    if len(offsets) == 1:
        raise ValueError("sentences must hold at least one sentence, got none")
    return vocabulary, ids, offsets


def _check_order(order: Any) -> int:
    if not isinstance(order, (int, np.integer)) or isinstance(order, (bool, np.bool_)):
        raise TypeError(f"order must be an int, got {type(order).__name__}")
    if not 2 <= order <= 64:
        raise ValueError(f"order must be in [2, 64], got {order}")
    return int(order)


def _check_not_empty(counts: NgramCounts) -> None:
    if counts.total(1) == 0:
        raise ValueError("counts must hold at least one sentence, got an empty NgramCounts")


def _backed_off(counts: NgramCounts, method: str, options: dict[str, Any]) -> NgramModel:
    option = BACKED_OFF[method]
    allowed = {option[0]} if option else set()
    unknown = sorted(set(options) - allowed)
    if unknown:
        takes = f"takes only {option[0]!r}" if option else "takes no options"
        raise TypeError(f"method {method!r} {takes}, got {', '.join(unknown)}")
    param = 1.0 if method == "laplace" else 0.0
    if option:
        name, default = option
        value = options.get(name, default)
        if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{name} must be a number, got {type(value).__name__}")
        param = float(value)
        valid = 0 < param <= 1 if name == "alpha" else 0 < param < math.inf
        if not valid:
            wanted = "in (0, 1]" if name == "alpha" else "a finite number > 0"
            raise ValueError(f"{name} must be {wanted}, got {value!r}")
    _check_not_empty(counts)
    kind = "add_k" if method == "laplace" else method
    model = _core._NgramModel.backed_off(counts._store, len(counts.vocabulary), kind, param)
    out = NgramModel(model, counts.vocabulary.copy(frozen=True))
    out.method = method
    return out


def load_arpa(path: str | os.PathLike[str]) -> NgramModel:
    """Reads an ARPA file (lmplz's, or SRILM's: ``-99`` for ``<s>``, missing backoffs, comment
    lines before ``\\data\\``, CRLF line ends), streaming, in C++. A malformed file raises
    ``ValueError`` naming the line (``path:line: message``); a missing ``<unk>`` gets log10
    probability -100, as KenLM gives it."""
    check_input_file(path, "ARPA file")
    vocab = Vocabulary()
    try:
        model = _core._read_arpa(os.fspath(path), vocab._core)
    except RuntimeError as error:  # I/O failures from the C++ reader
        raise OSError(str(error)) from None
    vocab.frozen = True
    return NgramModel(model, vocab)


_BINARY_MAGIC = b"RNKMODEL"


def load_model(path: str | os.PathLike[str]) -> NgramModel:
    """A model file of either kind: rnnkit's binary format (:meth:`NgramModel.save`, told by
    its first bytes) or ARPA (:func:`load_arpa`)."""
    check_input_file(path, "model file")
    with open(path, "rb") as f:
        binary = f.read(len(_BINARY_MAGIC)) == _BINARY_MAGIC
    return NgramModel.load(path) if binary else load_arpa(path)
