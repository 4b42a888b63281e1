"""Reference LSTM: one step and a whole sequence, forward and backward (BPTT).

PyTorch's weights and gate order (i, f, g, o), with the ONNX variants: peepholes,
coupled input-forget gate (CIFG) and ``clip``, and PyTorch's projection (``proj_size``)::

    a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh           [B, 4H] = (a_i, a_f, a_g, a_o)
    i = sigmoid(clip(a_i + p_i * c))                    peepholes [3, H] = (p_i, p_f, p_o)
    f = sigmoid(clip(a_f + p_f * c))    or  f = 1 - i  with input_forget (CIFG)
    g = tanh(clip(a_g))
    c1 = f * c + i * g
    o = sigmoid(clip(a_o + p_o * c1))                   (o peeks at the *new* cell state)
    m = o * tanh(c1)                                    [B, H]
    h1 = m @ w_hr.T   with a projection w_hr [P, H],  else  h1 = m

Without peepholes the ``p * c`` terms are absent; ``clip(a)`` clamps to ``[-clip, clip]``
(the identity when ``clip`` is None) and the gradient passes where ``-clip < a < clip``;
the cell state is never clipped. With ``input_forget`` the f rows of ``w_ih``, ``w_hh``,
``b_ih``, ``b_hh`` and ``p_f`` are unused and their gradients are zero.

Shapes: ``x [B, I]`` per step (``[T, B, I]`` for a sequence), ``h [B, R]``, ``c [B, H]``
where ``R = P`` with a projection and ``H`` without, ``w_ih [4H, I]``, ``w_hh [4H, R]``,
``b_ih``/``b_hh [4H]`` or None, ``w_hr [P, H]`` or None, ``peepholes [3, H]`` or None,
``lengths [B]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._results import LSTMCellGrads, LSTMCellOutput, LSTMGrads, LSTMOutput
from ._common import (
    Array,
    Lengths,
    Mask,
    SequenceCache,
    accumulate,
    active_rows,
    bias_grads,
    check_clip,
    check_dtypes,
    check_flag,
    check_lengths,
    check_ndim,
    check_shape,
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

GATES = 4


@dataclass(frozen=True)
class LSTMCellCache:
    """Everything :func:`lstm_cell_backward` needs from one forward step.

    Inputs ``x [B, I]``, ``h [B, R]``, ``c [B, H]`` (zeros when the caller passed None),
    the parameters and options, the gate activations ``i, f, g, o [B, H]``, the new cell
    state ``c1 [B, H]`` and ``tanh_c1 [B, H]``, and where the clip let the gradient
    through for each gate (``passes_i`` ... ``passes_o``; None without ``clip``, and
    ``passes_f`` None with ``input_forget``).
    """

    x: Array
    h: Array
    c: Array
    w_ih: Array
    w_hh: Array
    b_ih: Array | None
    b_hh: Array | None
    w_hr: Array | None
    peepholes: Array | None
    input_forget: bool
    i: Array
    f: Array
    g: Array
    o: Array
    c1: Array
    tanh_c1: Array
    passes_i: Mask | None
    passes_f: Mask | None
    passes_g: Mask | None
    passes_o: Mask | None
    training: bool = True


LSTMCache = SequenceCache[LSTMCellCache]


def _check_variants(
    dtype: np.dtype[np.floating],
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None,
    b_hh: Array | None,
    w_hr: Array | None,
    peepholes: Array | None,
    input_size: int,
) -> tuple[int, int]:
    """Check every parameter's dtype and shape; return ``(H, R)``."""
    check_dtypes(dtype, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh, w_hr=w_hr, peepholes=peepholes)
    hid, out = recurrent_sizes(w_ih, w_hh, b_ih, b_hh, GATES, input_size, w_hr)
    if peepholes is not None:
        check_shape(peepholes, (3, hid), "peepholes", "(3, H)")
    return hid, out


