"""Sampling the next token from a model's scores (shared by the neural and n-gram LMs)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def sample_token(
    logits: NDArray[np.float64],
    temperature: float,
    top_k: int | None,
    rng: np.random.Generator,
) -> int:
    """The index drawn from ``softmax(logits / temperature)`` restricted to the ``top_k``
    highest ``logits`` (ties at the cut kept; all when None); the highest when ``temperature``
    is 0. ``logits`` are natural-log scores, ``-inf`` for impossible tokens.

    The scores are shifted by their maximum before being divided by the temperature, so that a
    tiny temperature (down to the smallest subnormal) tends to the greedy choice instead of
    overflowing into NaN."""
    if np.isnan(logits).any():
        raise ValueError("the model's next-token scores hold NaN (are its weights finite?)")
    if temperature == 0:
        return int(np.argmax(logits))
    kept = logits
    if top_k is not None and top_k < logits.size:
        cut = np.partition(logits, logits.size - top_k)[logits.size - top_k]
        kept = np.where(logits >= cut, logits, -np.inf)
    top = kept.max()
    if not np.isfinite(top):
        raise ValueError(f"the model's highest next-token score must be finite, got {top}")
    with np.errstate(over="ignore", under="ignore"):  # (-> -inf, then 0: intended)
        p = np.exp((kept - top) / temperature)
    return int(rng.choice(p.size, p=p / p.sum()))
