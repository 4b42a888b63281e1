"""The functional recurrent kernels: thin typed wrappers over ``rnnkit._core``.

Every argument is validated once, in the extension; these wrappers only name the results.
Shapes: T time steps, B batch, I input size, H hidden size, G gates (LSTM 4, GRU 3, RNN 1).

Conventions shared by every function here:

* ``x`` is time-major ``[T, B, I]`` (``[B, I]`` for the ``*_cell_*`` functions), states are
  ``[B, H]``. Weights are PyTorch's: ``w_ih [G*H, I]``, ``w_hh [G*H, H]``, ``b_ih``,
  ``b_hh [G*H]``; gate order LSTM (i, f, g, o), GRU (r, z, n). Biases may be ``None``.
* The dtype of ``w_ih`` (float32 or float64) decides; every other array must have the same
  dtype, or ``TypeError`` is raised (no silent casts).
* ``w_ih`` also decides I (its columns) and H (its rows are G*H), ``w_hr`` P, and ``x`` T and B
  (``batch_sizes[0]`` when packed). An array that disagrees raises ``ValueError`` naming it and
  where the size comes from: ``x must have shape (T, B, I) = (4, 3, 3) (I from w_ih), got
  (4, 3, 2)``. The gradients given to a backward function are checked against the forward
  call that made the cache, and say so: ``dy must have shape (T, B, H) = (4, 3, 5) (T, B
  from lstm_forward's x, H from its w_ih), got (4, 3, 6)``. Every shape is checked before a
  non-contiguous array is copied to C order.
* ``h0``/``c0`` and the incoming gradients ``dy``/``dh_n``/``dc_n`` may be ``None`` (zeros).
* ``T = 0`` returns ``y`` of shape ``(0, B, H)`` and the initial state as the final state;
  ``B = 0`` returns empty arrays. (PyTorch raises for T = 0; rnnkit treats it as the identity,
  which is what chunked truncated BPTT needs.)
* ``training=True`` keeps what backward needs in the returned cache; ``training=False`` keeps
  nothing, runs in O(B*G*H) workspace, and its cache is refused by backward. The cache holds
  references to ``x`` and the weights: modifying them in place before backward changes the
  gradients (as in PyTorch without its version counters).
* The GIL is released while a kernel runs; results are bit-identical for any thread count.
* Device arrays (torch CUDA tensors, CuPy arrays, anything with ``__cuda_array_interface__``
  or DLPack on a CUDA device) run the sequence and single-step functions on the CUDA backend
  and come back as the same kind of array; see :mod:`rnnkit.cuda`.

Keyword options of the sequence functions (all default to the plain cell):

* ``lengths`` (integer array ``[B]``, values in ``[0, T]``): variable-length batches. Sequence
  ``b`` is ``x[:lengths[b], b]``; ``y`` is zero past it, its final state is the state after its
  last real step (``h0[b]`` when the length is 0), ``dy`` there is ignored and ``dx`` is zero.
  Rows are sorted by length inside the kernel so that no padding step is computed.
* ``batch_sizes`` (integer array ``[T]``, PyTorch's ``PackedSequence.batch_sizes``): ``x``
  is packed, ``[N, I]`` with N real tokens and no padding: time ``t`` of sequence ``b`` is
  row ``batch_sizes[:t].sum() + b``, the sequences sorted longest first (``batch_sizes``
  non-increasing, summing to N; B = ``batch_sizes[0]``). ``y``, ``dy`` and ``dx`` are packed
  the same way, ``[N, H]``/``[N, I]``; the states stay ``[B, H]`` in that sorted order. The
  same numbers as padding with ``lengths``, bit for bit, without the ``[T, B, *]`` arrays: for
  very uneven lengths, most of the time and memory. CPU arrays only (with device arrays,
  pass padded ``x`` and ``lengths``). Not together with ``lengths``.
* ``reverse=True``: the sequence runs right to left, each one from its own last step.
* ``clip`` (float > 0, ONNX ``clip``): every gate pre-activation is clamped to
  ``[-clip, clip]`` before its activation (the gradient is zero where it was clamped).
* LSTM: ``w_hr [P, H]`` projects the state (torch's ``proj_size``; then ``w_hh [4H, P]``,
  ``h0``/``y``/``h_n`` have ``P`` columns); ``peepholes [3, H]`` adds ``p_i*c`` to the input
  gate, ``p_f*c`` to the forget gate (previous cell) and ``p_o*c'`` to the output gate (new
  cell), as the ONNX LSTM; ``input_forget=True`` couples the gates, ``f = 1 - i`` (CIFG;
  the forget rows of the weights are then unused and get zero gradients).
* GRU: ``linear_before_reset=False`` applies the reset gate before the recurrent matmul,
  ``n = tanh(W_in x + b_in + W_hn (r*h) + b_hn)`` (ONNX default, Keras ``reset_after=False``).
"""

