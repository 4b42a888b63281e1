"""rnnkit.reference: the pure-NumPy oracle every rnnkit kernel is tested against.

Forward and hand-written backward (backpropagation through time) for the LSTM, the GRU
and the vanilla RNN (tanh or relu), one step (``*_cell_*``) and a whole sequence (one
layer, one direction), with the same names, signatures, keyword options and named results
as the compiled kernels in :mod:`rnnkit`. It is written for clarity, not speed: every
sequence function is a Python loop over time calling the cell functions (the backward runs
the cell backward in the opposite order), and every cell spells out its math.

Shapes: T time steps, B batch, I input size, H hidden size, P LSTM projection size, R the
size of the recurrent state h (P with a projection, else H), G gates (LSTM 4, GRU 3,
RNN 1). ``x [T, B, I]`` time-major (``[B, I]`` for a cell), ``h [B, R]``, ``c [B, H]``,
``w_ih [G*H, I]``, ``w_hh [G*H, R]``, ``b_ih``/``b_hh [G*H]``; gate order LSTM
(i, f, g, o), GRU (r, z, n), PyTorch's. A bias may be None (no bias term, and its gradient
is None); initial states and incoming gradients may be None (zeros). ``T = 0`` is the
identity on the state; ``B = 0`` gives empty arrays.

Keyword-only options (all default to PyTorch's plain cell):

* sequences: ``lengths [B]`` (any integer dtype; sequence b is ``x[0:lengths[b], b]``,
  ``y`` is 0 beyond it, ``h_n`` is the state after its last processed step, backward
  ignores ``dy`` beyond it and returns ``dx`` 0 there) and ``reverse`` (each sequence runs
  from its last step down to 0);
* LSTM: ``w_hr [P, H]`` (projection, torch's ``proj_size``), ``peepholes [3, H]``
  (p_i, p_f, p_o; ONNX semantics), ``input_forget`` (CIFG: f = 1 - i), ``clip``;
* GRU: ``linear_before_reset`` (True: PyTorch's, False: ONNX's default), ``clip``;
* RNN: ``nonlinearity``, ``clip``. ``clip`` clamps every gate pre-activation to
  ``[-clip, clip]`` (ONNX); the gradient passes only strictly inside.
* ``training``: accepted for parity with the kernels. The reference always keeps its
  cache, but backward refuses a ``training=False`` cache as the kernels do.

Precision: the reference is meant to be run in float64, where its error is negligible
next to any float32 kernel's. It computes in the dtype of ``w_ih``, never upcasting:
every other array must have that dtype or ``TypeError`` is raised. Run in float32 it
measures the rounding error of a same-precision implementation, which is the yardstick
for float32 kernel tolerances. Argument errors: ``TypeError`` for kinds and dtypes,
``ValueError`` for shapes and values, with messages that name the argument and give the
expected and actual values.

Results are named tuples of fresh arrays (never views of the inputs); the caches are
small dataclasses that keep references to the inputs and the per-step activations.
"""

from .._results import (
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
    "CellGrads",
    "GRUCellCache",
    "GRUCellOutput",
    "GRUOutput",
    "LSTMCellCache",
    "LSTMCellGrads",
    "LSTMCellOutput",
    "LSTMGrads",
    "LSTMOutput",
    "RNNCellCache",
    "RNNCellOutput",
    "RNNOutput",
    "SequenceCache",
    "SequenceGrads",
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
