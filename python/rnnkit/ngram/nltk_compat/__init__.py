"""``nltk.lm`` on rnnkit's C++ n-gram store: the same names and behaviour, so that code
written for nltk runs unchanged after changing its imports::

    from rnnkit.ngram.nltk_compat import MLE, KneserNeyInterpolated, Vocabulary, NgramCounter
    from rnnkit.ngram.nltk_compat.preprocessing import padded_everygram_pipeline

Models (``MLE``, ``Lidstone``, ``Laplace``, ``WittenBellInterpolated``,
``AbsoluteDiscountingInterpolated``, ``KneserNeyInterpolated``, ``StupidBackoff``) give
nltk's numbers (its formulas, in double precision; tested against nltk) for ``score``,
``logscore``, ``entropy``, ``perplexity`` and ``generate`` (the same words for the same seed).
Counting happens in C++; :func:`~.preprocessing.padded_everygram_pipeline` and
:func:`~.util.everygrams`/:func:`~.util.ngrams` return :class:`~.util.Grams`, which are counted
and scored without building a tuple per n-gram. Words must be ``str``.
"""

from __future__ import annotations

from . import preprocessing, util
from .api import LanguageModel
from .counter import ConditionalFreqDist, FreqDist, NgramCounter
from .models import (
    MLE,
    AbsoluteDiscountingInterpolated,
    InterpolatedLanguageModel,
    KneserNeyInterpolated,
    Laplace,
    Lidstone,
    StupidBackoff,
    WittenBellInterpolated,
)
from .vocabulary import Vocabulary

__all__ = [
    "MLE",
    "AbsoluteDiscountingInterpolated",
    "ConditionalFreqDist",
    "FreqDist",
    "InterpolatedLanguageModel",
    "KneserNeyInterpolated",
    "LanguageModel",
    "Laplace",
    "Lidstone",
    "NgramCounter",
    "StupidBackoff",
    "Vocabulary",
    "WittenBellInterpolated",
    "preprocessing",
    "util",
]
