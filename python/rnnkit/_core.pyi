"""Type stub for the compiled extension rnnkit._core (see csrc/bindings/)."""

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

_Array = NDArray[np.floating]
_Opt = _Array | None
_Nonlinearity = Literal["tanh", "relu"]

class RecurrentCache:
    @property
    def kind(self) -> Literal["lstm", "gru", "rnn"]: ...
    @property
    def producer(self) -> str: ...
    @property
    def training(self) -> bool: ...
    @property
    def nonlinearity(self) -> _Nonlinearity: ...
    @property
    def dtype(self) -> np.dtype[np.floating]: ...
    @property
    def shape(self) -> tuple[int, int, int, int]: ...
    @property
    def reverse(self) -> bool: ...
    @property
    def nbytes(self) -> int: ...

def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def _set_thread_limit(n: int) -> None: ...
def has_cuda() -> bool: ...
def release_memory() -> None: ...
def pooled_bytes() -> int: ...
def cpu_isa() -> Literal["avx512", "avx2", "baseline"]: ...
def lstm_forward(
    x: _Array,
    h0: _Array | None,
    c0: _Array | None,
    w_ih: _Array,
    w_hh: _Array,
    b_ih: _Array | None = None,
    b_hh: _Array | None = None,
    *,
    training: bool = True,
    lengths: ArrayLike | None = None,
    reverse: bool = False,
    w_hr: _Array | None = None,
    peepholes: _Array | None = None,
    input_forget: bool = False,
    clip: float | None = None,
) -> tuple[_Array, _Array, _Array, RecurrentCache]: ...
def gru_forward(
    x: _Array,
    h0: _Array | None,
    w_ih: _Array,
    w_hh: _Array,
    b_ih: _Array | None = None,
    b_hh: _Array | None = None,
    *,
    training: bool = True,
    lengths: ArrayLike | None = None,
    reverse: bool = False,
    linear_before_reset: bool = True,
    clip: float | None = None,
) -> tuple[_Array, _Array, RecurrentCache]: ...
def rnn_forward(
    x: _Array,
    h0: _Array | None,
    w_ih: _Array,
    w_hh: _Array,
    b_ih: _Array | None = None,
    b_hh: _Array | None = None,
    *,
    nonlinearity: _Nonlinearity = "tanh",
    training: bool = True,
    lengths: ArrayLike | None = None,
    reverse: bool = False,
    clip: float | None = None,
) -> tuple[_Array, _Array, RecurrentCache]: ...
def lstm_backward(
    dy: _Array | None, dh_n: _Array | None, dc_n: _Array | None, cache: RecurrentCache
) -> tuple[_Array, _Array, _Array, _Array, _Array, _Opt, _Opt, _Opt, _Opt]: ...
def gru_backward(
    dy: _Array | None, dh_n: _Array | None, cache: RecurrentCache
) -> tuple[_Array, _Array, _Array, _Array, _Array | None, _Array | None]: ...
def rnn_backward(
    dy: _Array | None, dh_n: _Array | None, cache: RecurrentCache
) -> tuple[_Array, _Array, _Array, _Array, _Array | None, _Array | None]: ...
def lstm_cell_forward(
    x: _Array,
    h: _Array | None,
    c: _Array | None,
    w_ih: _Array,
    w_hh: _Array,
    b_ih: _Array | None = None,
    b_hh: _Array | None = None,
    *,
    training: bool = True,
    w_hr: _Array | None = None,
    peepholes: _Array | None = None,
    input_forget: bool = False,
    clip: float | None = None,
) -> tuple[_Array, _Array, RecurrentCache]: ...
def gru_cell_forward(
    x: _Array,
    h: _Array | None,
    w_ih: _Array,
    w_hh: _Array,
    b_ih: _Array | None = None,
    b_hh: _Array | None = None,
    *,
    training: bool = True,
    linear_before_reset: bool = True,
    clip: float | None = None,
) -> tuple[_Array, RecurrentCache]: ...
def rnn_cell_forward(
    x: _Array,
    h: _Array | None,
    w_ih: _Array,
    w_hh: _Array,
    b_ih: _Array | None = None,
    b_hh: _Array | None = None,
    *,
    nonlinearity: _Nonlinearity = "tanh",
    training: bool = True,
    clip: float | None = None,
) -> tuple[_Array, RecurrentCache]: ...
def lstm_cell_backward(
    dh1: _Array | None, dc1: _Array | None, cache: RecurrentCache
) -> tuple[_Array, _Array, _Array, _Array, _Array, _Opt, _Opt, _Opt, _Opt]: ...
def gru_cell_backward(
    dh1: _Array | None, cache: RecurrentCache
) -> tuple[_Array, _Array, _Array, _Array, _Array | None, _Array | None]: ...
def rnn_cell_backward(
    dh1: _Array | None, cache: RecurrentCache
) -> tuple[_Array, _Array, _Array, _Array, _Array | None, _Array | None]: ...
