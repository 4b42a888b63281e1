"""rnnkit.reference: the pure-NumPy oracle every rnnkit kernel is tested against.

Forward and hand-written backward (backpropagation through time) for the LSTM, the GRU
and the vanilla RNN (tanh or relu), one step (``*_cell_*``) and a whole sequence (one
layer, one direction), with the same names, signatures and conventions as the compiled
kernels in :mod:`rnnkit`. It is written for clarity, not speed: every sequence function
is a Python loop over the cell functions (the backward runs the cell backward from
``t = T - 1`` down to 0), and every cell spells out its math, which is PyTorch's.

Shapes: T time steps, B batch, I input size, H hidden size, G gates (LSTM 4, GRU 3,
RNN 1). ``x [T, B, I]`` time-major (``[B, I]`` for a cell), states ``[B, H]``,
``w_ih [G*H, I]``, ``w_hh [G*H, H]``, ``b_ih``/``b_hh [G*H]``; gate order LSTM
(i, f, g, o), GRU (r, z, n). A bias may be None (no bias term, and its gradient is
None); initial states and incoming gradients may be None (zeros). ``T = 0`` is the
identity on the state; ``B = 0`` gives empty arrays.

Precision: the reference is meant to be run in float64, where its error is negligible
next to any float32 kernel's. It computes in the dtype of its arguments
(``np.result_type`` of the weights), never upcasting: every other array must have that
dtype or ``TypeError`` is raised. Run in float32 it measures the rounding error of a
same-precision implementation, which is the yardstick for float32 kernel tolerances.

Results are plain tuples of fresh arrays (never views of the inputs); the caches are
small dataclasses that keep references to the inputs and the per-step activations.
"""

from ._common import SequenceCache, sigmoid
from .gru import (
    GRUCellCache,
    gru_backward,
    gru_cell_backward,
    gru_cell_forward,
    gru_forward,
)
from .lstm import (
    LSTMCellCache,
    lstm_backward,
    lstm_cell_backward,
    lstm_cell_forward,
    lstm_forward,
)
from .rnn import (
    RNNCellCache,
    rnn_backward,
    rnn_cell_backward,
    rnn_cell_forward,
    rnn_forward,
)

__all__ = [
    "GRUCellCache",
    "LSTMCellCache",
    "RNNCellCache",
    "SequenceCache",
    "gru_backward",
    "gru_cell_backward",
    "gru_cell_forward",
    "gru_forward",
    "lstm_backward",
    "lstm_cell_backward",
    "lstm_cell_forward",
    "lstm_forward",
    "rnn_backward",
    "rnn_cell_backward",
    "rnn_cell_forward",
    "rnn_forward",
    "sigmoid",
]
