"""``nltk.lm.models``: the estimators, nltk's formulas evaluated in C++."""

from __future__ import annotations

from typing import Any

from .api import LanguageModel, _real

__all__ = [
    "MLE",
    "AbsoluteDiscountingInterpolated",
    "InterpolatedLanguageModel",
    "KneserNeyInterpolated",
    "Laplace",
    "Lidstone",
    "StupidBackoff",
    "WittenBellInterpolated",
]


class MLE(LanguageModel):
    """Maximum likelihood: count(context + word) / count(context + anything)."""

    _method = "mle"


class Lidstone(LanguageModel):
    """Add-gamma: (count(context + word) + gamma) / (count(context) + len(vocab) * gamma)."""

    _method = "lidstone"

    def __init__(self, gamma: float, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gamma = gamma

    def _param(self) -> float:
        return _real(self.gamma, "gamma")


class Laplace(Lidstone):
    """Add-one (Lidstone with gamma 1)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(1, *args, **kwargs)


class StupidBackoff(LanguageModel):
    """Stupid backoff (Brants et al. 2007): relative frequency where the n-gram was seen, else
    ``alpha`` times the score after the shorter context. Scores, not probabilities: they do
    not sum to 1."""

    _method = "stupid_backoff"

    def __init__(self, alpha: float = 0.4, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alpha = alpha

    def _param(self) -> float:
        return _real(self.alpha, "alpha")


class InterpolatedLanguageModel(LanguageModel):
    """score = alpha + gamma * (the score after the shorter context), down to the unigrams;
    alpha and gamma from the smoothing's formulas (``_method``, ``_discount``)."""

    _discount = 0.0

    def __init__(self, order: int, **kwargs: Any) -> None:
        kwargs.pop("params", None)
        super().__init__(order, **kwargs)

    def _param(self) -> float:
        return _real(self._discount, "discount")


class WittenBellInterpolated(InterpolatedLanguageModel):
    """Interpolated Witten-Bell smoothing."""

    _method = "witten_bell"


class AbsoluteDiscountingInterpolated(InterpolatedLanguageModel):
    """Interpolated absolute discounting (default discount 0.75)."""

    _method = "absolute_discounting"

    def __init__(self, order: int, discount: float = 0.75, **kwargs: Any) -> None:
        super().__init__(order, **kwargs)
        self._discount = discount


class KneserNeyInterpolated(InterpolatedLanguageModel):
    """Interpolated Kneser-Ney smoothing as nltk computes it (one discount, default 0.1;
    continuation counts below the top order). Like nltk's, its scores need not sum to 1."""

    _method = "kneser_ney"

    def __init__(self, order: int, discount: float = 0.1, **kwargs: Any) -> None:
        if not (0 <= discount <= 1):
            raise ValueError("Discount must be between 0 and 1 for probabilities to sum to unity.")
        super().__init__(order, **kwargs)
        self._discount = discount
