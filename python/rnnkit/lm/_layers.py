"""The layers around the recurrent ones in a language model: :class:`Embedding`,
:class:`Linear`, :class:`Dropout` and the fused :func:`softmax_cross_entropy`.

Every layer follows :mod:`rnnkit.nn`'s convention: ``params`` and ``grads`` (NumPy arrays,
same keys; torch's names and shapes), ``forward`` keeps what ``backward`` needs, ``backward``
returns the gradient of the input and *adds* the parameter gradients into ``grads``,
``zero_grad``, ``train``/``eval``. Shapes: N rows, V vocabulary, E embedding size, I/O a
linear layer's input/output sizes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .. import _core
from .._checks import check_bool, make_rng

__all__ = ["Dropout", "Embedding", "Layer", "Linear", "log_softmax", "softmax_cross_entropy"]

Array = NDArray[np.floating[Any]]
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _dtype(dtype: DTypeLike | None) -> np.dtype[Any]:
    try:
        dt = np.dtype(np.float32 if dtype is None else dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in _DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _size(value: Any, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _fraction(value: Any, name: str) -> float:
    """A probability in [0, 1) (dropout)."""
    if (
        not isinstance(value, (int, float, np.integer, np.floating))
        or isinstance(value, (bool, np.bool_))
        or not 0 <= value < 1
    ):
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


class Layer:
    """Parameters, gradients and mode of a layer."""

    def __init__(self, dtype: DTypeLike | None, seed: int | np.random.Generator | None) -> None:
        self.dtype = _dtype(dtype)
        self.rng = make_rng(seed)
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self.training = True

    def _add(self, name: str, value: NDArray[Any]) -> None:
        self.params[name] = np.ascontiguousarray(value, dtype=self.dtype)
        self.grads[name] = np.zeros_like(self.params[name])

    def zero_grad(self) -> None:
        for g in self.grads.values():
            g.fill(0)

    def train(self, mode: bool = True) -> Layer:
        self.training = check_bool(mode, "mode")
        return self

    def eval(self) -> Layer:
        return self.train(False)

    def _input(self, x: Any, width: int, name: str = "x") -> Array:
        arr = np.asarray(x)
        if arr.dtype != self.dtype:
            raise TypeError(f"{name} must have dtype {self.dtype} (the layer's), got {arr.dtype}")
        if arr.ndim < 1 or arr.shape[-1] != width:
            raise ValueError(f"{name} must have shape [..., {width}], got {arr.shape}")
        return arr


class Embedding(Layer):
    """Rows of ``weight [V, E]`` by id (torch's ``nn.Embedding``: initialised N(0, 1)).
    ``forward(ids [...])`` -> ``[..., E]``; ``backward`` adds each row's gradient to the
    rows of the ids that used it (a scatter-add) and returns None (ids have no gradient)."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        *,
        dtype: DTypeLike | None = None,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(dtype, seed)
        self.num_embeddings = _size(num_embeddings, "num_embeddings")
        self.embedding_dim = _size(embedding_dim, "embedding_dim")
        self._add("weight", self.rng.standard_normal((self.num_embeddings, self.embedding_dim)))
        self._ids: NDArray[np.intp] | None = None

    def forward(self, ids: ArrayLike) -> Array:
        arr = np.asarray(ids)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"ids must be integers, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= self.num_embeddings):
            raise ValueError(
                f"ids must be in [0, {self.num_embeddings}), got values in "
                f"[{arr.min()}, {arr.max()}]"
            )
        # (a copy, a few bytes per id: a caller reusing its ids array for the next batch
        # before backward must not move this batch's gradients)
        self._ids = arr.astype(np.intp, copy=True) if self.training else None
        return self.params["weight"][arr]

    __call__ = forward

    def backward(self, dy: Array) -> None:
        if self._ids is None:
            raise RuntimeError("Embedding.backward needs a forward in training mode first")
        dy = self._input(dy, self.embedding_dim, "dy")
        if dy.shape[:-1] != self._ids.shape:
            raise ValueError(
                f"dy must have shape {(*self._ids.shape, self.embedding_dim)}, got {dy.shape}"
            )
        # grad[id] += row, on rnnkit's threads (each owns a range of the table's rows)
        ids = np.ascontiguousarray(self._ids.reshape(-1), dtype=np.int64)
        rows = np.ascontiguousarray(dy.reshape(-1, self.embedding_dim))
        _core._embedding_backward(ids, rows, self.grads["weight"])
        return None

    def __repr__(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"


class Linear(Layer):
    """``y = x weight^T + bias`` (torch's ``nn.Linear``: weight ``[O, I]``, bias ``[O]``,
    both initialised U(-1/sqrt(I), 1/sqrt(I))). ``x [..., I]`` -> ``[..., O]``.
    :meth:`tie` makes ``weight`` the rows of an :class:`Embedding` (shared array, shared
    gradient: weight tying, Press & Wolf 2017). In training mode ``forward`` keeps a
    reference to ``x`` (a C-contiguous one; a copy only when it is not), as the recurrent
    kernels' caches do: changing ``x`` in place before :meth:`backward` changes the weight's
    gradient (PyTorch would raise instead)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype: DTypeLike | None = None,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(dtype, seed)
        bias = check_bool(bias, "bias")
        self.in_features = _size(in_features, "in_features")
        self.out_features = _size(out_features, "out_features")
        bound = 1.0 / math.sqrt(self.in_features)
        self._add("weight", self.rng.uniform(-bound, bound, (self.out_features, self.in_features)))
        if bias:
            self._add("bias", self.rng.uniform(-bound, bound, self.out_features))
        self._x: Array | None = None

    def tie(self, embedding: Embedding) -> None:
        """Share ``embedding``'s weight (and its gradient array): V must be O, E must be I."""
        if not isinstance(embedding, Embedding):
            raise TypeError(
                f"embedding must be a rnnkit.lm.Embedding, got {type(embedding).__name__}"
            )
        w = embedding.params["weight"]
        if w.shape != self.params["weight"].shape or w.dtype != self.dtype:
            raise ValueError(
                f"cannot tie a Linear({self.in_features}, {self.out_features}) to an "
                f"Embedding{tuple(w.shape)}: the embedding must be [out_features, in_features] "
                f"of dtype {self.dtype}"
            )
        self.params["weight"] = w
        self.grads["weight"] = embedding.grads["weight"]

    def forward(self, x: ArrayLike) -> Array:
        arr = np.ascontiguousarray(self._input(x, self.in_features))
        self._x = arr if self.training else None
        x2 = arr.reshape(-1, self.in_features)
        y = np.empty((x2.shape[0], self.out_features), dtype=self.dtype)
        beta = 0.0
        if "bias" in self.params:
            y[...] = self.params["bias"]
            beta = 1.0
        # GEMMs on rnnkit's threads (not NumPy's BLAS pool, which would spin beside them)
        _core._gemm(x2, self.params["weight"], y, trans_b=True, beta=beta)
        return y.reshape(*arr.shape[:-1], self.out_features)

    __call__ = forward

    def backward(self, dy: Array) -> Array:
        if self._x is None:
            raise RuntimeError("Linear.backward needs a forward in training mode first")
        dy = self._input(dy, self.out_features, "dy")
        x2 = self._x.reshape(-1, self.in_features)
        d2 = dy.reshape(-1, self.out_features)
        if d2.shape[0] != x2.shape[0]:
            raise ValueError(
                f"dy must have shape {(*self._x.shape[:-1], self.out_features)}, got {dy.shape}"
            )
        d2 = np.ascontiguousarray(d2)
        _core._gemm(d2, x2, self.grads["weight"], trans_a=True, beta=1.0)
        if "bias" in self.params:
            self.grads["bias"] += d2.sum(axis=0)
        dx = np.empty_like(x2)
        _core._gemm(d2, self.params["weight"], dx)
        return dx.reshape(*self._x.shape[:-1], self.in_features)

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features}, bias={'bias' in self.params})"


