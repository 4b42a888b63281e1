"""Reference GRU: one step and a whole sequence, forward and backward (BPTT).

PyTorch's formulation, gate order (r, z, n), the reset gate applied *after* the
recurrent matmul::

    gi = x @ w_ih.T + b_ih                                  [B, 3H]
    gh = h @ w_hh.T + b_hh                                  [B, 3H]
    r = sigmoid(gi_r + gh_r)
    z = sigmoid(gi_z + gh_z)
    n = tanh(gi_n + r * gh_n)
    h1 = (1 - z) * n + z * h

Shapes: ``x [B, I]`` per step (``[T, B, I]`` for a sequence), ``h [B, H]``,
``w_ih [3H, I]``, ``w_hh [3H, H]``, ``b_ih``/``b_hh [3H]`` or None.
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

GATES = 3


@dataclass(frozen=True)
class GRUCellCache:
    """Everything :func:`gru_cell_backward` needs from one forward step.

    Inputs ``x [B, I]``, ``h [B, H]`` (zeros when the caller passed None), the
    parameters, the gates ``r, z, n [B, H]`` and ``gh_n [B, H]``, the recurrent part of
    the candidate's pre-activation (``W_hn h + b_hn``) that the reset gate multiplies.
    """

    x: Array
    h: Array
    w_ih: Array
    w_hh: Array
    b_ih: Array | None
    b_hh: Array | None
    r: Array
    z: Array
    n: Array
    gh_n: Array


GRUCache = SequenceCache[GRUCellCache]


# ----------------------------------------------------------------------------- one step
def gru_cell_forward(
    x: Array,
    h: Array | None,
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None = None,
    b_hh: Array | None = None,
) -> tuple[Array, GRUCellCache]:
    """One GRU step.

    ``x [B, I]``, ``h [B, H]`` or None (zeros), ``w_ih [3H, I]``, ``w_hh [3H, H]``,
    ``b_ih``/``b_hh [3H]`` or None. Returns ``(h1 [B, H], cache)``.
    """
    dtype = weights_dtype(w_ih, w_hh)
    check_dtypes(dtype, x=x, h=h, b_ih=b_ih, b_hh=b_hh)
    check_ndim(x, 2, "x", "[B, I]")
    batch, input_size = x.shape
    hid = hidden_size(w_ih, w_hh, b_ih, b_hh, GATES, input_size)
    h = state_or_zeros(h, batch, hid, dtype, "h")

    gi_r, gi_z, gi_n = np.split(linear(x, w_ih, b_ih), GATES, axis=1)
    gh_r, gh_z, gh_n = np.split(linear(h, w_hh, b_hh), GATES, axis=1)
    r = sigmoid(gi_r + gh_r)
    z = sigmoid(gi_z + gh_z)
    n = np.tanh(gi_n + r * gh_n)
    h1 = (1 - z) * n + z * h

    cache = GRUCellCache(x, h, w_ih, w_hh, b_ih, b_hh, r, z, n, gh_n)
    return h1, cache


def gru_cell_backward(
    dh1: Array | None, cache: GRUCellCache
) -> tuple[Array, Array, Array, Array, Array | None, Array | None]:
    """Backward of :func:`gru_cell_forward`.

    ``dh1 [B, H]`` is the gradient of the loss with respect to ``h1`` (None for zeros).
    Returns ``(dx [B, I], dh [B, H], dw_ih [3H, I], dw_hh [3H, H], db_ih [3H] or None,
    db_hh [3H] or None)``.
    """
    x, h = cache.x, cache.h
    r, z, n, gh_n = cache.r, cache.z, cache.n, cache.gh_n
    dtype = r.dtype
    dh1 = grad_or_zeros(dh1, h.shape, dtype, "dh1")
    check_dtypes(dtype, dh1=dh1)

    # h1 = (1 - z) * n + z * h
    dn = dh1 * (1 - z)
    dz = dh1 * (h - n)
    dh_direct = dh1 * z

    # n = tanh(gi_n + r * gh_n)
    da_n = dn * tanh_grad_from_output(n)  # gradient of gi_n, and of r * gh_n
    dr = da_n * gh_n
    dgh_n = da_n * r

    # r, z = sigmoid(gi + gh): the same pre-activation gradient reaches both halves.
    da_r = dr * sigmoid_grad_from_output(r)
    da_z = dz * sigmoid_grad_from_output(z)

    dgi = np.concatenate([da_r, da_z, da_n], axis=1)  # [B, 3H]
    dgh = np.concatenate([da_r, da_z, dgh_n], axis=1)  # [B, 3H]

    # gi = x @ w_ih.T + b_ih, gh = h @ w_hh.T + b_hh
    dx = dgi @ cache.w_ih
    dh = dh_direct + dgh @ cache.w_hh
    dw_ih = dgi.T @ x
    dw_hh = dgh.T @ h
    db_ih, db_hh = bias_grads(dgi, dgh, cache.b_ih, cache.b_hh)
    return dx, dh, dw_ih, dw_hh, db_ih, db_hh


# ---------------------------------------------------------------------------- sequences
def gru_forward(
    x: Array,
    h0: Array | None,
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None = None,
    b_hh: Array | None = None,
) -> tuple[Array, Array, GRUCache]:
    """GRU over a whole sequence (one layer, one direction): T calls of the cell.

    ``x [T, B, I]``, ``h0 [B, H]`` or None (zeros), ``w_ih [3H, I]``, ``w_hh [3H, H]``,
    ``b_ih``/``b_hh [3H]`` or None. Returns ``(y [T, B, H], h_n [B, H], cache)``. For
    ``T = 0``, ``y`` is ``(0, B, H)`` and ``h_n`` is a copy of ``h0``.
    """
    dtype = weights_dtype(w_ih, w_hh)
    check_dtypes(dtype, x=x, h0=h0, b_ih=b_ih, b_hh=b_hh)
    check_ndim(x, 3, "x", "[T, B, I]")
    steps, batch, input_size = x.shape
    hid = hidden_size(w_ih, w_hh, b_ih, b_hh, GATES, input_size)
    h = state_or_zeros(h0, batch, hid, dtype, "h0").copy()

    ys: list[Array] = []
    cells: list[GRUCellCache] = []
    for t in range(steps):
        h, cell = gru_cell_forward(x[t], h, w_ih, w_hh, b_ih, b_hh)
        ys.append(h)
        cells.append(cell)

    y = np.stack(ys) if ys else np.empty((0, batch, hid), dtype=dtype)
    cache = SequenceCache(
        "gru",
        cells,
        (steps, batch, input_size, hid),
        dtype,
        GATES,
        b_ih is not None,
        b_hh is not None,
    )
    return y, h, cache


def gru_backward(
    dy: Array | None, dh_n: Array | None, cache: GRUCache
) -> tuple[Array, Array, Array, Array, Array | None, Array | None]:
    """Backpropagation through time for :func:`gru_forward`: the cell backward, T to 1.

    ``dy [T, B, H]``, ``dh_n [B, H]``, each None for zeros. Returns ``(dx [T, B, I],
    dh0 [B, H], dw_ih [3H, I], dw_hh [3H, H], db_ih [3H] or None, db_hh [3H] or None)``.
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
        dx[t], dh, dw_ih_t, dw_hh_t, db_ih_t, db_hh_t = gru_cell_backward(
            dy[t] + dh, cache.cells[t]
        )
        dw_ih += dw_ih_t
        dw_hh += dw_hh_t
        db_ih = accumulate(db_ih, db_ih_t)
        db_hh = accumulate(db_hh, db_hh_t)
    return dx, dh, dw_ih, dw_hh, db_ih, db_hh
