"""rnnkit: fused recurrent-network kernels (LSTM, GRU, RNN) with a NumPy API.

The kernels run in C++ (OpenMP threads, OpenBLAS GEMMs) in float32 and float64, forward and
full backpropagation through time. Arrays are time-major: ``x [T, B, I]``, states ``[B, H]``;
weights use PyTorch's layout and gate order. See ``rnnkit.reference`` for the pure-NumPy
implementation every kernel is tested against.
"""

# Load the BLAS that rnnkit._core links against (found through its RUNPATH as well).
import scipy_openblas32 as _scipy_openblas32  # type: ignore[import-untyped]  # noqa: F401

from . import convert, cuda, nn
from ._core import (
    RecurrentCache,
    cpu_isa,
    get_num_threads,
    has_cuda,
    pooled_bytes,
    release_memory,
    set_num_threads,
)
from ._functional import (
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
    gru_backward,
    gru_cell_backward,
    gru_cell_forward,
    gru_forward,
    lstm_backward,
    lstm_cell_backward,
    lstm_cell_forward,
    lstm_forward,
    rnn_backward,
    rnn_cell_backward,
    rnn_cell_forward,
    rnn_forward,
)
from .cuda import cuda_available

__version__ = "0.1.0"

__all__ = [
    "CellGrads",
    "GRUCellOutput",
    "GRUOutput",
    "LSTMCellGrads",
    "LSTMCellOutput",
    "LSTMGrads",
    "LSTMOutput",
    "RNNCellOutput",
    "RNNOutput",
    "RecurrentCache",
    "SequenceGrads",
    "__version__",
    "convert",
    "cpu_isa",
    "cuda",
    "cuda_available",
    "get_num_threads",
    "gru_backward",
    "gru_cell_backward",
    "gru_cell_forward",
    "gru_forward",
    "has_cuda",
    "lstm_backward",
    "lstm_cell_backward",
    "lstm_cell_forward",
    "lstm_forward",
    "nn",
    "pooled_bytes",
    "release_memory",
    "rnn_backward",
    "rnn_cell_backward",
    "rnn_cell_forward",
    "rnn_forward",
    "set_num_threads",
]


def _check_isa_variable() -> None:
    """Warn about an RNNKIT_ISA value the kernels' dispatch does not know (it ignores it)."""
    import os
    import warnings

    value = os.environ.get("RNNKIT_ISA")
    if value is not None and value not in ("baseline", "avx2", "avx512"):
        warnings.warn(
            f"RNNKIT_ISA must be one of baseline, avx2, avx512 (lower case), got {value!r}; "
            "it is ignored: the kernels use the best instruction set the CPU has "
            "(rnnkit.cpu_isa() says which)",
            RuntimeWarning,
            stacklevel=2,
        )


_check_isa_variable()
