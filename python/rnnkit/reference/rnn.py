"""Reference vanilla (Elman) RNN: one step and a whole sequence, forward and backward.

PyTorch's formulation, with ONNX's optional ``clip``::

    a  = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh             [B, H]
    h1 = act(clip(a)),    act = tanh or relu

``clip(a)`` clamps to ``[-clip, clip]`` (the identity when ``clip`` is None); the
gradient passes where ``-clip < a < clip``. The derivative of relu at exactly 0 is
taken to be 0, as in PyTorch.

Shapes: ``x [B, I]`` per step (``[T, B, I]`` for a sequence), ``h [B, H]``,
``w_ih [H, I]``, ``w_hh [H, H]``, ``b_ih``/``b_hh [H]`` or None, ``lengths [B]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._results import CellGrads, RNNCellOutput, RNNOutput, SequenceGrads
from ._common import (
    Array,
    Lengths,
    Mask,
    Nonlinearity,
    SequenceCache,
    accumulate,
    activation,
    activation_grad_from_output,
    active_rows,
    bias_grads,
    check_clip,
    check_dtypes,
    check_flag,
    check_lengths,
    check_ndim,
    check_nonlinearity,
    check_training,
    clip_gradient,
    clip_preactivation,
    grad_or_zeros,
    linear,
    recurrent_sizes,
    state_or_zeros,
    steps_in_order,
    weights_dtype,
)

GATES = 1


@dataclass(frozen=True)
class RNNCellCache:
    """Everything :func:`rnn_cell_backward` needs from one forward step.

    Inputs ``x [B, I]``, ``h [B, H]`` (zeros when the caller passed None), the
    parameters, the ``nonlinearity``, the output ``h1 [B, H]`` (both activations'
    derivatives are functions of their output) and ``passes [B, H]``, where the clip let
    the gradient through (None without ``clip``).
    """

    x: Array
    h: Array
    w_ih: Array
    w_hh: Array
    b_ih: Array | None
    b_hh: Array | None
    nonlinearity: str
    h1: Array
    passes: Mask | None
    training: bool = True


RNNCache = SequenceCache[RNNCellCache]


# ----------------------------------------------------------------------------- one step
def rnn_cell_forward(
    x: Array,
    h: Array | None,
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None = None,
    b_hh: Array | None = None,
    *,
    nonlinearity: Nonlinearity = "tanh",
    training: bool = True,
    clip: float | None = None,
) -> RNNCellOutput:
    """One vanilla-RNN step.

    ``x [B, I]``, ``h [B, H]`` or None (zeros), ``w_ih [H, I]``, ``w_hh [H, H]``,
    ``b_ih``/``b_hh [H]`` or None, ``nonlinearity`` ``"tanh"`` or ``"relu"`` (anything
    else: ``ValueError``), ``clip`` None or a positive number. Returns ``(h1 [B, H],
    cache)``.
    """
    check_nonlinearity(nonlinearity)
    training = check_flag(training, "training")
    clip = check_clip(clip)
    dtype = weights_dtype(w_ih)
    check_dtypes(dtype, x=x, h=h, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
    check_ndim(x, 2, "x", "[B, I]")
    batch, input_size = x.shape
    hid, _ = recurrent_sizes(w_ih, w_hh, b_ih, b_hh, GATES, input_size)
    h = state_or_zeros(h, batch, hid, dtype, "h")

    a: Array = linear(x, w_ih, b_ih) + linear(h, w_hh, b_hh)  # [B, H]
    a, passes = clip_preactivation(a, clip)
    h1 = activation(a, nonlinearity)

    cache = RNNCellCache(
        x=x, h=h, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh,
        nonlinearity=nonlinearity, h1=h1, passes=passes, training=training,
    )  # fmt: skip
    return RNNCellOutput(h1, cache)


def rnn_cell_backward(dh1: Array | None, cache: RNNCellCache) -> CellGrads:
    """Backward of :func:`rnn_cell_forward`.

    ``dh1 [B, H]`` is the gradient of the loss with respect to ``h1`` (None for zeros).
    Returns ``(dx [B, I], dh [B, H], dw_ih [H, I], dw_hh [H, H], db_ih [H] or None,
    db_hh [H] or None)``.
    """
    check_training(cache.training, "rnn_cell_forward")
    x, h, h1 = cache.x, cache.h, cache.h1
    dh1 = grad_or_zeros(dh1, h1.shape, h1.dtype, "dh1", "(B, H)")

    da: Array = dh1 * activation_grad_from_output(h1, cache.nonlinearity)  # [B, H]
    da = clip_gradient(da, cache.passes)

    # a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    dx = da @ cache.w_ih
    dh = da @ cache.w_hh
    dw_ih = da.T @ x
    dw_hh = da.T @ h
    db_ih, db_hh = bias_grads(da, da, cache.b_ih, cache.b_hh)
    return CellGrads(dx, dh, dw_ih, dw_hh, db_ih, db_hh)


# ---------------------------------------------------------------------------- sequences
def rnn_forward(
    x: Array,
    h0: Array | None,
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None = None,
    b_hh: Array | None = None,
    *,
    nonlinearity: Nonlinearity = "tanh",
    training: bool = True,
    lengths: Lengths | None = None,
    reverse: bool = False,
    clip: float | None = None,
) -> RNNOutput:
    """Vanilla RNN over a whole sequence (one layer, one direction): a loop of cells.

    ``x [T, B, I]``, ``h0 [B, H]`` or None (zeros), ``w_ih [H, I]``, ``w_hh [H, H]``,
    ``b_ih``/``b_hh [H]`` or None, ``nonlinearity`` ``"tanh"`` or ``"relu"``.
    ``lengths [B]`` (None: all ``T``) makes sequence ``b`` the steps ``x[0:lengths[b], b]``;
    ``reverse`` runs every sequence from its last step down to 0. Returns
    ``(y [T, B, H], h_n [B, H], cache)``: ``y[t, b]`` is the state made at time ``t``
    (0 for ``t >= lengths[b]``), ``h_n[b]`` the state after the sequence's last processed
    step (``h0[b]`` when ``lengths[b] = 0``). For ``T = 0``, ``y`` is ``(0, B, H)`` and
    ``h_n`` is a copy of ``h0``.
    """
    check_nonlinearity(nonlinearity)
    training = check_flag(training, "training")
    reverse = check_flag(reverse, "reverse")
    clip = check_clip(clip)
    dtype = weights_dtype(w_ih)
    check_dtypes(dtype, x=x, h0=h0, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
    check_ndim(x, 3, "x", "[T, B, I]")
    steps, batch, input_size = x.shape
    hid, _ = recurrent_sizes(w_ih, w_hh, b_ih, b_hh, GATES, input_size)
    h = state_or_zeros(h0, batch, hid, dtype, "h0").copy()
    run_lengths = check_lengths(lengths, steps, batch)

    y = np.zeros((steps, batch, hid), dtype=dtype)
    cells: list[RNNCellCache | None] = [None] * steps
    rows_at: list[np.ndarray] = [np.empty(0, dtype=np.intp)] * steps
    for t in steps_in_order(steps, reverse):
        rows = active_rows(run_lengths, t)  # the sequences that have a step t
        h1, cells[t] = rnn_cell_forward(
            x[t, rows],
            h[rows],
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            nonlinearity=nonlinearity,
            clip=clip,
        )
        h[rows] = h1  # the other rows keep their state through step t
        y[t, rows] = h1
        rows_at[t] = rows

    cache = SequenceCache(
        kind="rnn",
        producer="rnn_forward",
        cells=cells,
        rows=rows_at,
        shape=(steps, batch, input_size, hid),
        dtype=dtype,
        params={"w_ih": w_ih, "w_hh": w_hh, "b_ih": b_ih, "b_hh": b_hh},
        lengths=None if lengths is None else run_lengths.copy(),
        run_lengths=run_lengths,
        reverse=reverse,
        training=training,
        nonlinearity=nonlinearity,
    )
    return RNNOutput(y, h, cache)


def rnn_backward(dy: Array | None, dh_n: Array | None, cache: RNNCache) -> SequenceGrads:
    """Backpropagation through time for :func:`rnn_forward`: the cell backward in the
    opposite order of the forward.

    ``dy [T, B, H]``, ``dh_n [B, H]``, each None for zeros. ``dy`` at padded positions
    (``t >= lengths[b]``) is ignored and ``dh_n[b]`` enters at sequence ``b``'s last
    processed step. Returns ``(dx [T, B, I] (0 at padded positions), dh0 [B, H],
    dw_ih [H, I], dw_hh [H, H], db_ih [H] or None, db_hh [H] or None)``.
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
        g = rnn_cell_backward(dy[t, rows] + dh[rows], cache.cells[t])
        dx[t, rows] = g.dx
        dh[rows] = g.dh
        dw_ih += g.dw_ih
        dw_hh += g.dw_hh
        db_ih = accumulate(db_ih, g.db_ih)
        db_hh = accumulate(db_hh, g.db_hh)
    return SequenceGrads(dx, dh, dw_ih, dw_hh, db_ih, db_hh)