# ----------------------------------------------------------------------------- one step
def lstm_cell_forward(
    x: Array,
    h: Array | None,
    c: Array | None,
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None = None,
    b_hh: Array | None = None,
    *,
    training: bool = True,
    w_hr: Array | None = None,
    peepholes: Array | None = None,
    input_forget: bool = False,
    clip: float | None = None,
) -> LSTMCellOutput:
    """One LSTM step.

    ``x [B, I]``, ``h [B, R]`` or None (zeros), ``c [B, H]`` or None (zeros),
    ``w_ih [4H, I]``, ``w_hh [4H, R]``, ``b_ih``/``b_hh [4H]`` or None, ``w_hr [P, H]``
    or None, ``peepholes [3, H]`` or None, ``input_forget``, ``clip`` as in the module
    docstring. Returns ``(h1 [B, R], c1 [B, H], cache)``.
    """
    training = check_flag(training, "training")
    input_forget = check_flag(input_forget, "input_forget")
    clip = check_clip(clip)
    dtype = weights_dtype(w_ih)
    check_dtypes(dtype, x=x, h=h, c=c)
    check_ndim(x, 2, "x", "[B, I]")
    batch, input_size = x.shape
    hid, out = _check_variants(dtype, w_ih, w_hh, b_ih, b_hh, w_hr, peepholes, input_size)
    h = state_or_zeros(h, batch, out, dtype, "h", "(B, P)" if w_hr is not None else "(B, H)")
    c = state_or_zeros(c, batch, hid, dtype, "c")

    a: Array = linear(x, w_ih, b_ih) + linear(h, w_hh, b_hh)  # [B, 4H]
    a_i, a_f, a_g, a_o = np.split(a, GATES, axis=1)
    if peepholes is not None:
        p_i, p_f, p_o = peepholes
        a_i = a_i + p_i * c
        a_f = a_f + p_f * c

    a_i, passes_i = clip_preactivation(a_i, clip)
    i = sigmoid(a_i)
    if input_forget:
        f = 1 - i  # CIFG: the forget gate is the complement of the input gate
        passes_f = None
    else:
        a_f, passes_f = clip_preactivation(a_f, clip)
        f = sigmoid(a_f)
    a_g, passes_g = clip_preactivation(a_g, clip)
    g = np.tanh(a_g)

    c1 = f * c + i * g

    if peepholes is not None:
        a_o = a_o + p_o * c1
    a_o, passes_o = clip_preactivation(a_o, clip)
    o = sigmoid(a_o)

    tanh_c1 = np.tanh(c1)
    m = o * tanh_c1
    h1 = m if w_hr is None else m @ w_hr.T

    cache = LSTMCellCache(
        x=x, h=h, c=c, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh,
        w_hr=w_hr, peepholes=peepholes, input_forget=input_forget,
        i=i, f=f, g=g, o=o, c1=c1, tanh_c1=tanh_c1,
        passes_i=passes_i, passes_f=passes_f, passes_g=passes_g, passes_o=passes_o,
        training=training,
    )  # fmt: skip
    return LSTMCellOutput(h1, c1, cache)


