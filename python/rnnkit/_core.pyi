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

# n-gram core (csrc/ngram, bind_ngram.cpp); rnnkit.ngram wraps these.
class _Vocabulary:
    def __init__(self) -> None: ...
    def __len__(self) -> int: ...
    def find(self, word: str) -> int: ...
    def add(self, word: str) -> int: ...
    def word(self, id: int) -> str: ...
    def words(self) -> list[str]: ...
    def encode_text(
        self, text: str | bytes, grow: bool, with_counts: bool = False
    ) -> tuple[NDArray[np.int32], NDArray[np.int64], NDArray[np.uint64] | None]: ...

class _NgramCounts:
    def __init__(self, order: int) -> None: ...
    @property
    def order(self) -> int: ...
    def add(self, ids: NDArray[np.int32], offsets: NDArray[np.int64]) -> None: ...
    def size(self, n: int) -> int: ...
    def total(self, n: int) -> int: ...
    def count(self, ngram: NDArray[np.int32]) -> int: ...
    def ngrams(self, n: int) -> tuple[NDArray[np.int32], NDArray[np.uint64]]: ...
    def count_of_counts(self, n: int, max_count: int) -> NDArray[np.uint64]: ...
    def merge(self, other: _NgramCounts, translate: NDArray[np.uint32] | None = None) -> None: ...
    def word_bound(self) -> int: ...
    def prune(self, min_counts: list[int]) -> None: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> _NgramCounts: ...
    def memory_bytes(self) -> int: ...

class _NgramModel:
    def __init__(self, order: int, vocab_size: int) -> None: ...
    @property
    def order(self) -> int: ...
    @property
    def vocab_size(self) -> int: ...
    def size(self, n: int) -> int: ...
    def set(self, ngram: NDArray[np.int32], log_prob: float, log_backoff: float) -> None: ...
    def get(self, ngram: NDArray[np.int32]) -> tuple[float, float] | None: ...
    def ngrams(
        self, n: int
    ) -> tuple[NDArray[np.int32], NDArray[np.float32], NDArray[np.float32]]: ...
    def score(
        self,
        ids: NDArray[np.int32],
        offsets: NDArray[np.int64],
        bos: bool,
        eos: bool,
        per_token: bool,
    ) -> tuple[NDArray[np.float64], NDArray[np.float32], NDArray[np.int32]]: ...
    @staticmethod
    def modified_kneser_ney(
        counts: _NgramCounts, vocab_size: int
    ) -> tuple[_NgramModel, list[float], list[int]]: ...
    def memory_bytes(self) -> int: ...
