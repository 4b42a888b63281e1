"""Helpers shared by the reference cells: activations, clipping, argument checks, caches.

Every helper computes in the dtype of its arguments; nothing here casts. Shapes use
T (time steps), B (batch), I (input size), H (hidden size), P (LSTM projection size),
R (size of the recurrent state h: P with a projection, else H) and G (gates: LSTM 4,
GRU 3, RNN 1).

Argument errors follow the library's rule: a wrong kind or dtype is a ``TypeError``, a
wrong shape or value a ``ValueError``, and every message names the argument and gives
what was expected and what was got, e.g. ``h0 must have shape (B, H) = (8, 32), got
(8, 16)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]
Mask = NDArray[np.bool_]  #: a boolean array, e.g. where a clip lets the gradient through
Lengths = NDArray[np.integer] | Sequence[int]  #: an integer array [B] (or a list of ints)
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


# ----------------------------------------------------------------------------- clipping
def check_clip(clip: object) -> float | None:
    """Validate the ``clip`` argument: None, or a positive finite number (returned as float).

    ``bool`` and non-numbers are a ``TypeError``; zero, negative, NaN or infinite values a
    ``ValueError``.
    """
    if clip is None:
        return None
    if isinstance(clip, (bool, np.bool_)) or not isinstance(clip, (int, float, np.number)):
        raise TypeError(f"clip must be a positive finite number or None, got {type(clip).__name__}")
    value = float(clip)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"clip must be a positive finite number or None, got {value!r}")
    return value


def clip_preactivation(pre: Array, clip: float | None) -> tuple[Array, Mask | None]:
    """ONNX's ``clip``: ``pre`` clamped to ``[-clip, clip]``, and where gradient passes.

    Returns ``(clamped, passes)``: ``passes`` is the boolean mask ``-clip < pre < clip``
    (strict: at the boundary itself the clamp is flat), or None when ``clip`` is None
    (then ``clamped`` is ``pre`` itself). ``clip`` is rounded to the dtype of ``pre`` first,
    so float32 compares against the float32 bound, as a float32 kernel does.
    """
    if clip is None:
        return pre, None
    bound = pre.dtype.type(clip)
    passes = (pre > -bound) & (pre < bound)
    return np.clip(pre, -bound, bound), passes


def clip_gradient(d: Array, passes: Mask | None) -> Array:
    """The gradient ``d`` of a clamped value taken back to the value before the clamp.

    Zero where the clamp was active (``passes`` False), ``d`` elsewhere; ``d`` itself when
    there was no clipping (``passes`` None).
    """
    if passes is None:
        return d
    return np.where(passes, d, 0).astype(d.dtype, copy=False)


# ---------------------------------------------------------------------------- arguments
def type_name(a: object) -> str:
    return type(a).__name__


def weights_dtype(w_ih: Array) -> np.dtype[np.floating]:
    """The dtype the reference computes in: that of ``w_ih`` (the weights' dtype).

    It must be a floating dtype (float32 or float64 in practice), else ``TypeError``;
    every other array is then checked against it by :func:`check_dtypes`.
    """
    if not isinstance(w_ih, np.ndarray):
        raise TypeError(f"w_ih must be a numpy.ndarray, got {type_name(w_ih)}")
    if not np.issubdtype(w_ih.dtype, np.floating):
        raise TypeError(f"weights must be floating point, got dtype {w_ih.dtype}")
    return w_ih.dtype


def check_dtypes(dtype: np.dtype[np.floating], **arrays: Array | None) -> None:
    """Raise ``TypeError`` unless every array given (None skipped) has ``dtype``.

    The reference never casts: mixing float32 and float64 would make NumPy promote
    silently, hiding exactly the rounding the float32 comparisons are meant to measure.
    """
    for name, a in arrays.items():
        if a is None:
            continue
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a numpy.ndarray or None, got {type_name(a)}")
        if a.dtype != dtype:
            raise TypeError(f"{name} has dtype {a.dtype}, expected {dtype}")


def check_flag(value: object, name: str) -> bool:
    """Raise ``TypeError`` unless ``value`` is a ``bool`` (or ``numpy.bool_``)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type_name(value)}")
    return bool(value)


def check_ndim(a: Array, ndim: int, name: str, layout: str) -> None:
    """Raise ``ValueError`` unless ``a`` is ``ndim``-D (``layout`` names the axes)."""
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {a.shape}")


def check_shape(a: Array, expected: tuple[int, ...], name: str, layout: str) -> None:
    """``ValueError`` "``name`` must have shape ``layout`` = ``expected``, got ..."."""
    if a.shape != expected:
        raise ValueError(f"{name} must have shape {layout} = {expected}, got {a.shape}")