def lstm_cell_backward(dh1: Array | None, dc1: Array | None, cache: LSTMCellCache) -> LSTMCellGrads:
    """Backward of :func:`lstm_cell_forward`.

    ``dh1 [B, R]``/``dc1 [B, H]`` are the gradients of the loss with respect to ``h1``
    and ``c1`` (None for zeros). Returns ``(dx [B, I], dh [B, R], dc [B, H],
    dw_ih [4H, I], dw_hh [4H, R], db_ih [4H] or None, db_hh [4H] or None,
    dw_hr [P, H] or None, dpeepholes [3, H] or None)``.
    """
    check_training(cache.training, "lstm_cell_forward")
    x, h, c, c1 = cache.x, cache.h, cache.c, cache.c1
    i, f, g, o, tanh_c1 = cache.i, cache.f, cache.g, cache.o, cache.tanh_c1
    w_hr, peepholes = cache.w_hr, cache.peepholes
    dtype = i.dtype
    h_layout = "(B, H)" if w_hr is None else "(B, P)"
    dh1 = grad_or_zeros(dh1, h.shape, dtype, "dh1", h_layout)
    dc1 = grad_or_zeros(dc1, c.shape, dtype, "dc1", "(B, H)")

    # h1 = m @ w_hr.T (or h1 = m), m = o * tanh(c1)
    m = o * tanh_c1
    if w_hr is None:
        dm = dh1
        dw_hr = None
    else:
        dm = dh1 @ w_hr
        dw_hr = dh1.T @ m

    # o = sigmoid(clip(a_o + p_o * c1)); c1 gets its direct gradient, the one through
    # tanh(c1) and, with peepholes, the one through o.
    da_o = clip_gradient(dm * tanh_c1 * sigmoid_grad_from_output(o), cache.passes_o)
    dc1_total = dc1 + dm * o * tanh_grad_from_output(tanh_c1)
    if peepholes is not None:
        dc1_total = dc1_total + da_o * peepholes[2]

    # c1 = f * c + i * g
    di = dc1_total * g
    dg = dc1_total * i
    df = dc1_total * c
    dc = dc1_total * f

    if cache.input_forget:
        di = di - df  # f = 1 - i
        da_f: Array = np.zeros_like(df)  # the f rows are unused
    else:
        da_f = clip_gradient(df * sigmoid_grad_from_output(f), cache.passes_f)
    da_i = clip_gradient(di * sigmoid_grad_from_output(i), cache.passes_i)
    da_g = clip_gradient(dg * tanh_grad_from_output(g), cache.passes_g)

    # i, f peek at the previous cell state: a_i + p_i * c, a_f + p_f * c.
    if peepholes is None:
        dpeepholes = None
    else:
        dc = dc + da_i * peepholes[0] + da_f * peepholes[1]
        dpeepholes = np.stack(
            [(da_i * c).sum(axis=0), (da_f * c).sum(axis=0), (da_o * c1).sum(axis=0)]
        )  # [3, H]

    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)  # [B, 4H], gate order (i, f, g, o)

    # a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    dx = da @ cache.w_ih
    dh = da @ cache.w_hh
    dw_ih = da.T @ x
    dw_hh = da.T @ h
    db_ih, db_hh = bias_grads(da, da, cache.b_ih, cache.b_hh)
    return LSTMCellGrads(dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh, dw_hr, dpeepholes)


# ---------------------------------------------------------------------------- sequences
def lstm_forward(
    x: Array,
    h0: Array | None,
    c0: Array | None,
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None = None,
    b_hh: Array | None = None,
    *,
    training: bool = True,
    lengths: Lengths | None = None,
    reverse: bool = False,
    w_hr: Array | None = None,
    peepholes: Array | None = None,
    input_forget: bool = False,
    clip: float | None = None,
) -> LSTMOutput:
    """LSTM over a whole sequence (one layer, one direction): a loop of cells.

    ``x [T, B, I]``, ``h0 [B, R]`` or None (zeros), ``c0 [B, H]`` or None (zeros),
    ``w_ih [4H, I]``, ``w_hh [4H, R]``, ``b_ih``/``b_hh [4H]`` or None; ``w_hr``,
    ``peepholes``, ``input_forget`` and ``clip`` as in the module docstring.
    ``lengths [B]`` (None: all ``T``) makes sequence ``b`` the steps ``x[0:lengths[b], b]``;
    ``reverse`` runs every sequence from its last step down to 0. Returns
    ``(y [T, B, R], h_n [B, R], c_n [B, H], cache)``: ``y[t, b]`` is the output made at
    time ``t`` (0 for ``t >= lengths[b]``), ``h_n[b]``/``c_n[b]`` the state after the
    sequence's last processed step (``h0[b]``/``c0[b]`` when ``lengths[b] = 0``). For
    ``T = 0``, ``y`` is ``(0, B, R)`` and ``h_n``/``c_n`` are copies of ``h0``/``c0``.
    """
    training = check_flag(training, "training")
    reverse = check_flag(reverse, "reverse")
    input_forget = check_flag(input_forget, "input_forget")
    clip = check_clip(clip)
    dtype = weights_dtype(w_ih)
    check_dtypes(dtype, x=x, h0=h0, c0=c0)
    check_ndim(x, 3, "x", "[T, B, I]")
    steps, batch, input_size = x.shape
    hid, out = _check_variants(dtype, w_ih, w_hh, b_ih, b_hh, w_hr, peepholes, input_size)
    h_layout = "(B, H)" if w_hr is None else "(B, P)"
    h = state_or_zeros(h0, batch, out, dtype, "h0", h_layout).copy()
    c = state_or_zeros(c0, batch, hid, dtype, "c0").copy()
    run_lengths = check_lengths(lengths, steps, batch)

    y = np.zeros((steps, batch, out), dtype=dtype)
    cells: list[LSTMCellCache | None] = [None] * steps
    rows_at: list[np.ndarray] = [np.empty(0, dtype=np.intp)] * steps
    for t in steps_in_order(steps, reverse):
        rows = active_rows(run_lengths, t)  # the sequences that have a step t
        h1, c1, cells[t] = lstm_cell_forward(
            x[t, rows],
            h[rows],
            c[rows],
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            w_hr=w_hr,
            peepholes=peepholes,
            input_forget=input_forget,
            clip=clip,
        )
        h[rows] = h1  # the other rows keep their state through step t
        c[rows] = c1
        y[t, rows] = h1
        rows_at[t] = rows

    cache = SequenceCache(
        kind="lstm",
        producer="lstm_forward",
        cells=cells,
        rows=rows_at,
        shape=(steps, batch, input_size, hid),
        dtype=dtype,
        params={
            "w_ih": w_ih,
            "w_hh": w_hh,
            "b_ih": b_ih,
            "b_hh": b_hh,
            "w_hr": w_hr,
            "peepholes": peepholes,
        },
        lengths=None if lengths is None else run_lengths.copy(),
        run_lengths=run_lengths,
        reverse=reverse,
        training=training,
    )
    return LSTMOutput(y, h, c, cache)