from __future__ import annotations

import textwrap
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core, cuda
from ._core import RecurrentCache
from ._device import is_device_array
from ._results import (
    CellGrads,
    GRUCellOutput,
    GRUOutput,
    LSTMCellGrads,
    LSTMCellOutput,
    LSTMGrads,
    LSTMOutput,
    RNNCellOutput,
    RNNOutput,
    SequenceGrads,
)

Array = NDArray[np.floating]
Nonlinearity = Literal["tanh", "relu"]


# --------------------------------------------------------------------------- sequences
def _host_only_packing(batch_sizes: ArrayLike | None) -> None:
    if batch_sizes is not None:
        raise ValueError(
            "batch_sizes (packed x [N, I]) is for CPU arrays; with device arrays pass padded "
            "x [T, B, I] and lengths"
        )


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
    lengths: ArrayLike | None = None,
    batch_sizes: ArrayLike | None = None,
    reverse: bool = False,
    w_hr: Array | None = None,
    peepholes: Array | None = None,
    input_forget: bool = False,
    clip: float | None = None,
) -> LSTMOutput:
    """LSTM over a whole sequence (one layer, one direction).

    ``x [T, B, I]``, ``h0 [B, R]``/``c0 [B, H]`` or None, ``w_ih [4H, I]``, ``w_hh [4H, R]``,
    ``b_ih``/``b_hh [4H]`` or None; R = H, or P with the projection ``w_hr [P, H]``.
    Returns ``(y [T, B, R], h_n [B, R], c_n [B, H], cache)``.
    """
    if is_device_array(x):
        _host_only_packing(batch_sizes)
        return LSTMOutput(
            *cuda.forward(
                "lstm",
                x,
                h0,
                c0,
                w_ih,
                w_hh,
                b_ih,
                b_hh,
                training=training,
                lengths=lengths,
                reverse=reverse,
                w_hr_obj=w_hr,
                peepholes_obj=peepholes,
                input_forget=input_forget,
                clip=clip,
            )
        )
    return LSTMOutput(
        *_core.lstm_forward(
            x,
            h0,
            c0,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            training=training,
            lengths=lengths,
            batch_sizes=batch_sizes,
            reverse=reverse,
            w_hr=w_hr,
            peepholes=peepholes,
            input_forget=input_forget,
            clip=clip,
        )
    )


def lstm_backward(
    dy: Array | None,
    dh_n: Array | None,
    dc_n: Array | None,
    cache: RecurrentCache | cuda.DeviceRecurrentCache,
) -> LSTMGrads:
    """Backpropagation through time for :func:`lstm_forward`.

    ``dy [T, B, R]``, ``dh_n [B, R]``, ``dc_n [B, H]``, each None for zeros. Returns the
    gradients of every forward input: ``(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr,
    dpeepholes)`` (None for an input forward did not have).
    """
    if isinstance(cache, cuda.DeviceRecurrentCache):
        return LSTMGrads(*cuda.backward("lstm", dy, dh_n, dc_n, cache))
    return LSTMGrads(*_core.lstm_backward(dy, dh_n, dc_n, cache))


def gru_forward(
    x: Array,
    h0: Array | None,
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None = None,
    b_hh: Array | None = None,
    *,
    training: bool = True,
    lengths: ArrayLike | None = None,
    batch_sizes: ArrayLike | None = None,
    reverse: bool = False,
    linear_before_reset: bool = True,
    clip: float | None = None,
) -> GRUOutput:
    """GRU over a whole sequence, by default PyTorch's formulation (reset after the matmul).

    ``w_ih [3H, I]``, ``w_hh [3H, H]``, gates (r, z, n). Returns ``(y, h_n, cache)``.
    """
    if is_device_array(x):
        _host_only_packing(batch_sizes)
        y, h_n, _, cache = cuda.forward(
            "gru",
            x,
            h0,
            None,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            training=training,
            lengths=lengths,
            reverse=reverse,
            linear_before_reset=linear_before_reset,
            clip=clip,
        )
        return GRUOutput(y, h_n, cache)
    return GRUOutput(
        *_core.gru_forward(
            x,
            h0,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            training=training,
            lengths=lengths,
            batch_sizes=batch_sizes,
            reverse=reverse,
            linear_before_reset=linear_before_reset,
            clip=clip,
        )
    )


def gru_backward(
    dy: Array | None, dh_n: Array | None, cache: RecurrentCache | cuda.DeviceRecurrentCache
) -> SequenceGrads:
    """Backpropagation through time for :func:`gru_forward`:
    ``(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)``."""
    if isinstance(cache, cuda.DeviceRecurrentCache):
        return _sequence_grads(cuda.backward("gru", dy, dh_n, None, cache))
    return SequenceGrads(*_core.gru_backward(dy, dh_n, cache))


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
    lengths: ArrayLike | None = None,
    batch_sizes: ArrayLike | None = None,
    reverse: bool = False,
    clip: float | None = None,
) -> RNNOutput:
    """Vanilla (Elman) RNN over a whole sequence: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``.

    ``act`` is ``"tanh"`` or ``"relu"``; ``w_ih [H, I]``, ``w_hh [H, H]``.
    Returns ``(y, h_n, cache)``.
    """
    if is_device_array(x):
        _host_only_packing(batch_sizes)
        y, h_n, _, cache = cuda.forward(
            "rnn",
            x,
            h0,
            None,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            training=training,
            lengths=lengths,
            reverse=reverse,
            nonlinearity=nonlinearity,
            clip=clip,
        )
        return RNNOutput(y, h_n, cache)
    return RNNOutput(
        *_core.rnn_forward(
            x,
            h0,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            nonlinearity=nonlinearity,
            training=training,
            lengths=lengths,
            batch_sizes=batch_sizes,
            reverse=reverse,
            clip=clip,
        )
    )


def rnn_backward(
    dy: Array | None, dh_n: Array | None, cache: RecurrentCache | cuda.DeviceRecurrentCache
) -> SequenceGrads:
    """Backpropagation through time for :func:`rnn_forward`:
    ``(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)``."""
    if isinstance(cache, cuda.DeviceRecurrentCache):
        return _sequence_grads(cuda.backward("rnn", dy, dh_n, None, cache))
    return SequenceGrads(*_core.rnn_backward(dy, dh_n, cache))


def _sequence_grads(g: tuple[Any, ...]) -> SequenceGrads:
    """The GRU/RNN gradients out of the CUDA backend's LSTM-shaped tuple."""
    dx, dh0, _, dw_ih, dw_hh, db_ih, db_hh, _, _ = g
    return SequenceGrads(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)


# --------------------------------------------------------------------------- single steps
def _device_step(
    kind: str, arrays: tuple[Any, ...], training: bool, **options: Any
) -> tuple[Any, Any, Any]:
    """One step on the CUDA backend: ``(h1, c1 or None, cache)`` for
    ``arrays = (x, h, c, w_ih, w_hh, b_ih, b_hh)``."""
    h1, _, c1, cache = cuda.forward(
        kind, *arrays, training=training, lengths=None, reverse=False, cell=True, **options
    )
    return h1, c1, cache


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
    """One LSTM step: ``x [B, I]``, ``h [B, R]``/``c [B, H]`` or None. Returns
    ``(h1, c1, cache)``; the options are those of :func:`lstm_forward`."""
    if is_device_array(x):
        h1, c1, cache = _device_step(
            "lstm",
            (x, h, c, w_ih, w_hh, b_ih, b_hh),
            training,
            w_hr_obj=w_hr,
            peepholes_obj=peepholes,
            input_forget=input_forget,
            clip=clip,
        )
        return LSTMCellOutput(h1, c1, cache)
    return LSTMCellOutput(
        *_core.lstm_cell_forward(
            x,
            h,
            c,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            training=training,
            w_hr=w_hr,
            peepholes=peepholes,
            input_forget=input_forget,
            clip=clip,
        )
    )


def lstm_cell_backward(
    dh1: Array | None, dc1: Array | None, cache: RecurrentCache
) -> LSTMCellGrads:
    """Backward of :func:`lstm_cell_forward`:
    ``(dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh, dw_hr, dpeepholes)``."""
    if isinstance(cache, cuda.DeviceRecurrentCache):
        return LSTMCellGrads(*cuda.backward("lstm", None, dh1, dc1, cache, cell=True))
    return LSTMCellGrads(*_core.lstm_cell_backward(dh1, dc1, cache))


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
    """One GRU step: ``x [B, I]``, ``h [B, H]`` or None. Returns ``(h1, cache)``."""
    if is_device_array(x):
        h1, _, cache = _device_step(
            "gru",
            (x, h, None, w_ih, w_hh, b_ih, b_hh),
            training,
            linear_before_reset=linear_before_reset,
            clip=clip,
        )
        return GRUCellOutput(h1, cache)
    return GRUCellOutput(
        *_core.gru_cell_forward(
            x,
            h,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            training=training,
            linear_before_reset=linear_before_reset,
            clip=clip,
        )
    )


def gru_cell_backward(dh1: Array | None, cache: RecurrentCache) -> CellGrads:
    """Backward of :func:`gru_cell_forward`: ``(dx, dh, dw_ih, dw_hh, db_ih, db_hh)``."""
    if isinstance(cache, cuda.DeviceRecurrentCache):
        return _cell_grads(cuda.backward("gru", None, dh1, None, cache, cell=True))
    return CellGrads(*_core.gru_cell_backward(dh1, cache))


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
    """One vanilla RNN step. Returns ``(h1, cache)``."""
    if is_device_array(x):
        h1, _, cache = _device_step(
            "rnn",
            (x, h, None, w_ih, w_hh, b_ih, b_hh),
            training,
            nonlinearity=nonlinearity,
            clip=clip,
        )
        return RNNCellOutput(h1, cache)
    return RNNCellOutput(
        *_core.rnn_cell_forward(
            x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity=nonlinearity, training=training, clip=clip
        )
    )


def rnn_cell_backward(dh1: Array | None, cache: RecurrentCache) -> CellGrads:
    """Backward of :func:`rnn_cell_forward`: ``(dx, dh, dw_ih, dw_hh, db_ih, db_hh)``."""
    if isinstance(cache, cuda.DeviceRecurrentCache):
        return _cell_grads(cuda.backward("rnn", None, dh1, None, cache, cell=True))
    return CellGrads(*_core.rnn_cell_backward(dh1, cache))


def _cell_grads(g: tuple[Any, ...]) -> CellGrads:
    return CellGrads(*_sequence_grads(g))


# help() shows a function's own docstring: the sequence functions carry the conventions and
# the keyword options of this module's docstring too (one text, not copies).
# (python -OO strips every docstring: nothing to add then)
if __doc__ is not None:
    _SHARED = textwrap.indent(__doc__[__doc__.index("Conventions shared by every") :], "    ")
    for _function in (lstm_forward, gru_forward, rnn_forward):
        _function.__doc__ = (_function.__doc__ or "").rstrip() + "\n\n" + _SHARED
