"""The named tuples that the recurrent functions return, shared by the compiled kernels
(:mod:`rnnkit`) and the NumPy reference (:mod:`rnnkit.reference`), so both give the same names
and fields. ``cache`` is the producer's own: a :class:`rnnkit.RecurrentCache` for the kernels,
a small dataclass for the reference; pass it back to the matching backward function.

Shapes: T time steps, B batch, I input size, H hidden size, P projection size, R the size
of the recurrent state ``h`` (P with an LSTM projection, else H), G gates.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]


class LSTMOutput(NamedTuple):
    y: Array  #: [T, B, R] the hidden state at every step (0 at padded steps)
    h_n: Array  #: [B, R] final hidden state of every sequence
    c_n: Array  #: [B, H] final cell state of every sequence
    cache: Any


class GRUOutput(NamedTuple):
    y: Array  #: [T, B, H]
    h_n: Array  #: [B, H]
    cache: Any


class RNNOutput(NamedTuple):
    y: Array  #: [T, B, H]
    h_n: Array  #: [B, H]
    cache: Any


class LSTMGrads(NamedTuple):
    dx: Array  #: [T, B, I] (0 at padded steps)
    dh0: Array  #: [B, R]
    dc0: Array  #: [B, H]
    dw_ih: Array  #: [4H, I]
    dw_hh: Array  #: [4H, R]
    db_ih: Array | None  #: [4H], None when forward had no b_ih
    db_hh: Array | None  #: [4H], None when forward had no b_hh
    dw_hr: Array | None  #: [P, H], None without a projection
    dpeepholes: Array | None  #: [3, H], None without peepholes


class SequenceGrads(NamedTuple):
    dx: Array  #: [T, B, I] (0 at padded steps)
    dh0: Array  #: [B, H]
    dw_ih: Array  #: [G*H, I]
    dw_hh: Array  #: [G*H, H]
    db_ih: Array | None  #: [G*H] or None
    db_hh: Array | None  #: [G*H] or None


class LSTMCellOutput(NamedTuple):
    h1: Array  #: [B, R]
    c1: Array  #: [B, H]
    cache: Any


class GRUCellOutput(NamedTuple):
    h1: Array  #: [B, H]
    cache: Any


class RNNCellOutput(NamedTuple):
    h1: Array  #: [B, H]
    cache: Any


class LSTMCellGrads(NamedTuple):
    dx: Array  #: [B, I]
    dh: Array  #: [B, R]
    dc: Array  #: [B, H]
    dw_ih: Array  #: [4H, I]
    dw_hh: Array  #: [4H, R]
    db_ih: Array | None  #: [4H] or None
    db_hh: Array | None  #: [4H] or None
    dw_hr: Array | None  #: [P, H] or None
    dpeepholes: Array | None  #: [3, H] or None


class CellGrads(NamedTuple):
    dx: Array  #: [B, I]
    dh: Array  #: [B, H]
    dw_ih: Array  #: [G*H, I]
    dw_hh: Array  #: [G*H, H]
    db_ih: Array | None  #: [G*H] or None
    db_hh: Array | None  #: [G*H] or None
