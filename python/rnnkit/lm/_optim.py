"""Optimisers (:class:`SGD`, :class:`Adam`, with torch's update rules) and global-norm gradient
clipping (:func:`clip_grad_norm`).

An optimiser takes ``(parameter, gradient)`` array pairs (a model's ``parameters()``); a
parameter shared by two layers (tied weights) shares its gradient array too and is listed
once (pairs are de-duplicated by identity). ``step()`` updates the parameters in place.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import _core
from .._checks import check_bool

__all__ = ["SGD", "Adam", "Optimizer", "clip_grad_norm", "grad_norm"]

Array = NDArray[np.floating[Any]]
Pair = tuple[Array, Array]


def _rate(value: Any, name: str, *, positive: bool = False, below_one: bool = False) -> float:
    if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (positive and v == 0) or (below_one and v >= 1):
        wanted = "in [0, 1)" if below_one else "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {wanted}, got {value!r}")
    return v


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _pairs(pairs: Iterable[Pair]) -> list[Pair]:
    if not isinstance(pairs, Iterable) or isinstance(pairs, (str, bytes, np.ndarray)):
        raise TypeError(
            "parameters must be an iterable of (parameter, gradient) pairs (a model's "
            f"parameters()), got {type(pairs).__name__}"
        )
    out: list[Pair] = []
    seen: set[int] = set()
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise TypeError(f"parameters must be (parameter, gradient) pairs; item {i} is not")
        p, g = pair
        if not isinstance(p, np.ndarray) or not isinstance(g, np.ndarray):
            raise TypeError(f"item {i}: parameter and gradient must be numpy arrays")
        if p.shape != g.shape or p.dtype != g.dtype:
            raise ValueError(
                f"item {i}: the gradient must match its parameter, got {g.shape} {g.dtype} for "
                f"{p.shape} {p.dtype}"
            )
        if p.dtype not in _FLOATS:
            raise TypeError(f"item {i}: parameters must be float32 or float64, got {p.dtype}")
        if not (p.flags.writeable and g.flags.writeable):
            raise ValueError(
                f"item {i}: the {'parameter' if not p.flags.writeable else 'gradient'} is "
                "read-only (the optimizer updates parameters and clears gradients in place)"
            )
        if id(p) not in seen:
            seen.add(id(p))
            out.append((p, g))
    if not out:
        raise ValueError("an optimizer needs at least one parameter")
    return out


def _fused(*arrays: Array) -> bool:
    """Whether a step runs as one C++ pass over its arrays on rnnkit's threads (NumPy makes
    two to eight passes with temporaries on one thread): when every array is C-contiguous (a
    strided view of a parameter takes the NumPy path, the same rule)."""
    return all(a.flags.c_contiguous for a in arrays)


class Optimizer:
    """Parameters and gradients to update."""

    def __init__(self, parameters: Iterable[Pair], lr: float) -> None:
        self.pairs = _pairs(parameters)
        self.lr = _rate(lr, "lr", positive=True)

    def zero_grad(self) -> None:
        for _, g in self.pairs:
            g.fill(0)

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """torch's SGD: ``g += weight_decay * p``; with momentum, ``b = momentum * b + g`` (``b = g``
    at the first step) and ``g = b`` (or ``g + momentum * b`` with ``nesterov``); then
    ``p -= lr * g``."""

    def __init__(
        self,
        parameters: Iterable[Pair],
        lr: float,
        momentum: float = 0.0,
        *,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(parameters, lr)
        self.momentum = _rate(momentum, "momentum", below_one=True)
        self.weight_decay = _rate(weight_decay, "weight_decay")
        self.nesterov = check_bool(nesterov, "nesterov")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0")
        self._buffers: list[Array | None] = [None] * len(self.pairs)

    def step(self) -> None:
        for k, (p, g) in enumerate(self.pairs):
            buf = self._buffers[k]
            if _fused(p, g, *(() if buf is None else (buf,))):
                first = self.momentum != 0 and buf is None
                if first:
                    self._buffers[k] = np.empty_like(p, order="C")
                _core._sgd_step(
                    p,
                    g,
                    self._buffers[k],
                    self.lr,
                    self.momentum,
                    self.weight_decay,
                    self.nesterov,
                    first,
                )
                continue
            d = g + self.weight_decay * p if self.weight_decay else g
            if self.momentum:
                b = self._buffers[k]
                if b is None:
                    b = self._buffers[k] = d.copy()
                else:
                    b *= p.dtype.type(self.momentum)
                    b += d
                d = d + self.momentum * b if self.nesterov else b
            p -= p.dtype.type(self.lr) * d


class Adam(Optimizer):
    """torch's Adam (``amsgrad=False``): ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``; ``weight_decay`` adds
    ``weight_decay * p`` to the gradient (L2, not AdamW)."""

    def __init__(
        self,
        parameters: Iterable[Pair],
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        *,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(parameters, lr)
        if not isinstance(betas, Sequence) or isinstance(betas, str):
            raise TypeError(f"betas must be a pair of numbers, got {type(betas).__name__}")
        if len(betas) != 2:
            raise ValueError(f"betas must be two numbers, got {betas!r}")
        self.betas = (
            _rate(betas[0], "betas[0]", below_one=True),
            _rate(betas[1], "betas[1]", below_one=True),
        )
        self.eps = _rate(eps, "eps", positive=True)
        self.weight_decay = _rate(weight_decay, "weight_decay")
        self.t = 0
        self._m = [np.zeros_like(p) for p, _ in self.pairs]
        self._v = [np.zeros_like(p) for p, _ in self.pairs]

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        c1 = 1 - b1**self.t
        c2 = 1 - b2**self.t
        for (p, g), m, v in zip(self.pairs, self._m, self._v, strict=True):
            if _fused(p, g, m, v):
                _core._adam_step(p, g, m, v, b1, b2, self.lr / c1, c2, self.eps, self.weight_decay)
                continue
            d = g + self.weight_decay * p if self.weight_decay else g
            m *= p.dtype.type(b1)
            m += p.dtype.type(1 - b1) * d
            v *= p.dtype.type(b2)
            v += p.dtype.type(1 - b2) * d * d
            denom = np.sqrt(v / p.dtype.type(c2))
            denom += p.dtype.type(self.eps)
            p -= p.dtype.type(self.lr / c1) * m / denom


def _gradients(gradients: Iterable[Array] | Array, writeable: bool = False) -> list[Array]:
    """The distinct arrays of ``gradients`` (an iterable of arrays, or one array)."""
    if isinstance(gradients, np.ndarray):
        gradients = [gradients]
    if not isinstance(gradients, Iterable) or isinstance(gradients, (str, bytes)):
        raise TypeError(
            f"gradients must be an iterable of numpy arrays, got {type(gradients).__name__}"
        )
    items = list(gradients)
    for i, g in enumerate(items):
        if not isinstance(g, np.ndarray):
            raise TypeError(f"gradients[{i}] must be a numpy.ndarray, got {type(g).__name__}")
        if g.dtype not in _FLOATS:
            raise TypeError(f"gradients[{i}] must have dtype float32 or float64, got {g.dtype}")
        if writeable and not g.flags.writeable:
            raise ValueError(f"gradients[{i}] is read-only (clip_grad_norm scales it in place)")
    return list({id(g): g for g in items}.values())


def grad_norm(gradients: Iterable[Array]) -> float:
    """The L2 norm of all the gradients together (each array once); a non-finite norm (a NaN
    or infinite gradient) raises ``FloatingPointError``."""
    grads = _gradients(gradients)
    total = math.sqrt(math.fsum(_core._sum_of_squares(g) for g in grads))
    if math.isinf(total) and all(np.isfinite(g).all() for g in grads):
        # Finite gradients whose squares overflow double (|g| past ~1e154): the norm is
        # finite, computed on the gradients scaled by their largest magnitude (rare: copies).
        top = max(float(np.abs(g).max(initial=0.0)) for g in grads)
        total = top * math.sqrt(
            math.fsum(_core._sum_of_squares(g.astype(np.float64) / top) for g in grads)
        )
    if not math.isfinite(total):
        raise FloatingPointError(
            f"the gradients' norm is {total}: a gradient holds NaN or infinity (exploding "
            "gradients or a bad input); lower the learning rate or clip earlier"
        )
    return total


def clip_grad_norm(gradients: Iterable[Array], max_norm: float) -> float:
    """Scales the gradients in place by ``min(1, max_norm / norm)``, ``norm`` the L2 norm of
    all of them together (torch's ``clip_grad_norm_``, with its 1e-6 added to the norm), and
    returns ``norm``. A non-finite norm (a NaN or infinite gradient) raises
    ``FloatingPointError`` and leaves the gradients as they are."""
    max_norm = _rate(max_norm, "max_norm", positive=True)
    grads = _gradients(gradients, writeable=True)
    total = grad_norm(grads)
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for g in grads:
            g *= g.dtype.type(scale)
    return total
