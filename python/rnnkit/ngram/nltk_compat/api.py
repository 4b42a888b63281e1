"""``nltk.lm.api``: the language-model base class, scoring in C++ (csrc/ngram/nltk_scores.hpp)."""

from __future__ import annotations

import math
import numbers
import random
import warnings
from bisect import bisect
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import Any, ClassVar

import numpy as np

from ... import _core
from .counter import FreqDist, NgramCounter
from .preprocessing import PaddedEverygrams, padded_everygrams
from .util import Grams
from .vocabulary import Vocabulary

__all__ = ["LanguageModel"]


def _real(value: Any, name: str) -> float:
    """A model's smoothing parameter as a float; TypeError (nltk's type) for a non-number.
    (Every score() asks: plain floats and ints skip the slow abstract-class check.)"""
    if type(value) is float or type(value) is int:
        return float(value)
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def _random_generator(seed_or_generator: Any) -> random.Random:
    if isinstance(seed_or_generator, random.Random):
        return seed_or_generator
    return random.Random(seed_or_generator)


def _weighted_choice(
    population: Sequence[Any], weights: Sequence[float], random_generator: random.Random
) -> Any:
    if not population:
        raise ValueError("Can't choose from empty population")
    if len(population) != len(weights):
        raise ValueError("The number of weights does not match the population")
    cum_weights = list(accumulate(weights))
    total = math.fsum(weights)
    threshold = random_generator.random()
    return population[bisect(cum_weights, total * threshold)]


_ZERO_DIVISION = (
    "division by zero (nltk raises it too: a Kneser-Ney context without continuation counts, "
    "or a Lidstone model with gamma 0 and an unseen context)"
)


