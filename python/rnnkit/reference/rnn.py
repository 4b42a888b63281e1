"""Reference vanilla (Elman) RNN: one step and a whole sequence, forward and backward.

PyTorch's formulation::

    h1 = act(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh),    act = tanh or relu

Shapes: ``x [B, I]`` per step (``[T, B, I]`` for a sequence), ``h [B, H]``,
``w_ih [H, I]``, ``w_hh [H, H]``, ``b_ih``/``b_hh [H]`` or None. The derivative of relu
at exactly 0 is taken to be 0, as in PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import (
    Array,
    Nonlinearity,
    SequenceCache,
    accumulate,
    activation,
    activation_grad_from_output,
    bias_grads,
    check_dtypes,
    check_ndim,
    check_nonlinearity,
    grad_or_zeros,
    hidden_size,
    linear,
    state_or_zeros,
    weights_dtype,
)

GATES = 1


@dataclass(frozen=True)
class RNNCellCache:
    """Everything :func:`rnn_cell_backward` needs from one forward step.

    Inputs ``x [B, I]``, ``h [B, H]`` (zeros when the caller passed None), the
    parameters, the ``nonlinearity`` and the output ``h1 [B, H]`` (both activations'
    derivatives are functions of their output).
    """

    x: Array
    h: Array
    w_ih: Array
    w_hh: Array
    b_ih: Array | None
    b_hh: Array | None
    nonlinearity: str
    h1: Array


RNNCache = SequenceCache[RNNCellCache]


# ----------------------------------------------------------------------------- one step
def rnn_cell_forward(
    x: Array,
    h: Array | None,
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None = None,
    b_hh: Array | None = None,
    nonlinearity: Nonlinearity = "tanh",
) -> tuple[Array, RNNCellCache]:
    """One vanilla-RNN step.

    ``x [B, I]``, ``h [B, H]`` or None (zeros), ``w_ih [H, I]``, ``w_hh [H, H]``,
    ``b_ih``/``b_hh [H]`` or None, ``nonlinearity`` ``"tanh"`` or ``"relu"`` (anything
    else: ``ValueError``). Returns ``(h1 [B, H], cache)``.
    """
    check_nonlinearity(nonlinearity)
    dtype = weights_dtype(w_ih, w_hh)
    check_dtypes(dtype, x=x, h=h, b_ih=b_ih, b_hh=b_hh)
    check_ndim(x, 2, "x", "[B, I]")
    batch, input_size = x.shape
    hid = hidden_size(w_ih, w_hh, b_ih, b_hh, GATES, input_size)
    h = state_or_zeros(h, batch, hid, dtype, "h")

    a = linear(x, w_ih, b_ih) + linear(h, w_hh, b_hh)  # [B, H]
    h1 = activation(a, nonlinearity)

    cache = RNNCellCache(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity, h1)
    return h1, cache


def rnn_cell_backward(
    dh1: Array | None, cache: RNNCellCache
) -> tuple[Array, Array, Array, Array, Array | None, Array | None]:
    """Backward of :func:`rnn_cell_forward`.

    ``dh1 [B, H]`` is the gradient of the loss with respect to ``h1`` (None for zeros).
    Returns ``(dx [B, I], dh [B, H], dw_ih [H, I], dw_hh [H, H], db_ih [H] or None,
    db_hh [H] or None)``.
    """
    x, h, h1 = cache.x, cache.h, cache.h1
    dtype = h1.dtype
    dh1 = grad_or_zeros(dh1, h1.shape, dtype, "dh1")
    check_dtypes(dtype, dh1=dh1)

    da = dh1 * activation_grad_from_output(h1, cache.nonlinearity)  # [B, H]

    # a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    dx = da @ cache.w_ih
    dh = da @ cache.w_hh
    dw_ih = da.T @ x
    dw_hh = da.T @ h
    db_ih, db_hh = bias_grads(da, da, cache.b_ih, cache.b_hh)
    return dx, dh, dw_ih, dw_hh, db_ih, db_hh


# ---------------------------------------------------------------------------- sequences
def rnn_forward(
    x: Array,
    h0: Array | None,
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None = None,
    b_hh: Array | None = None,
    nonlinearity: Nonlinearity = "tanh",
) -> tuple[Array, Array, RNNCache]:
    """Vanilla RNN over a whole sequence (one layer, one direction): T cell calls.

    ``x [T, B, I]``, ``h0 [B, H]`` or None (zeros), ``w_ih [H, I]``, ``w_hh [H, H]``,
    ``b_ih``/``b_hh [H]`` or None, ``nonlinearity`` ``"tanh"`` or ``"relu"``. Returns
    ``(y [T, B, H], h_n [B, H], cache)``. For ``T = 0``, ``y`` is ``(0, B, H)`` and
    ``h_n`` is a copy of ``h0``.
    """
    check_nonlinearity(nonlinearity)
    dtype = weights_dtype(w_ih, w_hh)
    check_dtypes(dtype, x=x, h0=h0, b_ih=b_ih, b_hh=b_hh)
    check_ndim(x, 3, "x", "[T, B, I]")
    steps, batch, input_size = x.shape
    hid = hidden_size(w_ih, w_hh, b_ih, b_hh, GATES, input_size)
    h = state_or_zeros(h0, batch, hid, dtype, "h0").copy()

    ys: list[Array] = []
    cells: list[RNNCellCache] = []
    for t in range(steps):
        h, cell = rnn_cell_forward(x[t], h, w_ih, w_hh, b_ih, b_hh, nonlinearity)
        ys.append(h)
        cells.append(cell)

    y = np.stack(ys) if ys else np.empty((0, batch, hid), dtype=dtype)
    cache = SequenceCache(
        "rnn",
        cells,
        (steps, batch, input_size, hid),
        dtype,
        GATES,
        b_ih is not None,
        b_hh is not None,
        nonlinearity,
    )
    return y, h, cache


def rnn_backward(
    dy: Array | None, dh_n: Array | None, cache: RNNCache
) -> tuple[Array, Array, Array, Array, Array | None, Array | None]:
    """Backpropagation through time for :func:`rnn_forward`: the cell backward, T to 1.

    ``dy [T, B, H]``, ``dh_n [B, H]``, each None for zeros. Returns ``(dx [T, B, I],
    dh0 [B, H], dw_ih [H, I], dw_hh [H, H], db_ih [H] or None, db_hh [H] or None)``.
    """
    steps, batch, input_size, hid = cache.shape
    dtype = cache.dtype
    dy = grad_or_zeros(dy, (steps, batch, hid), dtype, "dy")
    dh = grad_or_zeros(dh_n, (batch, hid), dtype, "dh_n").copy()
    check_dtypes(dtype, dy=dy, dh_n=dh)
    dw_ih, dw_hh, db_ih, db_hh = cache.zero_param_grads()

    dx = np.empty((steps, batch, input_size), dtype=dtype)
    for t in reversed(range(steps)):
        # h_t feeds both the output y[t] and the next step.
        dx[t], dh, dw_ih_t, dw_hh_t, db_ih_t, db_hh_t = rnn_cell_backward(
            dy[t] + dh, cache.cells[t]
        )
        dw_ih += dw_ih_t
        dw_hh += dw_hh_t
        db_ih = accumulate(db_ih, db_ih_t)
        db_hh = accumulate(db_hh, db_hh_t)
    return dx, dh, dw_ih, dw_hh, db_ih, db_hh
