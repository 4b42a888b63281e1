"""Minibatches for language modelling from one stream of token ids (``rnnkit.text.encode``).

Two ways to cut the stream (Dive into Deep Learning, §8.3):

* :func:`sequential_batches` (*sequential partitioning*): the stream is split into
  ``batch_size`` contiguous streams, read ``seq_len`` steps at a time; window k+1 of a stream
  continues window k, so a model carries its state from one batch to the next and
  backpropagates through each window only (truncated BPTT);
* :func:`random_batches` (*random sampling*): subsequences of ``seq_len`` tokens from a random
  offset, shuffled, grouped ``batch_size`` at a time; each batch is independent, so the state
  is reset for every batch.

Every batch is a :class:`Batch` of time-major ``inputs [T, B]`` and ``targets [T, B]`` (the
tokens one step later), as :mod:`rnnkit.nn`'s modules take them, and ``carry_state``. Both are
deterministic for a seed. :func:`split` cuts a stream (or a list) into train / validation /
test parts.

>>> import numpy as np
>>> from rnnkit.data import sequential_batches
>>> [b.inputs.T.tolist() for b in sequential_batches(np.arange(13), batch_size=2, seq_len=3)]
[[[0, 1, 2], [6, 7, 8]], [[3, 4, 5], [9, 10, 11]]]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import check_bool, check_real, make_rng

__all__ = ["Batch", "random_batches", "sequential_batches", "split"]

_T = TypeVar("_T")


class Batch(NamedTuple):
    """``inputs [T, B]`` and ``targets [T, B]`` (int64 token ids, time-major; ``targets[t]``
    follows ``inputs[t]`` in the stream), and whether the batch continues the previous one
    row for row (``carry_state``: keep the model's state, detached)."""

    inputs: NDArray[np.int64]
    targets: NDArray[np.int64]
    carry_state: bool


def _positive(value: Any, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _at_most(name: str, tokens: int) -> str:
    """What ``name`` (batch_size, seq_len) may be for a stream of ``tokens`` tokens."""
    if tokens < 2:
        return f"the stream needs at least 2 tokens, whatever {name}"
    return f"{name} must be <= {tokens - 1} for this stream"


def _stream(ids: ArrayLike) -> NDArray[np.int64]:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"ids must be a 1-D array of token ids, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"ids must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > np.iinfo(np.int64).max):
        raise ValueError(
            f"ids must be token ids in [0, 2**63), got values in [{arr.min()}, {arr.max()}]"
        )
    return arr.astype(np.int64, copy=False)


def sequential_batches(ids: ArrayLike, batch_size: int, seq_len: int) -> Iterator[Batch]:
    """Sequential partitioning: the stream cut into ``batch_size`` equal contiguous streams
    (the tokens that do not fill the last position are dropped), then windows of ``seq_len``
    steps, the last one shorter. Every batch after the first has ``carry_state=True``."""
    stream = _stream(ids)
    batch_size = _positive(batch_size, "batch_size")
    seq_len = _positive(seq_len, "seq_len")
    length = (stream.size - 1) // batch_size  # each stream needs one more token, for targets
    if length < 1:
        raise ValueError(
            f"{stream.size} tokens are too few for batch_size={batch_size} streams of at least 2 "
            f"tokens: {_at_most('batch_size', stream.size)}"
        )
    inputs = stream[: batch_size * length].reshape(batch_size, length)
    targets = stream[1 : batch_size * length + 1].reshape(batch_size, length)
    for k, start in enumerate(range(0, length, seq_len)):
        end = min(start + seq_len, length)
        yield Batch(
            np.ascontiguousarray(inputs[:, start:end].T),
            np.ascontiguousarray(targets[:, start:end].T),
            k > 0,
        )


def random_batches(
    ids: ArrayLike, batch_size: int, seq_len: int, seed: int | np.random.Generator | None = 0
) -> Iterator[Batch]:
    """Random sampling: from a random offset in ``[0, seq_len)`` (less where the stream is
    shorter than ``2 * seq_len``, so that one subsequence fits), the stream is cut into
    subsequences of ``seq_len`` tokens, which are shuffled and grouped ``batch_size`` at a
    time (the last batch may be smaller). Every batch has ``carry_state=False``."""
    stream = _stream(ids)
    batch_size = _positive(batch_size, "batch_size")
    seq_len = _positive(seq_len, "seq_len")
    rng = make_rng(seed)
    if stream.size - 1 < seq_len:  # (before drawing: seq_len may be past int64)
        raise ValueError(
            f"{stream.size} tokens are too few for a subsequence of seq_len={seq_len} + 1 "
            f"tokens: {_at_most('seq_len', stream.size)}"
        )
    # The offset leaves room for one subsequence at least: drawn from [0, seq_len) alone, it
    # failed by chance when the stream holds fewer than 2 * seq_len tokens (the draws are the
    # same as before whenever it holds more).
    offset = int(rng.integers(min(seq_len, stream.size - seq_len)))
    count = (stream.size - offset - 1) // seq_len
    starts = offset + seq_len * rng.permutation(count)
    steps = np.arange(seq_len)
    for first in range(0, count, batch_size):
        chosen = starts[first : first + batch_size]
        positions = chosen[None, :] + steps[:, None]  # [T, B]
        yield Batch(stream[positions], stream[positions + 1], False)


def split(
    items: Sequence[_T] | NDArray[Any],
    valid: float = 0.1,
    test: float = 0.1,
    *,
    shuffle: bool = False,
    seed: int | None = 0,
) -> tuple[Any, Any, Any]:
    """``(train, valid, test)``: the last ``test`` fraction is the test part, the ``valid``
    fraction before it the validation part (contiguous, so that a token stream's parts stay
    text; ``shuffle`` mixes the items first, e.g. sentences, with ``seed``). Each part's size
    is its fraction of ``len(items)``, rounded to the nearest integer (halves to even, as
    ``round``); the training part is the rest, and it is never empty when there are items: a
    ``ValueError`` names ``valid`` and ``test`` when the rounded parts would take every item
    (no items: three empty parts)."""
    given = {"valid": valid, "test": test}  # (as the caller wrote them, for the messages)
    fractions = []
    for value, name in ((valid, "valid"), (test, "test")):
        fraction = check_real(value, name)  # NumPy scalars too: np.float32(0.1) is a fraction
        if not 0 <= fraction < 1:
            raise ValueError(f"{name} must be a fraction in [0, 1), got {value!r}")
        fractions.append(fraction)
    valid, test = fractions
    shuffle = check_bool(shuffle, "shuffle")
    if valid + test >= 1:
        raise ValueError(f"valid + test must leave something to train on, got {valid + test}")
    if not (isinstance(items, np.ndarray) and items.ndim >= 1) and (
        isinstance(items, (str, bytes)) or not isinstance(items, Sequence)
    ):
        raise TypeError(
            "items must be a sequence (e.g. a list) or an array of at least one dimension, got "
            f"{type(items).__name__}" + (" of shape ()" if isinstance(items, np.ndarray) else "")
        )
    rng = make_rng(seed)
    n = len(items)
    order = rng.permutation(n) if shuffle else None
    n_test = round(n * test)
    n_valid = round(n * valid)
    n_train = n - n_valid - n_test
    if n and n_train < 1:
        raise ValueError(
            f"valid={given['valid']!r} and test={given['test']!r} leave no training item of "
            f"the {n} items ({n_valid} for validation and {n_test} for test, rounded): lower "
            "them or give more items"
        )
    bounds = ((0, n_train), (n_train, n_train + n_valid), (n_train + n_valid, n))
    if isinstance(items, np.ndarray):
        source = items[order] if order is not None else items
        return tuple(source[a:b] for a, b in bounds)  # type: ignore[return-value]
    seq = [items[i] for i in order] if order is not None else list(items)
    return tuple(seq[a:b] for a, b in bounds)  # type: ignore[return-value]