class LanguageModel:
    """nltk's ``LanguageModel``: ``fit``, ``score``, ``logscore``, ``context_counts``,
    ``entropy``, ``perplexity`` and ``generate``, with the counts in rnnkit's C++ store and the
    scores computed in C++ from statistics gathered once per fit (nltk recomputes them at every
    call: its Kneser-Ney scans all n-grams of the next order for each score)."""

    _method: ClassVar[str] = ""

    def __init__(
        self, order: int, vocabulary: Vocabulary | None = None, counter: NgramCounter | None = None
    ) -> None:
        if not isinstance(order, int) or isinstance(order, bool):
            raise TypeError(f"order must be an int, got {type(order).__name__}")
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        self.order = order
        if vocabulary and not isinstance(vocabulary, Vocabulary):
            warnings.warn(
                f"The `vocabulary` argument passed to {type(self).__name__!r} must be an "
                "instance of `rnnkit.ngram.nltk_compat.Vocabulary`.",
                stacklevel=3,
            )
        self.vocab = Vocabulary() if vocabulary is None else vocabulary
        if counter is not None and not isinstance(counter, NgramCounter):
            raise TypeError(
                "counter must be an rnnkit.ngram.nltk_compat.NgramCounter, got "
                f"{type(counter).__name__}"
            )
        self.counts = NgramCounter() if counter is None else counter
        self._cache: tuple[Any, _core._NltkLookupScorer] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # The C++ scorer does not pickle; it is rebuilt from the counts at the next score.
        return {**self.__dict__, "_cache": None}

    def _param(self) -> float:
        return 0.0

    def fit(
        self, text: Iterable[Iterable[Any]], vocabulary_text: Iterable[str] | None = None
    ) -> None:
        """Counts ``text`` (sentences of n-grams, e.g. from
        :func:`~.preprocessing.padded_everygram_pipeline`), after building the vocabulary from
        ``vocabulary_text`` if it is still empty."""
        if not self.vocab:
            if vocabulary_text is None:
                raise ValueError("Cannot fit without a vocabulary or text to create it from.")
            self.vocab.update(vocabulary_text)
        if (
            isinstance(text, PaddedEverygrams)
            and isinstance(self.vocab, Vocabulary)
            and isinstance(self.counts, NgramCounter)
        ):
            encoded = text._take_encoded()
            if encoded is not None and self.counts._update_encoded(encoded, text.order, self.vocab):
                return
            if encoded is not None:  # taken but not counted: every sentence is still to count
                order = text.order
                text = (padded_everygrams(order, s) for s in text._shared.sentences())  # type: ignore[assignment]
        self.counts.update(self.vocab.lookup(sent) for sent in text)

    # ------------------------------------------------------------------ scoring
    def _scorer(self) -> _core._NltkLookupScorer:
        """The C++ scorer of the current counts and vocabulary (rebuilt when either changed)."""
        counts, vocab = self.counts, self.vocab
        # (every change to an rnnkit Vocabulary bumps its _version; any other is rebuilt for
        # every call)
        version = getattr(vocab, "_version", None)
        key = (counts._version, id(vocab), version, self._param())
        if self._cache is None or self._cache[0] != key or version is None:
            store = counts._ensure_order(self.order)
            words = counts._words
            # Every vocabulary word gets a counter id (counted or not), so that a word the
            # counter does not know is exactly a word outside the vocabulary.
            counted_from = getattr(vocab, "_counted_from", None)
            if counted_from is not None:
                # (a vocabulary built from a pipeline's encoding alone: its words are that
                # encoding's known ones, translated in one C++ call, not a loop over words)
                source, known_in_source = counted_from
                known = words.add_vocabulary(source)[known_in_source]
            else:
                known = [words.add(w) for w in vocab]
            unk = words.add(vocab.unk_label)
            in_vocab = np.zeros(len(words), dtype=np.uint8)
            in_vocab[known] = 1
            in_vocab[unk] = 1
            scorer = _core._NltkLookupScorer(
                store,
                words,
                self._method,
                self.order,
                self._param(),
                float(len(vocab)),
                in_vocab,
                unk,
            )
            self._cache = (key, scorer)
        return self._cache[1]

    @staticmethod
    def _checked(score: float) -> float:
        if score != score:  # NaN: nltk divides by zero there
            raise ZeroDivisionError(_ZERO_DIVISION)
        return score

    def unmasked_score(self, word: Any, context: Sequence[Any] | None = None) -> float:
        """The score of ``word`` after ``context``, both already looked up (no lookup here)."""
        scorer = self._scorer()
        ids = self.counts._ids([*context, word] if context else [word], grow=False)
        return self._checked(scorer.score_ids(int(ids[-1]), ids[:-1]))

    def score(self, word: str, context: Sequence[str] | None = None) -> float:
        """The probability of ``word`` after ``context`` (unknown words are ``unk_label``)."""
        score = self._scorer().score(word, context if context else None)
        if score != score:  # (as _checked, without a second call on this hot path)
            raise ZeroDivisionError(_ZERO_DIVISION)
        return score

    def logscore(self, word: str, context: Sequence[str] | None = None) -> float:
        """log2 of :meth:`score` (-inf for 0)."""
        score = self.score(word, context)
        return -math.inf if score == 0.0 else math.log(score, 2)

    def context_counts(self, context: Sequence[Any]) -> FreqDist:
        """The counts of the words seen after ``context`` (all unigrams for none)."""
        return self.counts._followers(tuple(context)) if context else self.counts.unigrams

    def entropy(self, text_ngrams: Iterable[Sequence[Any]]) -> float:
        """Cross-entropy in bits: the negated mean log2 score of each n-gram's last word
        given the words before it (a :class:`~.util.Grams` is scored without tuples)."""
        scorer = self._scorer()
        if isinstance(text_ngrams, Grams):
            total, count = scorer.log2_score_total_of_tokens(
                text_ngrams.tokens, text_ngrams.min_len, text_ngrams.max_len
            )
        else:
            total, count = scorer.log2_score_total(text_ngrams)
        if count == 0:
            raise ZeroDivisionError("entropy of no n-grams (nltk raises it too)")
        if total != total:  # NaN
            raise ZeroDivisionError(_ZERO_DIVISION)
        # (total is math.fsum's sum of the logs, as nltk computes it)
        return -1 * total / count

    def perplexity(self, text_ngrams: Iterable[Sequence[Any]]) -> float:
        """2 ** :meth:`entropy`."""
        return pow(2.0, self.entropy(text_ngrams))

    def generate(
        self, num_words: int = 1, text_seed: Iterable[str] | None = None, random_seed: Any = None
    ) -> Any:
        """``num_words`` words sampled one after the other (one word, not a list, when
        ``num_words`` is 1), as nltk samples them: the same words for the same seed."""
        seed = [] if text_seed is None else list(text_seed)
        rng = _random_generator(random_seed)
        if num_words == 1:
            context = seed[-self.order + 1 :] if len(seed) >= self.order else seed
            samples = self.context_counts(self.vocab.lookup(context))
            while context and not samples:
                context = context[1:] if len(context) > 1 else []
                samples = self.context_counts(self.vocab.lookup(context))
            population = sorted(samples)
            weights = self._scorer().scores_after(list(context), population).tolist()
            if any(w != w for w in weights):
                raise ZeroDivisionError(_ZERO_DIVISION)
            return _weighted_choice(population, tuple(weights), rng)
        generated: list[Any] = []
        for _ in range(num_words):
            generated.append(self.generate(1, seed + generated, rng))
        return generated
