"""Reference LSTM: one step and a whole sequence, forward and backward (BPTT).

PyTorch's formulation, gate order (i, f, g, o)::

    gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh          [B, 4H]
    i, f, o = sigmoid(.)    g = tanh(.)
    c1 = f * c + i * g
    h1 = o * tanh(c1)

Shapes: ``x [B, I]`` per step (``[T, B, I]`` for a sequence), ``h``/``c [B, H]``,
``w_ih [4H, I]``, ``w_hh [4H, H]``, ``b_ih``/``b_hh [4H]`` or None.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import (
    Array,
    SequenceCache,
    accumulate,
    bias_grads,
    check_dtypes,
    check_ndim,
    grad_or_zeros,
    hidden_size,
    linear,
    sigmoid,
    sigmoid_grad_from_output,
    state_or_zeros,
    tanh_grad_from_output,
    weights_dtype,
)

GATES = 4


@dataclass(frozen=True)
class LSTMCellCache:
    """Everything :func:`lstm_cell_backward` needs from one forward step.

    Inputs ``x [B, I]``, ``h``/``c [B, H]`` (zeros when the caller passed None), the
    parameters, the gate activations ``i, f, g, o [B, H]`` and ``tanh_c1 [B, H]``.
    """

    x: Array
    h: Array
    c: Array
    w_ih: Array
    w_hh: Array
    b_ih: Array | None
    b_hh: Array | None
    i: Array
    f: Array
    g: Array
    o: Array
    tanh_c1: Array


LSTMCache = SequenceCache[LSTMCellCache]


# ----------------------------------------------------------------------------- one step
def lstm_cell_forward(
    x: Array,
    h: Array | None,
    c: Array | None,
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None = None,
    b_hh: Array | None = None,
) -> tuple[Array, Array, LSTMCellCache]:
    """One LSTM step.

    ``x [B, I]``, ``h``/``c [B, H]`` or None (zeros), ``w_ih [4H, I]``,
    ``w_hh [4H, H]``, ``b_ih``/``b_hh [4H]`` or None. Returns ``(h1 [B, H],
    c1 [B, H], cache)``.
    """
    dtype = weights_dtype(w_ih, w_hh)
    check_dtypes(dtype, x=x, h=h, c=c, b_ih=b_ih, b_hh=b_hh)
    check_ndim(x, 2, "x", "[B, I]")
    batch, input_size = x.shape
    hid = hidden_size(w_ih, w_hh, b_ih, b_hh, GATES, input_size)
    h = state_or_zeros(h, batch, hid, dtype, "h")
    c = state_or_zeros(c, batch, hid, dtype, "c")

    gates = linear(x, w_ih, b_ih) + linear(h, w_hh, b_hh)  # [B, 4H]
    a_i, a_f, a_g, a_o = np.split(gates, GATES, axis=1)
    i = sigmoid(a_i)
    f = sigmoid(a_f)
    g = np.tanh(a_g)
    o = sigmoid(a_o)

    c1 = f * c + i * g
    tanh_c1 = np.tanh(c1)
    h1 = o * tanh_c1

    cache = LSTMCellCache(x, h, c, w_ih, w_hh, b_ih, b_hh, i, f, g, o, tanh_c1)
    return h1, c1, cache


def lstm_cell_backward(
    dh1: Array | None, dc1: Array | None, cache: LSTMCellCache
) -> tuple[Array, Array, Array, Array, Array, Array | None, Array | None]:
    """Backward of :func:`lstm_cell_forward`.

    ``dh1``/``dc1 [B, H]`` are the gradients of the loss with respect to ``h1`` and
    ``c1`` (None for zeros). Returns ``(dx [B, I], dh [B, H], dc [B, H],
    dw_ih [4H, I], dw_hh [4H, H], db_ih [4H] or None, db_hh [4H] or None)``.
    """
    x, h, c = cache.x, cache.h, cache.c
    i, f, g, o, tanh_c1 = cache.i, cache.f, cache.g, cache.o, cache.tanh_c1
    dtype = i.dtype
    dh1 = grad_or_zeros(dh1, h.shape, dtype, "dh1")
    dc1 = grad_or_zeros(dc1, c.shape, dtype, "dc1")
    check_dtypes(dtype, dh1=dh1, dc1=dc1)

    # h1 = o * tanh(c1): c1 gets its direct gradient plus the one through h1.
    do = dh1 * tanh_c1
    dc_total = dc1 + dh1 * o * tanh_grad_from_output(tanh_c1)

    # c1 = f * c + i * g
    df = dc_total * c
    dc = dc_total * f
    di = dc_total * g
    dg = dc_total * i

    # Through the gate nonlinearities to the pre-activations, gate order (i, f, g, o).
    dgates = np.concatenate(
        [
            di * sigmoid_grad_from_output(i),
            df * sigmoid_grad_from_output(f),
            dg * tanh_grad_from_output(g),
            do * sigmoid_grad_from_output(o),
        ],
        axis=1,
    )  # [B, 4H]

    # gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    dx = dgates @ cache.w_ih
    dh = dgates @ cache.w_hh
    dw_ih = dgates.T @ x
    dw_hh = dgates.T @ h
    db_ih, db_hh = bias_grads(dgates, dgates, cache.b_ih, cache.b_hh)
    return dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh


# ---------------------------------------------------------------------------- sequences
def lstm_forward(
    x: Array,
    h0: Array | None,
    c0: Array | None,
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None = None,
    b_hh: Array | None = None,
) -> tuple[Array, Array, Array, LSTMCache]:
    """LSTM over a whole sequence (one layer, one direction): T calls of the cell.

    ``x [T, B, I]``, ``h0``/``c0 [B, H]`` or None (zeros), ``w_ih [4H, I]``,
    ``w_hh [4H, H]``, ``b_ih``/``b_hh [4H]`` or None. Returns ``(y [T, B, H],
    h_n [B, H], c_n [B, H], cache)``. For ``T = 0``, ``y`` is ``(0, B, H)`` and
    ``h_n``/``c_n`` are copies of ``h0``/``c0``.
    """
    dtype = weights_dtype(w_ih, w_hh)
    check_dtypes(dtype, x=x, h0=h0, c0=c0, b_ih=b_ih, b_hh=b_hh)
    check_ndim(x, 3, "x", "[T, B, I]")
    steps, batch, input_size = x.shape
    hid = hidden_size(w_ih, w_hh, b_ih, b_hh, GATES, input_size)
    h = state_or_zeros(h0, batch, hid, dtype, "h0").copy()
    c = state_or_zeros(c0, batch, hid, dtype, "c0").copy()

    ys: list[Array] = []
    cells: list[LSTMCellCache] = []
    for t in range(steps):
        h, c, cell = lstm_cell_forward(x[t], h, c, w_ih, w_hh, b_ih, b_hh)
        ys.append(h)
        cells.append(cell)

    y = np.stack(ys) if ys else np.empty((0, batch, hid), dtype=dtype)
    cache = SequenceCache(
        "lstm",
        cells,
        (steps, batch, input_size, hid),
        dtype,
        GATES,
        b_ih is not None,
        b_hh is not None,
    )
    return y, h, c, cache


def lstm_backward(
    dy: Array | None, dh_n: Array | None, dc_n: Array | None, cache: LSTMCache
) -> tuple[Array, Array, Array, Array, Array, Array | None, Array | None]:
    """Backpropagation through time for :func:`lstm_forward`: the cell backward, T to 1.

    ``dy [T, B, H]``, ``dh_n``/``dc_n [B, H]``, each None for zeros. Returns
    ``(dx [T, B, I], dh0 [B, H], dc0 [B, H], dw_ih [4H, I], dw_hh [4H, H],
    db_ih [4H] or None, db_hh [4H] or None)``.
    """
    steps, batch, input_size, hid = cache.shape
    dtype = cache.dtype
    dy = grad_or_zeros(dy, (steps, batch, hid), dtype, "dy")
    dh = grad_or_zeros(dh_n, (batch, hid), dtype, "dh_n").copy()
    dc = grad_or_zeros(dc_n, (batch, hid), dtype, "dc_n").copy()
    check_dtypes(dtype, dy=dy, dh_n=dh, dc_n=dc)
    dw_ih, dw_hh, db_ih, db_hh = cache.zero_param_grads()

    dx = np.empty((steps, batch, input_size), dtype=dtype)
    for t in reversed(range(steps)):
        # h_t feeds both the output y[t] and the next step.
        dx[t], dh, dc, dw_ih_t, dw_hh_t, db_ih_t, db_hh_t = lstm_cell_backward(
            dy[t] + dh, dc, cache.cells[t]
        )
        dw_ih += dw_ih_t
        dw_hh += dw_hh_t
        db_ih = accumulate(db_ih, db_ih_t)
        db_hh = accumulate(db_hh, db_hh_t)
    return dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh
