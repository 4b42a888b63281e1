"""The functional recurrent kernels: thin typed wrappers over ``rnnkit._core``.

Every argument is validated once, in the extension; these wrappers only name the results.
Shapes: T time steps, B batch, I input size, H hidden size, G gates (LSTM 4, GRU 3, RNN 1).

Conventions shared by every function here:

* ``x`` is time-major ``[T, B, I]`` (``[B, I]`` for the ``*_cell_*`` functions), states are
  ``[B, H]``. Weights are PyTorch's: ``w_ih [G*H, I]``, ``w_hh [G*H, H]``, ``b_ih``,
  ``b_hh [G*H]``; gate order LSTM (i, f, g, o), GRU (r, z, n). Biases may be ``None``.
* The dtype of ``w_ih`` (float32 or float64) decides; every other array must have the same
  dtype, or ``TypeError`` is raised (no silent casts). Non-contiguous arrays are copied.
* ``h0``/``c0`` and the incoming gradients ``dy``/``dh_n``/``dc_n`` may be ``None`` (zeros).
* ``T = 0`` returns ``y`` of shape ``(0, B, H)`` and the initial state as the final state;
  ``B = 0`` returns empty arrays. (PyTorch raises for T = 0; rnnkit treats it as the identity,
  which is what chunked truncated BPTT needs.)
* ``training=True`` keeps what backward needs in the returned cache; ``training=False`` keeps
  nothing, runs in O(B*G*H) workspace, and its cache is refused by backward. The cache holds
  references to ``x`` and the weights: modifying them in place before backward changes the
  gradients (as in PyTorch without its version counters).
* The GIL is released while a kernel runs; results are bit-identical for any thread count.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from . import _core
from ._core import RecurrentCache

Array = NDArray[np.floating]
Nonlinearity = Literal["tanh", "relu"]


class LSTMOutput(NamedTuple):
    y: Array  #: [T, B, H] hidden state at every step
    h_n: Array  #: [B, H] final hidden state
    c_n: Array  #: [B, H] final cell state
    cache: RecurrentCache


class GRUOutput(NamedTuple):
    y: Array
    h_n: Array
    cache: RecurrentCache


RNNOutput = GRUOutput


class LSTMGrads(NamedTuple):
    dx: Array  #: [T, B, I]
    dh0: Array  #: [B, H]
    dc0: Array  #: [B, H]
    dw_ih: Array  #: [G*H, I]
    dw_hh: Array  #: [G*H, H]
    db_ih: Array | None  #: [G*H], None when forward had no b_ih
    db_hh: Array | None  #: [G*H], None when forward had no b_hh


class SequenceGrads(NamedTuple):
    dx: Array
    dh0: Array
    dw_ih: Array
    dw_hh: Array
    db_ih: Array | None
    db_hh: Array | None


class LSTMCellOutput(NamedTuple):
    h1: Array  #: [B, H]
    c1: Array  #: [B, H]
    cache: RecurrentCache


class GRUCellOutput(NamedTuple):
    h1: Array
    cache: RecurrentCache


RNNCellOutput = GRUCellOutput


class LSTMCellGrads(NamedTuple):
    dx: Array  #: [B, I]
    dh: Array  #: [B, H]
    dc: Array  #: [B, H]
    dw_ih: Array
    dw_hh: Array
    db_ih: Array | None
    db_hh: Array | None


class CellGrads(NamedTuple):
    dx: Array
    dh: Array
    dw_ih: Array
    dw_hh: Array
    db_ih: Array | None
    db_hh: Array | None


# --------------------------------------------------------------------------- sequences
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
) -> LSTMOutput:
    """LSTM over a whole sequence (one layer, one direction).

    ``x [T, B, I]``, ``h0``/``c0 [B, H]`` or None, ``w_ih [4H, I]``, ``w_hh [4H, H]``,
    ``b_ih``/``b_hh [4H]`` or None. Returns ``(y [T, B, H], h_n, c_n, cache)``.
    """
    return LSTMOutput(*_core.lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, training=training))


def lstm_backward(
    dy: Array | None, dh_n: Array | None, dc_n: Array | None, cache: RecurrentCache
) -> LSTMGrads:
    """Backpropagation through time for :func:`lstm_forward`.

    ``dy [T, B, H]``, ``dh_n``/``dc_n [B, H]``, each None for zeros. Returns the gradients
    of every forward input: ``(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh)``.
    """
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
) -> GRUOutput:
    """GRU over a whole sequence, PyTorch's formulation (reset after the recurrent matmul).

    ``w_ih [3H, I]``, ``w_hh [3H, H]``, gates (r, z, n). Returns ``(y, h_n, cache)``.
    """
    return GRUOutput(*_core.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, training=training))


def gru_backward(dy: Array | None, dh_n: Array | None, cache: RecurrentCache) -> SequenceGrads:
    """Backpropagation through time for :func:`gru_forward`:
    ``(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)``."""
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
) -> RNNOutput:
    """Vanilla (Elman) RNN over a whole sequence: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``.

    ``nonlinearity`` is ``"tanh"`` or ``"relu"``. Returns ``(y, h_n, cache)``.
    """
    return RNNOutput(
        *_core.rnn_forward(
            x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity=nonlinearity, training=training
        )
    )


def rnn_backward(dy: Array | None, dh_n: Array | None, cache: RecurrentCache) -> SequenceGrads:
    """Backpropagation through time for :func:`rnn_forward`:
    ``(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)``."""
    return SequenceGrads(*_core.rnn_backward(dy, dh_n, cache))


# --------------------------------------------------------------------------- single steps
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
) -> LSTMCellOutput:
    """One LSTM step: ``x [B, I]``, ``h``/``c [B, H]`` or None. Returns ``(h1, c1, cache)``."""
    return LSTMCellOutput(
        *_core.lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih, b_hh, training=training)
    )


def lstm_cell_backward(
    dh1: Array | None, dc1: Array | None, cache: RecurrentCache
) -> LSTMCellGrads:
    """Backward of :func:`lstm_cell_forward`: ``(dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh)``."""
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
) -> GRUCellOutput:
    """One GRU step: ``x [B, I]``, ``h [B, H]`` or None. Returns ``(h1, cache)``."""
    return GRUCellOutput(*_core.gru_cell_forward(x, h, w_ih, w_hh, b_ih, b_hh, training=training))


def gru_cell_backward(dh1: Array | None, cache: RecurrentCache) -> CellGrads:
    """Backward of :func:`gru_cell_forward`: ``(dx, dh, dw_ih, dw_hh, db_ih, db_hh)``."""
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
) -> RNNCellOutput:
    """One vanilla RNN step. Returns ``(h1, cache)``."""
    return RNNCellOutput(
        *_core.rnn_cell_forward(
            x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity=nonlinearity, training=training
        )
    )


def rnn_cell_backward(dh1: Array | None, cache: RecurrentCache) -> CellGrads:
    """Backward of :func:`rnn_cell_forward`: ``(dx, dh, dw_ih, dw_hh, db_ih, db_hh)``."""
    return CellGrads(*_core.rnn_cell_backward(dh1, cache))
