"""Reference GRU: one step and a whole sequence, forward and backward (BPTT).

Gate order (r, z, n), PyTorch's weights, with ONNX's optional ``clip``::

    gi = x @ w_ih.T + b_ih                                 [B, 3H] = (gi_r, gi_z, gi_n)
    r  = sigmoid(clip(gi_r + h @ w_hr.T + b_hr))           w_hh = (w_hr, w_hz, w_hn)
    z  = sigmoid(clip(gi_z + h @ w_hz.T + b_hz))           b_hh = (b_hr, b_hz, b_hn)
    linear_before_reset=True  (PyTorch, cuDNN; the default):
        n = tanh(clip(gi_n + r * (h @ w_hn.T + b_hn)))
    linear_before_reset=False (ONNX's default, Keras reset_after=False):
        n = tanh(clip(gi_n + (r * h) @ w_hn.T + b_hn))
    h1 = (1 - z) * n + z * h

``clip(a)`` clamps to ``[-clip, clip]`` (the identity when ``clip`` is None); the
gradient passes where ``-clip < a < clip``.

Shapes: ``x [B, I]`` per step (``[T, B, I]`` for a sequence), ``h [B, H]``,
``w_ih [3H, I]``, ``w_hh [3H, H]``, ``b_ih``/``b_hh [3H]`` or None, ``lengths [B]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._results import CellGrads, GRUCellOutput, GRUOutput, SequenceGrads
from ._common import (
    Array,
    Lengths,
    Mask,
    SequenceCache,
    accumulate,
    active_rows,
    check_clip,
    check_dtypes,
    check_flag,
    check_lengths,
    check_ndim,
    check_training,
    clip_gradient,
    clip_preactivation,
    grad_or_zeros,
    linear,
    recurrent_sizes,
    sigmoid,
    sigmoid_grad_from_output,
    state_or_zeros,
    steps_in_order,
    tanh_grad_from_output,
    weights_dtype,
)

GATES = 3


@dataclass(frozen=True)
class GRUCellCache:
    """Everything :func:`gru_cell_backward` needs from one forward step.

    Inputs ``x [B, I]``, ``h [B, H]`` (zeros when the caller passed None), the
    parameters, the options, the gates ``r, z, n [B, H]``, ``gh_n [B, H]`` (the
    recurrent term of the candidate: ``h @ w_hn.T + b_hn`` when ``linear_before_reset``,
    else ``(r * h) @ w_hn.T + b_hn``) and where the clip let the gradient through for each
    gate (``passes_r``, ``passes_z``, ``passes_n``; None without ``clip``).
    """

    x: Array
    h: Array
    w_ih: Array
    w_hh: Array
    b_ih: Array | None
    b_hh: Array | None
    linear_before_reset: bool
    r: Array
    z: Array
    n: Array
    gh_n: Array
    passes_r: Mask | None
    passes_z: Mask | None
    passes_n: Mask | None
    training: bool = True


GRUCache = SequenceCache[GRUCellCache]


def _split_recurrent(
    w_hh: Array, b_hh: Array | None
) -> tuple[Array, Array | None, Array, Array | None]:
    """``(w_hh_rz [2H, H], b_hh_rz [2H], w_hn [H, H], b_hn [H])``: the rows of the r and
    z gates, and those of the candidate n (the biases None when ``b_hh`` is None)."""
    hid = w_hh.shape[1]
    b_rz = None if b_hh is None else b_hh[: 2 * hid]
    b_n = None if b_hh is None else b_hh[2 * hid :]
    return w_hh[: 2 * hid], b_rz, w_hh[2 * hid :], b_n


# ----------------------------------------------------------------------------- one step
def gru_cell_forward(
    x: Array,
    h: Array | None,
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None = None,
    b_hh: Array | None = None,
    *,
    training: bool = True,
    linear_before_reset: bool = True,
    clip: float | None = None,
) -> GRUCellOutput:
    """One GRU step.

    ``x [B, I]``, ``h [B, H]`` or None (zeros), ``w_ih [3H, I]``, ``w_hh [3H, H]``,
    ``b_ih``/``b_hh [3H]`` or None; ``linear_before_reset`` and ``clip`` as in the module
    docstring. Returns ``(h1 [B, H], cache)``.
    """
    training = check_flag(training, "training")
    linear_before_reset = check_flag(linear_before_reset, "linear_before_reset")
    clip = check_clip(clip)
    dtype = weights_dtype(w_ih)
    check_dtypes(dtype, x=x, h=h, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
    check_ndim(x, 2, "x", "[B, I]")
    batch, input_size = x.shape
    hid, _ = recurrent_sizes(w_ih, w_hh, b_ih, b_hh, GATES, input_size)
    h = state_or_zeros(h, batch, hid, dtype, "h")
    w_hh_rz, b_hh_rz, w_hn, b_hn = _split_recurrent(w_hh, b_hh)

    gi_r, gi_z, gi_n = np.split(linear(x, w_ih, b_ih), GATES, axis=1)
    gh_r, gh_z = np.split(linear(h, w_hh_rz, b_hh_rz), 2, axis=1)
    a_r, passes_r = clip_preactivation(gi_r + gh_r, clip)
    a_z, passes_z = clip_preactivation(gi_z + gh_z, clip)
    r = sigmoid(a_r)
    z = sigmoid(a_z)
    if linear_before_reset:
        gh_n = linear(h, w_hn, b_hn)  # the reset gate scales the recurrent term
        a_n: Array = gi_n + r * gh_n
    else:
        gh_n = linear(r * h, w_hn, b_hn)  # the reset gate scales the state
        a_n = gi_n + gh_n
    a_n, passes_n = clip_preactivation(a_n, clip)
    n = np.tanh(a_n)
    h1 = (1 - z) * n + z * h

    cache = GRUCellCache(
        x=x, h=h, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh,
        linear_before_reset=linear_before_reset, r=r, z=z, n=n, gh_n=gh_n,
        passes_r=passes_r, passes_z=passes_z, passes_n=passes_n, training=training,
    )  # fmt: skip
    return GRUCellOutput(h1, cache)


def gru_cell_backward(dh1: Array | None, cache: GRUCellCache) -> CellGrads:
    """Backward of :func:`gru_cell_forward`.

    ``dh1 [B, H]`` is the gradient of the loss with respect to ``h1`` (None for zeros).
    Returns ``(dx [B, I], dh [B, H], dw_ih [3H, I], dw_hh [3H, H], db_ih [3H] or None,
    db_hh [3H] or None)``.
    """
    check_training(cache.training, "gru_cell_forward")
    x, h = cache.x, cache.h
    r, z, n, gh_n = cache.r, cache.z, cache.n, cache.gh_n
    dh1 = grad_or_zeros(dh1, h.shape, r.dtype, "dh1", "(B, H)")
    w_hh_rz, _, w_hn, _ = _split_recurrent(cache.w_hh, cache.b_hh)

    # h1 = (1 - z) * n + z * h
    dn = dh1 * (1 - z)
    dz = dh1 * (h - n)
    dh = dh1 * z

    # n = tanh(clip(a_n)): da_n is the gradient of gi_n and of the recurrent term.
    da_n = clip_gradient(dn * tanh_grad_from_output(n), cache.passes_n)
    if cache.linear_before_reset:
        # a_n = gi_n + r * gh_n,  gh_n = h @ w_hn.T + b_hn
        dr = da_n * gh_n
        dgh_n: Array = da_n * r
        dh += dgh_n @ w_hn
        dw_hn = dgh_n.T @ h
    else:
        # a_n = gi_n + gh_n,  gh_n = (r * h) @ w_hn.T + b_hn
        dgh_n = da_n
        d_rh = dgh_n @ w_hn  # gradient of r * h
        dr = d_rh * h
        dh += d_rh * r
        dw_hn = dgh_n.T @ (r * h)

    # r, z = sigmoid(clip(gi + gh)): the same gradient reaches both halves.
    da_r = clip_gradient(dr * sigmoid_grad_from_output(r), cache.passes_r)
    da_z = clip_gradient(dz * sigmoid_grad_from_output(z), cache.passes_z)
    da_rz = np.concatenate([da_r, da_z], axis=1)  # [B, 2H]

    # gh_rz = h @ w_hh_rz.T + b_hh_rz
    dh += da_rz @ w_hh_rz
    dw_hh = np.concatenate([da_rz.T @ h, dw_hn], axis=0)  # [3H, H]

    # gi = x @ w_ih.T + b_ih
    dgi = np.concatenate([da_r, da_z, da_n], axis=1)  # [B, 3H]
    dx = dgi @ cache.w_ih
    dw_ih = dgi.T @ x

    db_ih = None if cache.b_ih is None else dgi.sum(axis=0)
    db_hh = None if cache.b_hh is None else np.concatenate([da_rz, dgh_n], axis=1).sum(axis=0)
    return CellGrads(dx, dh, dw_ih, dw_hh, db_ih, db_hh)


# ---------------------------------------------------------------------------- sequences
def gru_forward(
    x: Array,
    h0: Array | None,
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None = None,
    b_hh: Array | None = None,
    *,
    training: bool = True,
    lengths: Lengths | None = None,
    reverse: bool = False,
    linear_before_reset: bool = True,
    clip: float | None = None,
) -> GRUOutput:
    """GRU over a whole sequence (one layer, one direction): a loop of cells.

    ``x [T, B, I]``, ``h0 [B, H]`` or None (zeros), ``w_ih [3H, I]``, ``w_hh [3H, H]``,
    ``b_ih``/``b_hh [3H]`` or None. ``lengths [B]`` (None: all ``T``) makes sequence ``b``
    the steps ``x[0:lengths[b], b]``; ``reverse`` runs every sequence from its last step
    down to 0. Returns ``(y [T, B, H], h_n [B, H], cache)``: ``y[t, b]`` is the state made
    at time ``t`` (0 for ``t >= lengths[b]``), ``h_n[b]`` the state after the sequence's
    last processed step (``h0[b]`` when ``lengths[b] = 0``). For ``T = 0``, ``y`` is
    ``(0, B, H)`` and ``h_n`` is a copy of ``h0``.
    """
    training = check_flag(training, "training")
    reverse = check_flag(reverse, "reverse")
    linear_before_reset = check_flag(linear_before_reset, "linear_before_reset")
    clip = check_clip(clip)
    dtype = weights_dtype(w_ih)
    check_dtypes(dtype, x=x, h0=h0, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
    check_ndim(x, 3, "x", "[T, B, I]")
    steps, batch, input_size = x.shape
    hid, _ = recurrent_sizes(w_ih, w_hh, b_ih, b_hh, GATES, input_size)
    h = state_or_zeros(h0, batch, hid, dtype, "h0").copy()
    run_lengths = check_lengths(lengths, steps, batch)

    y = np.zeros((steps, batch, hid), dtype=dtype)
    cells: list[GRUCellCache | None] = [None] * steps
    rows_at: list[np.ndarray] = [np.empty(0, dtype=np.intp)] * steps
    for t in steps_in_order(steps, reverse):
        rows = active_rows(run_lengths, t)  # the sequences that have a step t
        h1, cells[t] = gru_cell_forward(
            x[t, rows],
            h[rows],
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            linear_before_reset=linear_before_reset,
            clip=clip,
        )
        h[rows] = h1  # the other rows keep their state through step t
        y[t, rows] = h1
        rows_at[t] = rows

    cache = SequenceCache(
        kind="gru",
        producer="gru_forward",
        cells=cells,
        rows=rows_at,
        shape=(steps, batch, input_size, hid),
        dtype=dtype,
        params={"w_ih": w_ih, "w_hh": w_hh, "b_ih": b_ih, "b_hh": b_hh},
        lengths=None if lengths is None else run_lengths.copy(),
        run_lengths=run_lengths,
        reverse=reverse,
        training=training,
    )
    return GRUOutput(y, h, cache)


def gru_backward(dy: Array | None, dh_n: Array | None, cache: GRUCache) -> SequenceGrads:
    """Backpropagation through time for :func:`gru_forward`: the cell backward in the
    opposite order of the forward.

    ``dy [T, B, H]``, ``dh_n [B, H]``, each None for zeros. ``dy`` at padded positions
    (``t >= lengths[b]``) is ignored and ``dh_n[b]`` enters at sequence ``b``'s last
    processed step. Returns ``(dx [T, B, I] (0 at padded positions), dh0 [B, H],
    dw_ih [3H, I], dw_hh [3H, H], db_ih [3H] or None, db_hh [3H] or None)``.
    """
    check_training(cache.training, cache.producer)
    steps, batch, input_size, hid = cache.shape
    dtype = cache.dtype
    dy = grad_or_zeros(dy, (steps, batch, hid), dtype, "dy", "(T, B, H)")
    dh = grad_or_zeros(dh_n, (batch, hid), dtype, "dh_n", "(B, H)").copy()
    grads = cache.zero_param_grads()
    dw_ih, dw_hh, db_ih, db_hh = grads["w_ih"], grads["w_hh"], grads["b_ih"], grads["b_hh"]
    assert dw_ih is not None and dw_hh is not None  # the weights are never None

    dx = np.zeros((steps, batch, input_size), dtype=dtype)
    for t in reversed(steps_in_order(steps, cache.reverse)):
        rows = cache.rows[t]
        # h_t feeds both the output y[t] and the next processed step.
        g = gru_cell_backward(dy[t, rows] + dh[rows], cache.cells[t])
        dx[t, rows] = g.dx
        dh[rows] = g.dh
        dw_ih += g.dw_ih
        dw_hh += g.dw_hh
        db_ih = accumulate(db_ih, g.db_ih)
        db_hh = accumulate(db_hh, g.db_hh)
    return SequenceGrads(dx, dh, dw_ih, dw_hh, db_ih, db_hh)
