"""Helpers shared by the reference cells: activations, their derivatives, defaults.

Every helper computes in the dtype of its arguments; nothing here casts. Shapes use
T (time steps), B (batch), I (input size), H (hidden size) and G (gates: LSTM 4, GRU 3,
RNN 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]
Nonlinearity = Literal["tanh", "relu"]

NONLINEARITIES: tuple[str, ...] = ("tanh", "relu")

CellCache = TypeVar("CellCache")


# -------------------------------------------------------------------------- activations
def sigmoid(a: Array) -> Array:
    """Numerically stable logistic function ``1 / (1 + exp(-a))``.

    Only ``exp(-|a|)`` is ever evaluated, so nothing overflows for large ``|a|`` (it may
    underflow to 0, which is exact enough and raises no warning).
    """
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_grad_from_output(s: Array) -> Array:
    """Derivative of :func:`sigmoid` in terms of its output ``s``: ``s (1 - s)``."""
    return s * (1 - s)


def tanh_grad_from_output(t: Array) -> Array:
    """Derivative of ``tanh`` written in terms of its output ``t``: ``1 - t^2``."""
    return 1 - t * t


def relu(a: Array) -> Array:
    """``max(a, 0)``, a fresh array of the dtype of ``a`` (NaN stays NaN)."""
    return np.maximum(a, 0)


def relu_grad_from_output(r: Array) -> Array:
    """Derivative of ``relu`` in terms of its output: 1 where ``r > 0``, else 0.

    At exactly 0 the derivative is taken to be 0, as in PyTorch.
    """
    return (r > 0).astype(r.dtype)


def check_nonlinearity(nonlinearity: str) -> None:
    """Raise ``ValueError`` unless ``nonlinearity`` is ``"tanh"`` or ``"relu"``."""
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


def activation(a: Array, nonlinearity: str) -> Array:
    """The vanilla-RNN activation named by ``nonlinearity``: ``tanh`` or ``relu``."""
    check_nonlinearity(nonlinearity)
    return np.tanh(a) if nonlinearity == "tanh" else relu(a)


def activation_grad_from_output(out: Array, nonlinearity: str) -> Array:
    """Derivative of :func:`activation` in terms of its output."""
    check_nonlinearity(nonlinearity)
    if nonlinearity == "tanh":
        return tanh_grad_from_output(out)
    return relu_grad_from_output(out)


# ---------------------------------------------------------------------------- arguments
def weights_dtype(w_ih: Array, w_hh: Array) -> np.dtype[np.floating]:
    """The dtype the reference computes in: ``np.result_type`` of the two weights.

    It must be a floating dtype (float32 or float64 in practice), else ``TypeError``.
    """
    dtype = np.result_type(w_ih, w_hh)
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"weights must be floating point, got dtype {dtype}")
    return dtype


def check_dtypes(dtype: np.dtype[np.floating], **arrays: Array | None) -> None:
    """Raise ``TypeError`` unless every array given (None skipped) has ``dtype``.

    The reference never casts: mixing float32 and float64 would make NumPy promote
    silently, hiding exactly the rounding the float32 comparisons are meant to measure.
    """
    for name, a in arrays.items():
        if a is not None and a.dtype != dtype:
            raise TypeError(f"{name} has dtype {a.dtype}, expected {dtype}")


def hidden_size(
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None,
    b_hh: Array | None,
    gates: int,
    input_size: int,
) -> int:
    """Check the weight and bias shapes against ``G = gates`` and return ``H``.

    ``w_ih [G*H, I]``, ``w_hh [G*H, H]``, ``b_ih``/``b_hh [G*H]`` (or None).
    """
    if w_hh.ndim != 2:
        raise ValueError(f"w_hh must be 2-D [G*H, H], got shape {w_hh.shape}")
    h = w_hh.shape[1]
    gh = gates * h
    if w_hh.shape != (gh, h):
        raise ValueError(f"w_hh must have shape {(gh, h)}, got {w_hh.shape}")
    if w_ih.shape != (gh, input_size):
        raise ValueError(f"w_ih must have shape {(gh, input_size)}, got {w_ih.shape}")
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None and b.shape != (gh,):
            raise ValueError(f"{name} must have shape {(gh,)}, got {b.shape}")
    return h


def state_or_zeros(
    s: Array | None, batch: int, hidden: int, dtype: np.dtype[np.floating], name: str
) -> Array:
    """``s`` itself (checked to be ``[B, H]``), or zeros of that shape when None."""
    if s is None:
        return np.zeros((batch, hidden), dtype=dtype)
    if s.shape != (batch, hidden):
        raise ValueError(f"{name} must have shape {(batch, hidden)}, got {s.shape}")
    return s


def grad_or_zeros(
    g: Array | None, shape: tuple[int, ...], dtype: np.dtype[np.floating], name: str
) -> Array:
    """An incoming gradient ``g`` (checked to have ``shape``), or zeros when None."""
    if g is None:
        return np.zeros(shape, dtype=dtype)
    if g.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {g.shape}")
    return g


def linear(x: Array, w: Array, b: Array | None) -> Array:
    """``x @ w.T (+ b)``: ``x [B, K]``, ``w [N, K]``, ``b [N]`` or None; ``[B, N]``."""
    out = x @ w.T
    if b is not None:
        out = out + b
    return out


def bias_grads(
    d_ih: Array, d_hh: Array, b_ih: Array | None, b_hh: Array | None
) -> tuple[Array | None, Array | None]:
    """Column sums of the pre-activation gradients ``[B, G*H]`` for the biases present.

    Each result is a fresh array (``None`` where the bias was ``None``), even when
    ``d_ih`` and ``d_hh`` are the same array.
    """
    db_ih = None if b_ih is None else d_ih.sum(axis=0)
    db_hh = None if b_hh is None else d_hh.sum(axis=0)
    return db_ih, db_hh


def accumulate(total: Array | None, part: Array | None) -> Array | None:
    """``total += part`` in place where both exist; ``None`` stays ``None``."""
    if total is None or part is None:
        return total
    total += part
    return total


def check_ndim(a: Array, ndim: int, name: str, layout: str) -> None:
    """Raise ``ValueError`` unless ``a`` is ``ndim``-D (``layout`` names the axes)."""
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {a.shape}")


# ------------------------------------------------------------------------------- caches
@dataclass(frozen=True)
class SequenceCache(Generic[CellCache]):
    """What a sequence backward needs: the cell cache of every step, in time order.

    ``shape`` is ``(T, B, I, H)``; ``dtype`` the compute dtype; ``has_b_ih`` and
    ``has_b_hh`` say which biases the forward had (their gradients are None otherwise).
    """

    kind: str
    cells: list[CellCache]
    shape: tuple[int, int, int, int]
    dtype: np.dtype[np.floating]
    gates: int
    has_b_ih: bool
    has_b_hh: bool
    nonlinearity: str = "tanh"

    def zero_param_grads(self) -> tuple[Array, Array, Array | None, Array | None]:
        """Fresh zeros ``(dw_ih [G*H, I], dw_hh [G*H, H], db_ih, db_hh [G*H])``."""
        _, _, i, h = self.shape
        gh = self.gates * h
        dw_ih = np.zeros((gh, i), dtype=self.dtype)
        dw_hh = np.zeros((gh, h), dtype=self.dtype)
        db_ih = np.zeros(gh, dtype=self.dtype) if self.has_b_ih else None
        db_hh = np.zeros(gh, dtype=self.dtype) if self.has_b_hh else None
        return dw_ih, dw_hh, db_ih, db_hh