def lstm_backward(
    dy: Array | None, dh_n: Array | None, dc_n: Array | None, cache: LSTMCache
) -> LSTMGrads:
    """Backpropagation through time for :func:`lstm_forward`: the cell backward in the
    opposite order of the forward.

    ``dy [T, B, R]``, ``dh_n [B, R]``, ``dc_n [B, H]``, each None for zeros. ``dy`` at
    padded positions (``t >= lengths[b]``) is ignored and ``dh_n[b]``/``dc_n[b]`` enter at
    sequence ``b``'s last processed step. Returns ``(dx [T, B, I] (0 at padded
    positions), dh0 [B, R], dc0 [B, H], dw_ih [4H, I], dw_hh [4H, R], db_ih [4H] or None,
    db_hh [4H] or None, dw_hr [P, H] or None, dpeepholes [3, H] or None)``.
    """
    check_training(cache.training, cache.producer)
    steps, batch, input_size, hid = cache.shape
    dtype = cache.dtype
    grads = cache.zero_param_grads()
    dw_ih, dw_hh = grads["w_ih"], grads["w_hh"]
    assert dw_ih is not None and dw_hh is not None  # the weights are never None
    out = dw_hh.shape[1]  # R
    r_name = "H" if grads["w_hr"] is None else "P"
    dy = grad_or_zeros(dy, (steps, batch, out), dtype, "dy", f"(T, B, {r_name})")
    dh = grad_or_zeros(dh_n, (batch, out), dtype, "dh_n", f"(B, {r_name})").copy()
    dc = grad_or_zeros(dc_n, (batch, hid), dtype, "dc_n", "(B, H)").copy()

    dx = np.zeros((steps, batch, input_size), dtype=dtype)
    for t in reversed(steps_in_order(steps, cache.reverse)):
        rows = cache.rows[t]
        # h_t feeds both the output y[t] and the next processed step.
        g = lstm_cell_backward(dy[t, rows] + dh[rows], dc[rows], cache.cells[t])
        dx[t, rows] = g.dx
        dh[rows] = g.dh
        dc[rows] = g.dc
        dw_ih += g.dw_ih
        dw_hh += g.dw_hh
        for name in ("b_ih", "b_hh", "w_hr", "peepholes"):
            grads[name] = accumulate(grads[name], getattr(g, "d" + name))
    return LSTMGrads(
        dx,
        dh,
        dc,
        dw_ih,
        dw_hh,
        grads["b_ih"],
        grads["b_hh"],
        grads["w_hr"],
        grads["peepholes"],
    )