class Dropout(Layer):
    """Inverted dropout: in training, each element is zeroed with probability ``p`` and the
    rest scaled by 1/(1-p), the mask drawn from the layer's ``rng``; identity in eval mode."""

    def __init__(
        self,
        p: float = 0.5,
        *,
        dtype: DTypeLike | None = None,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(dtype, seed)
        self.p = _fraction(p, "p")
        self._mask: Array | None = None

    def _checked(self, x: Any, name: str) -> Array:
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
        if x.dtype != self.dtype:
            raise TypeError(f"{name} must have dtype {self.dtype} (the layer's), got {x.dtype}")
        return x

    def forward(self, x: Array) -> Array:
        x = self._checked(x, "x")
        if not self.training or self.p == 0:
            self._mask = None
            return x
        keep = self.rng.random(np.shape(x)) >= self.p
        self._mask = keep * self.dtype.type(1.0 / (1.0 - self.p))
        return x * self._mask

    __call__ = forward

    def backward(self, dy: Array) -> Array:
        dy = self._checked(dy, "dy")
        if self._mask is not None and dy.shape != self._mask.shape:
            raise ValueError(f"dy must have shape {self._mask.shape} (that of x), got {dy.shape}")
        return dy if self._mask is None else dy * self._mask

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


def log_softmax(logits: Array, axis: int = -1) -> Array:
    """log softmax along ``axis``, computed stably (the maximum subtracted first)."""
    logits = np.asarray(logits)
    if not np.issubdtype(logits.dtype, np.floating):
        raise TypeError(f"logits must be a floating array, got dtype {logits.dtype}")
    if logits.ndim < 1:
        raise ValueError("logits must have a class axis (shape [..., V])")
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"axis must be an int, got {type(axis).__name__}")
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax_cross_entropy(
    logits: Array, targets: ArrayLike, *, ignore_index: int = -100, reduction: str = "mean"
) -> tuple[float, Array]:
    """Cross-entropy of ``logits [..., V]`` against integer ``targets [...]`` and its gradient
    with respect to the logits, in one pass (log-softmax computed stably): ``(loss, dlogits)``.
    Targets equal to ``ignore_index`` count for nothing. ``reduction``: ``"mean"`` (over the
    targets not ignored, as torch: NaN when every target is ignored) or ``"sum"``."""
    logits = np.asarray(logits)
    if logits.dtype not in _DTYPES:
        raise TypeError(f"logits must be float32 or float64, got {logits.dtype}")
    if logits.ndim < 1 or logits.shape[-1] == 0:
        raise ValueError(
            f"logits must have a class axis of at least one class (shape [..., V]), got shape "
            f"{logits.shape}"
        )
    t = np.asarray(targets)
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"targets must be integers, got dtype {t.dtype}")
    if t.shape != logits.shape[:-1]:
        raise ValueError(f"targets must have shape {logits.shape[:-1]}, got {t.shape}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(
        ignore_index, (int, np.integer)
    ):
        raise TypeError(f"ignore_index must be an int, got {type(ignore_index).__name__}")
    if not -(2**63) <= ignore_index < 2**63:
        raise ValueError(f"ignore_index must fit in int64, got {ignore_index}")
    V = logits.shape[-1]
    if t.dtype == np.uint64 and t.size and int(t.max()) >= 2**63:
        # (the cast to int64 below would wrap it, possibly onto ignore_index)
        raise ValueError(
            f"targets must be in [0, {V}) or ignore_index ({ignore_index}), got {int(t.max())}"
        )
    flat = np.ascontiguousarray(logits.reshape(-1, V))
    tt = np.ascontiguousarray(t.reshape(-1), dtype=np.int64)
    count = int(np.count_nonzero(tt != ignore_index))
    scale = 1.0 / count if reduction == "mean" and count else 1.0
    total, grad = _core._softmax_cross_entropy(flat, tt, ignore_index, scale)
    loss = total * scale if count or reduction == "sum" else math.nan
    return loss, grad.reshape(logits.shape)