def recurrent_sizes(
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None,
    b_hh: Array | None,
    gates: int,
    input_size: int,
    w_hr: Array | None = None,
) -> tuple[int, int]:
    """Check the weight and bias shapes against ``G = gates``; return ``(H, R)``.

    ``w_ih [G*H, I]``, ``b_ih``/``b_hh [G*H]`` (or None) and ``w_hh [G*H, R]``, where
    ``R = H`` without a projection and ``R = P`` with one (``w_hr [P, H]``, LSTM only).
    ``H`` is read from ``w_hh`` (``w_hr`` when given), the rest must agree with it.
    """
    gh_doc = {1: "(H", 3: "(3H", 4: "(4H"}.get(gates, "(G*H")
    if w_hr is None:
        check_ndim(w_hh, 2, "w_hh", f"{gh_doc}, H)")
        hid = out = w_hh.shape[1]
        check_shape(w_hh, (gates * hid, hid), "w_hh", f"{gh_doc}, H)")
    else:
        check_ndim(w_hr, 2, "w_hr", "(P, H)")
        out, hid = w_hr.shape
        check_shape(w_hh, (gates * hid, out), "w_hh", f"{gh_doc}, P)")
    check_shape(w_ih, (gates * hid, input_size), "w_ih", f"{gh_doc}, I)")
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None:
            check_shape(b, (gates * hid,), name, f"{gh_doc},)")
    return hid, out


def check_lengths(lengths: Lengths | None, steps: int, batch: int) -> NDArray[np.int64]:
    """Validate ``lengths`` and return the lengths to run: an int64 array ``[B]`` (a copy).

    ``None`` means every sequence has all ``T`` steps. Otherwise any integer array (or a
    sequence of ints) of shape ``(B,)`` with ``0 <= lengths[b] <= T``; a bool or floating
    dtype is a ``TypeError``, a wrong shape or an out-of-range entry a ``ValueError``.
    """
    if lengths is None:
        return np.full(batch, steps, dtype=np.int64)
    arr = np.asarray(lengths)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"lengths must have an integer dtype, got {arr.dtype}")
    check_shape(arr, (batch,), "lengths", "(B,)")
    for b, n in enumerate(arr.tolist()):
        if not 0 <= n <= steps:
            raise ValueError(f"lengths[{b}] = {n} is out of range [0, T] = [0, {steps}]")
    return arr.astype(np.int64)


def steps_in_order(steps: int, reverse: bool) -> range:
    """The time steps in the order a direction processes them: ``0..T-1`` or ``T-1..0``."""
    return range(steps - 1, -1, -1) if reverse else range(steps)


def active_rows(lengths: NDArray[np.int64], t: int) -> NDArray[np.intp]:
    """The batch rows that have a time step ``t``: ``b`` with ``t < lengths[b]``.

    Sequence ``b`` is ``x[0:lengths[b], b]`` in either direction: forwards it runs
    ``t = 0 .. len_b - 1``, backwards ``t = len_b - 1 .. 0``. A row that has no step ``t``
    keeps its state unchanged through ``t`` (forwards: it has finished; backwards: it has
    not started yet), so looping over all ``T`` steps and updating only these rows gives
    every sequence its own ``len_b`` steps.
    """
    return np.flatnonzero(t < lengths)


def state_or_zeros(
    s: Array | None,
    batch: int,
    size: int,
    dtype: np.dtype[np.floating],
    name: str,
    layout: str = "(B, H)",
) -> Array:
    """``s`` itself (checked to be ``[B, size]``), or zeros of that shape when None."""
    if s is None:
        return np.zeros((batch, size), dtype=dtype)
    check_shape(s, (batch, size), name, layout)
    return s


def grad_or_zeros(
    g: Array | None,
    shape: tuple[int, ...],
    dtype: np.dtype[np.floating],
    name: str,
    layout: str,
) -> Array:
    """An incoming gradient ``g`` (checked to be an array of ``shape`` and ``dtype``), or
    zeros when None."""
    if g is None:
        return np.zeros(shape, dtype=dtype)
    check_dtypes(dtype, **{name: g})
    check_shape(g, shape, name, layout)
    return g


# ---------------------------------------------------------------------------- algebra
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


# ------------------------------------------------------------------------------- caches
def check_training(training: bool, producer: str) -> None:
    """Refuse (``ValueError``) a cache made with ``training=False``, as the kernels do."""
    if not training:
        raise ValueError(
            f"cache was made by {producer}(..., training=False), which keeps nothing for "
            "backward; call forward with training=True"
        )


@dataclass(frozen=True)
class SequenceCache(Generic[CellCache]):
    """What a sequence backward needs: the cell cache of every time step.

    ``cells[t]`` is the cache of the cell call at time ``t`` and ``rows[t]`` the batch
    rows it ran on (the sequences that have a step ``t``; all of them without
    ``lengths``). ``shape`` is ``(T, B, I, H)``; ``dtype`` the compute dtype; ``params``
    the parameters by name (None where absent), which give the shapes of their gradients;
    ``lengths`` the lengths as given (an int64 copy; None for all ``T``) and ``run_lengths``
    the lengths actually run (``T`` for every row when ``lengths`` is None); ``reverse``
    the direction. The reference keeps everything whatever ``training`` says (it is not
    about memory), but backward refuses a ``training=False`` cache like the kernels do.
    """

    kind: str
    producer: str
    cells: list[CellCache]
    rows: list[NDArray[np.intp]]
    shape: tuple[int, int, int, int]
    dtype: np.dtype[np.floating]
    params: dict[str, Array | None]
    lengths: NDArray[np.int64] | None
    run_lengths: NDArray[np.int64]
    reverse: bool
    training: bool
    nonlinearity: str = "tanh"

    def zero_param_grads(self) -> dict[str, Array | None]:
        """Fresh zeros shaped like every parameter (None where the parameter is None)."""
        return {k: None if p is None else np.zeros_like(p) for k, p in self.params.items()}
