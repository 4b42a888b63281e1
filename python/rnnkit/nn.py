"""Recurrent layers as modules: :class:`LSTM`, :class:`GRU` and :class:`RNN`.

The constructor arguments, defaults, parameter names and shapes are those of
``torch.nn.LSTM/GRU/RNN``, so a torch ``state_dict`` loads as it is (and ours loads into torch),
with no reordering. Parameters are NumPy arrays; ``forward`` runs the compiled kernels and
``backward`` runs backpropagation through time, accumulating parameter gradients into
``m.grads`` (same keys as ``m.params``).

Shapes: T time steps, B batch, I input size, H hidden size, P projection size (LSTM
``proj_size``), R = P if ``proj_size`` else H (the width of the hidden state), L layers,
D directions (2 if ``bidirectional`` else 1), G gates (LSTM 4, GRU 3, RNN 1).

* ``x`` is ``[T, B, I]`` (``[B, T, I]`` with ``batch_first=True``; ``[T, I]`` unbatched).
* ``y`` is ``[T, B, W]`` (``[B, T, W]`` with ``batch_first``) with W = D*R for
  ``merge_mode="concat"`` (torch's layout: forward direction first), R otherwise; with
  ``merge_mode=None`` and two directions ``y`` is the tuple ``(y_forward, y_backward)``.
* The state is ``h [L*D, B, R]`` for GRU/RNN and ``(h [L*D, B, R], c [L*D, B, H])`` for the
  LSTM, index ``l*D + d`` (torch's layout, also with ``batch_first``); ``None`` means zeros.

Per layer and direction the module makes exactly one call of the compiled kernel
(``rnnkit.lstm_forward`` ... with ``reverse=True`` for the backward direction); there is no
Python loop over time.

Extensions over torch (all keyword-only, all off by default):

* ``merge_mode`` (``"concat"``, ``"sum"``, ``"mean"``, ``"max"``, ``"mul"`` or ``None``): how
  the two directions of every bidirectional layer are combined; the merged output is the
  next layer's input (2R wide for ``"concat"``/``None``, R otherwise). ``None`` concatenates
  between layers and returns the last layer's two directions separately.
* ``residual=True``: every layer above the first adds its input to its (merged) output, the
  deep residual RNN. The sizes always match: a layer above the first reads the merged output
  of the layer below, which has the width of its own merged output.
* LSTM ``peepholes`` (extra parameter ``peepholes_l{k}[_reverse]`` of shape ``[3, H]``, ONNX
  semantics), ``input_forget`` (CIFG, ``f = 1 - i``); GRU ``linear_before_reset``; ``clip`` for
  every cell (gate pre-activations clamped to ``[-clip, clip]``). See ``rnnkit.lstm_forward``.
* ``init``: ``"uniform"`` (torch's ``U(-1/sqrt(H), 1/sqrt(H))`` for every parameter),
  ``"orthogonal"`` (orthogonal recurrent blocks, Glorot-uniform input weights, zero biases
  and peepholes) or ``"identity"`` (RNN only, IRNN: ``weight_hh = I``, zero biases);
  ``forget_bias`` (LSTM) sets the forget-gate bias (``bias_ih`` gets the value, ``bias_hh``
  zero) after ``init``.
* ``dtype`` (float32, the default, also for ``None``; or float64: the parameters' dtype and
  the one inputs must have, ``TypeError`` otherwise, nothing is cast) and ``seed`` (the
  module's ``np.random.default_rng(seed)``, :attr:`RNNBase.rng`, draws the initial weights
  and then the dropout masks).

Dropout (``dropout > 0``, ``num_layers > 1``) is inverted dropout on the output of every layer
but the last (after merging and the residual connection), in training mode only. Its masks
come from :attr:`RNNBase.rng` and are kept for backward.

Like the kernels' caches, what forward keeps refers to ``x`` and the parameters (not copies):
update parameters in place *after* backward (as an optimiser does), not between forward and
backward.

On a GPU (``RNNKIT_CUDA=ON`` builds, with CuPy installed): :meth:`RNNBase.cuda` moves the
parameters and gradients to a CUDA device as CuPy arrays; ``forward`` and ``backward`` then take
CUDA arrays (CuPy arrays, or anything CuPy reads without a copy through
``__cuda_array_interface__``) and return CuPy arrays, running the CUDA backend's kernels with
the same arithmetic around them (merging, residual layers, dropout with masks drawn from the
same :attr:`RNNBase.rng` as on the CPU). :meth:`RNNBase.cpu` moves everything back. For torch
CUDA tensors with autograd use ``rnnkit.torch``.
"""

from __future__ import annotations

import importlib
import math
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple, TypeVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from . import _core
from . import _functional as F
from . import cuda as rcuda
from ._checks import MAX_KERNEL_SIZE, check_bool, check_clip, check_finite
from ._core import RecurrentCache
from ._device import is_device_array
from ._side_by_side import side_by_side

__all__ = ["GRU", "LSTM", "RNN", "IncompatibleKeys", "RNNBase"]

Array = NDArray[np.floating]
_R = TypeVar("_R")
_A = TypeVar("_A", bound="Array | None")
# One kernel forward: (y, h_n, c_n or None, cache).
_KernelOutput = tuple[Array, Array, Array | None, RecurrentCache]
MergeMode = Literal["concat", "sum", "mean", "max", "mul"]
Init = Literal["uniform", "orthogonal", "identity"]
#: ``h [L*D, B, R]`` (GRU, RNN) or ``(h [L*D, B, R], c [L*D, B, H])`` (LSTM).
State = Array | tuple[Array, Array]
#: A state (or state gradient) passed in: as :data:`State`, the LSTM's items may be None.
StateArg = Array | tuple[Array | None, Array | None]
#: ``y`` or, with ``merge_mode=None`` and two directions, ``(y_forward, y_backward)``.
Output = Array | tuple[Array, Array]
#: The gradient of :data:`Output` passed to backward (tuple items may be None).
OutputGrad = Array | tuple[Array | None, Array | None]

_MERGE_MODES: tuple[str | None, ...] = ("concat", "sum", "mean", "max", "mul", None)
_INITS: tuple[str, ...] = ("uniform", "orthogonal", "identity")
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class IncompatibleKeys(NamedTuple):
    """What :meth:`RNNBase.load_state_dict` returns (as torch's): keys that were not found."""

    missing_keys: list[str]
    unexpected_keys: list[str]


# ------------------------------------------------------------------------------ the tape
@dataclass
class _Layer:
    """What forward keeps of one layer for backward."""

    caches: list[RecurrentCache]  #: one per direction
    merge_aux: tuple[np.ndarray, ...] = ()  #: "max": (forward wins,), "mul": (y_f, y_b)
    mask: Array | None = None  #: inverted-dropout mask (already scaled by 1/(1-p))


@dataclass
class _Tape:
    T: int
    B: int
    unbatched: bool
    layers: list[_Layer] = field(default_factory=list)


# --------------------------------------------------------------------------- init helpers
def _orthogonal(rng: np.random.Generator, rows: int, cols: int) -> NDArray[np.float64]:
    """A ``[rows, cols]`` matrix with orthonormal columns (rows >= cols) or rows."""
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.where(np.diag(r) < 0, -1.0, 1.0)  # the Haar measure, not QR's sign convention
    return q if rows >= cols else q.T


# The floating torch dtypes that NumPy has: any other (bfloat16, the float8 types) has no NumPy
# array to become, and torch's own error for it names neither the argument nor the key.
_NUMPY_TORCH_FLOATS = frozenset({"torch.float16", "torch.float32", "torch.float64"})


def _float_without_numpy(value: Any) -> str | None:
    """The dtype (as torch names it) of a torch tensor whose floating dtype NumPy lacks,
    else None."""
    if hasattr(value, "detach") and hasattr(value, "is_floating_point"):
        if value.is_floating_point() and str(value.dtype) not in _NUMPY_TORCH_FLOATS:
            return str(value.dtype)
    return None


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


# ---------------------------------------------------------------------------- the modules
class RNNBase:
    """What :class:`LSTM`, :class:`GRU` and :class:`RNN` share (see the module docstring).

    Attributes: the constructor arguments (``input_size``, ``hidden_size``, ``num_layers``,
    ``bias``, ``batch_first``, ``dropout``, ``bidirectional``, ``proj_size``, ``dtype``,
    ``merge_mode``, ``residual``, ``clip``, ``init``, ...), ``params`` and ``grads`` (dicts of
    NumPy arrays with torch's key names; CuPy arrays after :meth:`cuda`), ``device``,
    ``training`` (bool), ``rng`` (the module's ``np.random.Generator``) and ``dstate0`` (the
    gradient of the initial state left by the last :meth:`backward`, same structure as the
    state).
    """

    _cell: ClassVar[Literal["lstm", "gru", "rnn"]]
    _gates: ClassVar[int]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
        *,
        proj_size: int = 0,
        nonlinearity: str = "tanh",
        dtype: DTypeLike | None = np.float32,
        seed: int | None = None,
        merge_mode: MergeMode | None = "concat",
        residual: bool = False,
        clip: float | None = None,
        init: Init = "uniform",
        forget_bias: float | None = None,
        peepholes: bool = False,
        input_forget: bool = False,
        linear_before_reset: bool = True,
    ) -> None:
        name = type(self).__name__
        self.bias = check_bool(bias, "bias")
        self.batch_first = check_bool(batch_first, "batch_first")
        self.bidirectional = check_bool(bidirectional, "bidirectional")
        self.residual = check_bool(residual, "residual")
        self.peepholes = check_bool(peepholes, "peepholes")
        self.input_forget = check_bool(input_forget, "input_forget")
        self.linear_before_reset = check_bool(linear_before_reset, "linear_before_reset")
        self.input_size = _check_int("input_size", input_size, 1)
        self.hidden_size = _check_int("hidden_size", hidden_size, 1)
        self.num_layers = _check_int("num_layers", num_layers, 1)
        self.proj_size = _check_int("proj_size", proj_size, 0)
        if self.proj_size >= self.hidden_size:
            raise ValueError(
                f"proj_size must be smaller than hidden_size, got proj_size={self.proj_size} "
                f"and hidden_size={self.hidden_size}"
            )
        # The kernels take 32-bit BLAS sizes (G*H, I; the functional API checks them on every
        # call): refuse a module they could never run, before NumPy's MemoryError for weights
        # of terabytes that does not say which argument is too large.
        limit = MAX_KERNEL_SIZE
        if self._gates * self.hidden_size > limit:
            raise ValueError(
                f"hidden_size must be at most {limit // self._gates} for {name} (its weights have "
                f"G*H = {self._gates}*hidden_size rows, and the kernels' 32-bit BLAS takes at "
                f"most {limit}), got {self.hidden_size}"
            )
        if self.input_size > limit:
            raise ValueError(
                f"input_size must be at most {limit} (the kernels' 32-bit BLAS limit), "
                f"got {self.input_size}"
            )
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, (int, float, np.floating, np.integer))
            or not 0.0 <= float(dropout) < 1.0
        ):
            raise ValueError(
                f"dropout must be a number in [0, 1) (the probability of zeroing an element), "
                f"got {dropout!r}"
            )
        self.dropout = float(dropout)
        if self.dropout > 0 and self.num_layers == 1:
            warnings.warn(
                f"dropout={self.dropout} has no effect with num_layers=1: dropout is applied to "
                "the output of every layer but the last",
                UserWarning,
                stacklevel=3,
            )
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity: Literal["tanh", "relu"] = nonlinearity  # type: ignore[assignment]
        try:
            dt = np.dtype(np.float32 if dtype is None else dtype)  # None: the default, as torch
        except TypeError as e:
            raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from e
        if dt not in _DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {dt}")
        self.dtype: np.dtype[np.floating] = dt  # type: ignore[assignment]
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                "merge_mode must be one of 'concat', 'sum', 'mean', 'max', 'mul' or None, "
                f"got {merge_mode!r}"
            )
        self.merge_mode: MergeMode | None = merge_mode
        if self.num_layers > 1 and self.output_size > MAX_KERNEL_SIZE:  # the next layers' I
            raise ValueError(
                f"hidden_size must be at most {MAX_KERNEL_SIZE // self.num_directions} for "
                f"{name} with num_layers={self.num_layers}, bidirectional=True and merge_mode="
                f"{merge_mode!r} (the layers above the first take 2*hidden_size inputs, and the "
                f"kernels' 32-bit BLAS takes at most {MAX_KERNEL_SIZE}), got {self.hidden_size}"
            )
        self.clip: float | None = None if clip is None else check_clip(clip)
        if init not in _INITS:
            raise ValueError(f"init must be 'uniform', 'orthogonal' or 'identity', got {init!r}")
        if init == "identity" and self._cell != "rnn":
            raise ValueError(
                f"init='identity' (IRNN) is for RNN (weight_hh = I); {name} has G*H x H "
                "recurrent weights, use 'uniform' or 'orthogonal'"
            )
        self.init: Init = init
        if forget_bias is not None:
            if self._cell != "lstm":
                raise ValueError(f"forget_bias is an LSTM option; {name} has no forget gate")
            if not self.bias:
                raise ValueError("forget_bias needs bias=True")
            if self.input_forget:
                raise ValueError("forget_bias has no effect with input_forget=True (f = 1 - i)")
            forget_bias = check_finite(forget_bias, "forget_bias")
        self.forget_bias: float | None = forget_bias
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        if seed is not None and seed < 0:  # (NumPy's own message does not name it)
            raise ValueError(f"seed must be >= 0, got {seed}")
        if self.residual and self.num_layers == 1:
            warnings.warn(
                "residual=True has no effect with num_layers=1: only layers above the first "
                "add their input to their output",
                UserWarning,
                stacklevel=3,
            )

        self.training = True
        # The array module of the parameters (NumPy, or CuPy after cuda()) and their device.
        self._xp: Any = np
        self._device: int | None = None
        self.rng: np.random.Generator = np.random.default_rng(seed)
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self.dstate0: State | None = None
        self._tape: _Tape | None = None
        for key, shape in self._param_shapes().items():
            self.params[key] = np.zeros(shape, dtype=self.dtype)
            self.grads[key] = np.zeros(shape, dtype=self.dtype)
        self.reset_parameters()

    # ------------------------------------------------------------------ geometry
    @property
    def mode(self) -> str:
        """torch's ``mode``: ``"LSTM"``, ``"GRU"``, ``"RNN_TANH"`` or ``"RNN_RELU"``."""
        if self._cell == "rnn":
            return "RNN_" + self.nonlinearity.upper()
        return self._cell.upper()

    @property
    def num_directions(self) -> int:
        """D: 2 if bidirectional, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def state_size(self) -> int:
        """R: the width of the hidden state, ``proj_size`` if set, else ``hidden_size``."""
        return self.proj_size or self.hidden_size

    @property
    def output_size(self) -> int:
        """The width W of every layer's (merged) output: D*R for ``"concat"``/``None``, else R."""
        concat = self.merge_mode in ("concat", None)
        return self.state_size * (self.num_directions if concat else 1)

    def _layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.output_size

    @staticmethod
    def _suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction else "")

    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's key and shape, in torch's order (then the peepholes)."""
        GH, H, R = self._gates * self.hidden_size, self.hidden_size, self.state_size
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in range(self.num_layers):
            for d in range(self.num_directions):
                s = self._suffix(layer, d)
                shapes["weight_ih" + s] = (GH, self._layer_input_size(layer))
                shapes["weight_hh" + s] = (GH, R)
                if self.bias:
                    shapes["bias_ih" + s] = (GH,)
                    shapes["bias_hh" + s] = (GH,)
                if self.proj_size:
                    shapes["weight_hr" + s] = (self.proj_size, H)
                if self.peepholes:
                    shapes["peepholes" + s] = (3, H)
        return shapes

    # ------------------------------------------------------------------ parameters
    def reset_parameters(self, seed: int | None = None) -> None:
        """Draw new parameters as the constructor's ``init``/``forget_bias`` say, from
        ``np.random.default_rng(seed)`` if a seed is given, else from :attr:`rng`. The
        arrays are overwritten in place (references to them stay valid)."""
        rng = self.rng if seed is None else np.random.default_rng(seed)
        H, G = self.hidden_size, self._gates
        k = 1.0 / math.sqrt(H)
        for key, p in self.params.items():
            kind = key.split("_l", 1)[0]
            if self.init == "uniform":
                value: NDArray[np.float64] = rng.uniform(-k, k, size=p.shape)
            elif kind == "weight_hh" and self.init == "orthogonal":
                value = np.concatenate([_orthogonal(rng, H, p.shape[1]) for _ in range(G)])
            elif kind == "weight_hh":  # identity (IRNN)
                value = np.eye(H)
            elif kind == "weight_hr":
                value = _orthogonal(rng, *p.shape)
            elif kind == "weight_ih" and self.init == "orthogonal":
                limit = math.sqrt(6.0 / (p.shape[0] + p.shape[1]))  # Glorot uniform
                value = rng.uniform(-limit, limit, size=p.shape)
            elif kind == "weight_ih":  # identity (IRNN): torch's default input weights
                value = rng.uniform(-k, k, size=p.shape)
            else:  # biases, peepholes
                value = np.zeros(p.shape)
            p[...] = self._xp.asarray(value, dtype=p.dtype)
        if self.forget_bias is not None:
            for key, p in self.params.items():
                if key.startswith(("bias_ih", "bias_hh")):
                    p[H : 2 * H] = self.forget_bias if key.startswith("bias_ih") else 0.0

    def parameters(self) -> Iterator[Array]:
        """The parameter arrays, in torch's order (the arrays themselves, not copies)."""
        yield from self.params.values()

    def named_parameters(self) -> Iterator[tuple[str, Array]]:
        """``(key, array)`` for every parameter, in torch's order."""
        yield from self.params.items()

    def zero_grad(self) -> None:
        """Set every accumulated gradient in :attr:`grads` to zero (in place)."""
        for g in self.grads.values():
            g.fill(0)

    def state_dict(self) -> dict[str, Array]:
        """A copy of the parameters, keyed as torch's ``state_dict`` (the extra
        ``peepholes_l{k}[_reverse]`` keys with ``peepholes=True``). Load it into torch with
        ``{k: torch.from_numpy(v) for k, v in m.state_dict().items()}``."""
        return {key: p.copy() for key, p in self.params.items()}

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy parameters from ``state_dict`` (NumPy arrays, or torch tensors: anything with
        ``detach().cpu().numpy()`` or ``np.asarray``) into :attr:`params`, in place.

        Every shape is checked first (``ValueError``; nothing is copied if one is wrong);
        values of another floating dtype are cast (as torch does), non-floating values are a
        ``TypeError``, and so are tensors of a floating dtype NumPy lacks (``torch.bfloat16``,
        the float8 types: convert them first, e.g. ``.float()``). With ``strict=True`` a
        missing or unexpected key is a ``KeyError``; with ``strict=False`` they are ignored
        and returned.
        """
        name = type(self).__name__
        missing = [k for k in self.params if k not in state_dict]
        unexpected = [k for k in state_dict if k not in self.params]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append("missing keys: " + ", ".join(missing))
            if unexpected:
                parts.append("unexpected keys: " + ", ".join(unexpected))
            raise KeyError(f"error loading the state_dict of {self!r}: " + "; ".join(parts))
        values: dict[str, np.ndarray] = {}
        for key in self.params:
            if key not in state_dict:
                continue
            v = state_dict[key]
            no_numpy = _float_without_numpy(v)
            if no_numpy is not None:  # (NumPy has no such dtype to hold them)
                raise TypeError(
                    f"{key} must be a floating array of a dtype NumPy has (float16, float32 or "
                    f"float64), got dtype {no_numpy}; convert it explicitly, e.g. with .float()"
                )
            if hasattr(v, "detach") and hasattr(v, "cpu"):  # a torch tensor
                v = v.detach().cpu().numpy()
            elif is_device_array(v):  # CuPy, or any CUDA array
                v = rcuda.to_host(v)
            arr = np.asarray(v)
            if arr.dtype.kind != "f":
                raise TypeError(f"{key} must be a floating array, got dtype {arr.dtype}")
            if arr.shape != self.params[key].shape:
                raise ValueError(
                    f"{key} must have shape {self.params[key].shape} in {name}, got {arr.shape}"
                )
            values[key] = arr
        for key, arr in values.items():
            if not np.can_cast(arr.dtype, self.dtype, casting="same_kind"):
                raise TypeError(f"{key} of dtype {arr.dtype} cannot be cast to {self.dtype}")
        for key, arr in values.items():
            self.params[key][...] = self._xp.asarray(arr.astype(self.dtype, copy=False))
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ devices
    @property
    def device(self) -> str:
        """Where the parameters are: ``"cpu"`` or ``"cuda:N"`` (see :meth:`cuda`)."""
        return "cpu" if self._device is None else f"cuda:{self._device}"

    def cuda(self, device: int | None = None) -> RNNBase:
        """Move the parameters and gradients to CUDA device ``device`` (default: CuPy's
        current device) as CuPy arrays; returns the module. ``forward`` and ``backward`` then
        take and return CUDA arrays. Needs an ``RNNKIT_CUDA=ON`` build, a GPU and CuPy."""
        if not rcuda.cuda_available():
            raise RuntimeError(
                f"{type(self).__name__}.cuda() needs rnnkit built with RNNKIT_CUDA=ON and a "
                "CUDA device (rnnkit.cuda_available() is False)"
            )
        try:
            cupy = importlib.import_module("cupy")
        except ImportError as err:
            raise ImportError(
                f"{type(self).__name__}.cuda() keeps the parameters as CuPy arrays: install "
                "CuPy (pip install cupy-cuda12x or cupy-cuda13x), or use rnnkit.torch for "
                "torch CUDA tensors"
            ) from err
        if device is not None:
            _check_int("device", device, 0)
            if device >= rcuda.device_count():
                raise ValueError(
                    f"device must be in [0, {rcuda.device_count() - 1}] (the CUDA devices "
                    f"this process sees), got {device}"
                )
        index = int(cupy.cuda.Device().id if device is None else device)
        with cupy.cuda.Device(index):
            self._to_array_module(cupy, index)
        return self

    def cpu(self) -> RNNBase:
        """Move the parameters and gradients back to host memory (NumPy); returns the
        module."""
        if self._device is not None:
            self._to_array_module(np, None, to_host=rcuda.to_host)
        return self

    def _to_array_module(
        self, xp: Any, device: int | None, to_host: Callable[[Any], np.ndarray] | None = None
    ) -> None:
        """Re-make every parameter and gradient with ``xp`` (values kept); forget the
        last forward (its cache refers to the old arrays)."""
        for table in (self.params, self.grads):
            for key, value in table.items():
                host = to_host(value) if to_host is not None else value
                table[key] = xp.ascontiguousarray(xp.asarray(host, dtype=self.dtype))
        self._xp, self._device = xp, device
        self._tape = None
        self.dstate0 = None

    def _on_device(self) -> bool:
        return self._device is not None

    def _host_params(self) -> dict[str, np.ndarray]:
        """The parameters as NumPy arrays (copies when they are on a GPU): for exporters."""
        if not self._on_device():
            return self.params
        return {key: rcuda.to_host(p) for key, p in self.params.items()}

    def _kernel_array(self, a: _A) -> _A:
        """An array for a kernel call: C-contiguous on the GPU (the CUDA backend reads device
        arrays as they are, without copies); the CPU kernels take strided arrays."""
        if a is None or not self._on_device():
            return a
        return self._xp.ascontiguousarray(a)

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> RNNBase:
        """Training mode (the default): forward keeps what backward needs and applies
        dropout. Returns the module."""
        self.training = check_bool(mode, "mode")
        return self

    def eval(self) -> RNNBase:
        """Inference mode: forward keeps nothing (backward raises) and applies no dropout."""
        return self.train(False)

    # ------------------------------------------------------------------ pickle and copy
    #: The layout of :meth:`__getstate__`'s dict; a pickle of another layout is refused.
    _PICKLE_VERSION: ClassVar[int] = 1

    def __getstate__(self) -> dict[str, Any]:
        """Every attribute (parameters, gradients, options, :attr:`rng` with its position),
        for ``pickle`` and ``copy.deepcopy``, except what the last forward kept for backward:
        the kernels' caches refer to C++ buffers and do not pickle, so a copy runs forward
        again before its backward. The array module (NumPy or CuPy) goes by name."""
        return {
            **self.__dict__,
            "_tape": None,
            "_xp": self._xp.__name__,
            "_pickle_version": self._PICKLE_VERSION,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        version = state.pop("_pickle_version", None)
        if version != self._PICKLE_VERSION:
            raise ValueError(
                f"cannot unpickle a {type(self).__name__} of pickle version {version}; this "
                f"rnnkit reads version {self._PICKLE_VERSION}"
            )
        state["_xp"] = importlib.import_module(state["_xp"])
        self.__dict__.update(state)

    # ------------------------------------------------------------------ forward
    def __call__(
        self, x: Array, state: StateArg | None = None, lengths: ArrayLike | None = None
    ) -> tuple[Output, State]:
        """Same as :meth:`forward`."""
        return self.forward(x, state, lengths)

    def forward(
        self, x: Array, state: StateArg | None = None, lengths: ArrayLike | None = None
    ) -> tuple[Output, State]:
        """Run every layer and direction over ``x``; returns ``(y, state_n)``.

        ``x [T, B, I]`` (``[B, T, I]`` with ``batch_first``, ``[T, I]`` unbatched) of the
        module's dtype; ``state`` is ``h0 [L*D, B, R]`` or, for the LSTM, ``(h0, c0)`` with
        ``c0 [L*D, B, H]`` (``[L*D, R]``/``[L*D, H]`` unbatched), ``None`` for zeros;
        ``lengths`` is ``None`` or an integer array ``[B]`` with values in ``[0, T]``.

        ``y`` is ``[T, B, W]`` (``[B, T, W]`` with ``batch_first``), zero past each
        sequence's length; ``state_n`` has the structure of ``state`` and holds, for every
        layer and direction, the state after the sequence's last real step (for the reverse
        direction, after step 0). In training mode the module keeps what :meth:`backward`
        needs (replacing what the previous forward kept).
        """
        xt, unbatched = self._input(x)
        T, B = xt.shape[0], xt.shape[1]
        h0, c0 = self._state(state, B, unbatched, "state")
        LD, R, H = self.num_layers * self.num_directions, self.state_size, self.hidden_size
        xp = self._xp
        h_n = xp.empty((LD, B, R), dtype=self.dtype)
        c_n = xp.empty((LD, B, H), dtype=self.dtype) if self._cell == "lstm" else None
        training = self.training
        self._tape = None
        tape = _Tape(T, B, unbatched)
        inp = xt
        out: Array = xt
        for layer in range(self.num_layers):
            ys: list[Array] = []
            caches: list[RecurrentCache] = []

            def run(d: int, layer: int = layer, inp: Array = inp) -> _KernelOutput:
                i = layer * self.num_directions + d
                return self._kernel_forward(
                    layer,
                    d,
                    inp,
                    None if h0 is None else h0[i],
                    None if c0 is None else c0[i],
                    lengths,
                    training,
                )

            for d, (y, hn, cn, cache) in enumerate(self._each_direction(run)):
                i = layer * self.num_directions + d
                h_n[i] = hn
                if c_n is not None:
                    c_n[i] = cn
                ys.append(y)
                caches.append(cache)
            out, aux = self._merge(ys, keep=training)
            if self.residual and layer > 0:
                out += inp  # out is a fresh array that no cache refers to
            mask = None
            if training and self.dropout > 0 and layer < self.num_layers - 1:
                # Drawn on the host, so that a seed gives the same masks on the CPU and a GPU.
                keep = self.rng.random(out.shape) >= self.dropout
                mask = xp.asarray(keep * self.dtype.type(1.0 / (1.0 - self.dropout)))
                out = out * mask
            tape.layers.append(_Layer(caches, aux, mask))
            inp = out
        if training:
            self._tape = tape
        y_out = self._output(out, unbatched)
        if unbatched:
            h_n = h_n[:, 0]
            c_n = None if c_n is None else c_n[:, 0]
        return y_out, (h_n if c_n is None else (h_n, c_n))

    def _each_direction(self, fn: Callable[[int], _R]) -> list[_R]:
        """``[fn(d) for d in directions]``, the two directions of a bidirectional layer side
        by side (rnnkit._side_by_side)."""
        if self.num_directions == 1:
            return [fn(0)]
        if self._on_device():
            # The GPU queues both on the caller's stream (CuPy's current stream is per thread).
            return [fn(0), fn(1)]
        return list(side_by_side(lambda: fn(0), lambda: fn(1)))

    def _kernel_forward(
        self,
        layer: int,
        d: int,
        x: Array,
        h0: Array | None,
        c0: Array | None,
        lengths: ArrayLike | None,
        training: bool,
    ) -> _KernelOutput:
        s = self._suffix(layer, d)
        p = self.params
        args = (p["weight_ih" + s], p["weight_hh" + s], p.get("bias_ih" + s), p.get("bias_hh" + s))
        x, h0, c0 = self._kernel_array(x), self._kernel_array(h0), self._kernel_array(c0)
        common: dict[str, Any] = {
            "training": training,
            "lengths": lengths,
            "reverse": bool(d),
            "clip": self.clip,
        }
        if self._cell == "lstm":
            return F.lstm_forward(
                x,
                h0,
                c0,
                *args,
                w_hr=p.get("weight_hr" + s),
                peepholes=p.get("peepholes" + s),
                input_forget=self.input_forget,
                **common,
            )
        if self._cell == "gru":
            y, hn, cache = F.gru_forward(
                x, h0, *args, linear_before_reset=self.linear_before_reset, **common
            )
        else:
            y, hn, cache = F.rnn_forward(x, h0, *args, nonlinearity=self.nonlinearity, **common)
        return y, hn, None, cache

    def _merge(self, ys: list[Array], keep: bool) -> tuple[Array, tuple[np.ndarray, ...]]:
        """Combine the directions' outputs ``[T, B, R]`` into one ``[T, B, W]`` array (a
        fresh one), and what backward needs for it."""
        if len(ys) == 1:
            return ys[0], ()
        yf, yb = ys
        mode = self.merge_mode
        if mode in ("concat", None):
            if self._on_device():
                return self._xp.concatenate(ys, axis=2), ()
            out = _core._pooled_empty(
                yf.shape[0], yf.shape[1], yf.shape[2] + yb.shape[2], self.dtype == np.float64
            )
            return np.concatenate(ys, axis=2, out=out), ()
        if mode == "sum":
            return yf + yb, ()
        if mode == "mean":
            return (yf + yb) * self.dtype.type(0.5), ()
        if mode == "max":
            wins = yf >= yb
            return self._xp.where(wins, yf, yb), ((wins,) if keep else ())
        return yf * yb, ((yf, yb) if keep else ())  # mul

    def _unmerge(self, g: Array | None, rec: _Layer) -> list[Array | None]:
        """Backward of :meth:`_merge`: the gradient of each direction's output."""
        if self.num_directions == 1 or g is None:
            return [g] * self.num_directions
        mode, R = self.merge_mode, self.state_size
        if mode in ("concat", None):
            return [g[..., :R], g[..., R:]]
        if mode == "sum":
            return [g, g]
        if mode == "mean":
            half = g * self.dtype.type(0.5)
            return [half, half]
        if mode == "max":
            (wins,) = rec.merge_aux
            zero = self.dtype.type(0)
            xp = self._xp
            return [xp.where(wins, g, zero), xp.where(wins, zero, g)]
        yf, yb = rec.merge_aux  # mul
        return [g * yb, g * yf]

    # ------------------------------------------------------------------ backward
    def backward(self, dy: OutputGrad | None = None, dstate: StateArg | None = None) -> Array:
        """Backpropagation through time for the last :meth:`forward` (training mode).

        ``dy`` is the gradient of the loss with respect to ``y`` (same shape and layout;
        a tuple with ``merge_mode=None`` and two directions; ``None`` or tuple items
        ``None`` for zeros); ``dstate`` that with respect to ``state_n`` (``None``, or the
        structure of the state with ``None`` items allowed). Returns ``dx`` (the layout of
        ``x``), **adds** every parameter gradient into :attr:`grads` and stores the gradient
        of the initial state in :attr:`dstate0` (for truncated BPTT across chunks). It can
        be called more than once for one forward (the gradients add up).
        """
        tape = self._tape
        if tape is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward needs a forward in training mode first; "
                + (
                    "the module is in eval mode, where forward keeps nothing for backward: "
                    "call m.train() and run forward again"
                    if not self.training
                    else "no forward has been run since the module was built or put in train mode"
                )
            )
        T, B, unbatched = tape.T, tape.B, tape.unbatched
        g = self._grad_output(dy, T, B, unbatched)
        dh_n, dc_n = self._state(dstate, B, unbatched, "dstate")
        LD, D = self.num_layers * self.num_directions, self.num_directions
        xp = self._xp
        dh0 = xp.empty((LD, B, self.state_size), dtype=self.dtype)
        dc0 = (
            xp.empty((LD, B, self.hidden_size), dtype=self.dtype) if self._cell == "lstm" else None
        )
        dx: Array | None = None
        for layer in reversed(range(self.num_layers)):
            rec = tape.layers[layer]
            if rec.mask is not None and g is not None:
                g = g * rec.mask
            gds = self._unmerge(g, rec)
            dx = None

            def run(
                d: int, layer: int = layer, rec: _Layer = rec, gds: list[Array | None] = gds
            ) -> tuple[Array, Array, Array | None]:
                i = layer * D + d
                return self._kernel_backward(
                    layer,
                    d,
                    rec.caches[d],
                    gds[d],
                    None if dh_n is None else dh_n[i],
                    None if dc_n is None else dc_n[i],
                )

            for d, grads in enumerate(self._each_direction(run)):
                i = layer * D + d
                dh0[i] = grads[1]
                if dc0 is not None:
                    dc0[i] = grads[2]
                # in place: the kernel's dx arrays are fresh, and a third array would add to
                # the peak memory
                if dx is None:
                    dx = grads[0]
                else:
                    dx += grads[0]
            assert dx is not None
            if self.residual and layer > 0 and g is not None:
                dx += g
            g = dx
        assert dx is not None
        if unbatched:
            dx = dx[:, 0]
            dh0 = dh0[:, 0]
            dc0 = None if dc0 is None else dc0[:, 0]
        elif self.batch_first:
            dx = dx.transpose(1, 0, 2)
        self.dstate0 = dh0 if dc0 is None else (dh0, dc0)
        return dx

    def _kernel_backward(
        self,
        layer: int,
        d: int,
        cache: RecurrentCache,
        dy: Array | None,
        dh_n: Array | None,
        dc_n: Array | None,
    ) -> tuple[Array, Array, Array | None]:
        """One kernel backward; adds the parameter gradients to :attr:`grads` and returns
        ``(dx, dh0, dc0)``."""
        s = self._suffix(layer, d)
        dy, dh_n, dc_n = self._kernel_array(dy), self._kernel_array(dh_n), self._kernel_array(dc_n)
        if self._cell == "lstm":
            lg = F.lstm_backward(dy, dh_n, dc_n, cache)
            dx, dh0, dc0 = lg.dx, lg.dh0, lg.dc0
            pairs = [
                ("weight_ih", lg.dw_ih),
                ("weight_hh", lg.dw_hh),
                ("bias_ih", lg.db_ih),
                ("bias_hh", lg.db_hh),
                ("weight_hr", lg.dw_hr),
                ("peepholes", lg.dpeepholes),
            ]
        else:
            backward = F.gru_backward if self._cell == "gru" else F.rnn_backward
            sg = backward(dy, dh_n, cache)
            dx, dh0, dc0 = sg.dx, sg.dh0, None
            pairs = [
                ("weight_ih", sg.dw_ih),
                ("weight_hh", sg.dw_hh),
                ("bias_ih", sg.db_ih),
                ("bias_hh", sg.db_hh),
            ]
        for kind, grad in pairs:
            if grad is not None:
                self.grads[kind + s] += grad
        return dx, dh0, dc0

    # ------------------------------------------------------------------ boundary checks
    def _array(self, a: Any, name: str) -> Array:
        name_of = type(self).__name__
        no_numpy = _float_without_numpy(a)
        if no_numpy is not None:  # (np.asarray would raise torch's message, without the name)
            raise TypeError(
                f"{name} must have dtype {self.dtype} (the dtype of this {name_of}), got {no_numpy}"
            )
        if self._on_device():
            if not is_device_array(a):
                raise TypeError(
                    f"{name} must be a CUDA array (the parameters of this {name_of} are on "
                    f"{self.device}), got {type(a).__module__}.{type(a).__name__}; move it with "
                    "cupy.asarray, or the module back with .cpu()"
                )
            arr = self._xp.asarray(a)
        elif is_device_array(a):
            raise TypeError(
                f"{name} is a CUDA array but the parameters of this {name_of} are on the CPU: "
                "move the module with .cuda() (or the array to the host)"
            )
        else:
            arr = np.asarray(a)
        if arr.dtype != self.dtype:
            raise TypeError(
                f"{name} must have dtype {self.dtype} (the dtype of this {type(self).__name__}), "
                f"got {arr.dtype}; convert it with .astype(np.{self.dtype}) or build the module "
                f"with dtype=np.{arr.dtype}"
                if arr.dtype in _DTYPES
                else f"{name} must have dtype {self.dtype} (the dtype of this "
                f"{type(self).__name__}), got {arr.dtype}"
            )
        return arr

    def _input(self, x: Any) -> tuple[Array, bool]:
        """``x`` as a time-major ``[T, B, I]`` array, and whether it was unbatched."""
        arr = self._array(x, "x")
        layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
        if arr.ndim not in (2, 3) or arr.shape[-1] != self.input_size:
            raise ValueError(
                f"x must have shape {layout} (or (T, I) unbatched) with I = input_size = "
                f"{self.input_size}, got {arr.shape}"
            )
        if arr.ndim == 2:
            return arr[:, None, :], True
        return (arr.transpose(1, 0, 2) if self.batch_first else arr), False

    def _output(self, out: Array, unbatched: bool) -> Output:
        """The last layer's merged output ``[T, B, W]`` in the user's layout."""
        if unbatched:
            out = out[:, 0]
        elif self.batch_first:
            out = out.transpose(1, 0, 2)
        if self.merge_mode is None and self.num_directions == 2:
            R = self.state_size
            return out[..., :R], out[..., R:]
        return out

    def _grad_output(self, dy: OutputGrad | None, T: int, B: int, unbatched: bool) -> Array | None:
        """``dy`` in the user's layout as one time-major ``[T, B, W]`` array (or None)."""
        split = self.merge_mode is None and self.num_directions == 2
        lead = (T,) if unbatched else ((B, T) if self.batch_first else (T, B))
        if split:
            if dy is None:
                return None
            if not isinstance(dy, (tuple, list)) or len(dy) != 2:
                raise TypeError(
                    "dy must be a tuple (dy_forward, dy_backward) (or None) with "
                    f"merge_mode=None and bidirectional=True, got {type(dy).__name__}"
                )
            if dy[0] is None and dy[1] is None:
                return None
            R = self.state_size
            xp = self._xp
            parts = [
                xp.zeros((*lead, R), dtype=self.dtype)
                if p is None
                else self._checked(p, f"dy[{k}]", (*lead, R))
                for k, p in enumerate(dy)
            ]
            g = xp.concatenate(parts, axis=-1)
        else:
            if dy is None:
                return None
            if isinstance(dy, tuple):
                raise TypeError("dy must be an array (or None), got a tuple")
            g = self._checked(dy, "dy", (*lead, self.output_size))
        if unbatched:
            return g[:, None, :]
        return g.transpose(1, 0, 2) if self.batch_first else g

    def _checked(self, a: Any, name: str, shape: tuple[int, ...]) -> Array:
        arr = self._array(a, name)
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape} (that of y), got {arr.shape}")
        return arr

    def _state(
        self, state: StateArg | None, B: int, unbatched: bool, what: str
    ) -> tuple[Array | None, Array | None]:
        """Split and check a state (or state gradient); returns ``[L*D, B, .]`` arrays."""
        if state is None:
            return None, None
        LD = self.num_layers * self.num_directions
        lead = (LD,) if unbatched else (LD, B)
        if self._cell == "lstm":
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError(
                    f"{what} of an LSTM must be a tuple (h, c) or None, got {type(state).__name__}"
                )
            h, c = state
        else:
            if isinstance(state, (tuple, list)):
                raise TypeError(
                    f"{what} of a {type(self).__name__} must be one array h or None, got a "
                    f"{type(state).__name__}"
                )
            h, c = state, None
        out: list[Array | None] = []
        for arr, sub, width, letter in (
            (h, "h", self.state_size, "P" if self.proj_size else "H"),
            (c, "c", self.hidden_size, "H"),
        ):
            if arr is None:
                out.append(None)
                continue
            label = f"{what}[{0 if sub == 'h' else 1}] ({sub})" if self._cell == "lstm" else what
            a = self._array(arr, label)
            shape = (*lead, width)
            if a.shape != shape:
                doc = "(L*D, " + ("" if unbatched else "B, ") + letter + ")"
                raise ValueError(f"{label} must have shape {doc} = {shape}, got {a.shape}")
            out.append(a[:, None] if unbatched else a)
        return out[0], out[1]

    # ------------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        """The arguments that differ from their defaults, as torch prints them."""
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self._cell == "rnn" and self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.merge_mode != "concat":
            s += f", merge_mode={self.merge_mode!r}"
        if self.residual:
            s += ", residual=True"
        if self.peepholes:
            s += ", peepholes=True"
        if self.input_forget:
            s += ", input_forget=True"
        if not self.linear_before_reset:
            s += ", linear_before_reset=False"
        if self.clip is not None:
            s += f", clip={self.clip}"
        if self.init != "uniform":
            s += f", init={self.init!r}"
        if self.forget_bias is not None:
            s += f", forget_bias={self.forget_bias}"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype}"
        return s

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class LSTM(RNNBase):
    """Multi-layer LSTM, torch's ``nn.LSTM`` on NumPy arrays (see the module docstring).

    Parameters per layer ``k`` and direction (suffix ``""`` or ``"_reverse"``), gates
    (i, f, g, o): ``weight_ih_l{k} [4H, I_k]`` (I_0 = I, else the merged width W),
    ``weight_hh_l{k} [4H, R]``, ``bias_ih_l{k}``/``bias_hh_l{k} [4H]`` (``bias=True``),
    ``weight_hr_l{k} [P, H]`` (``proj_size > 0``), ``peepholes_l{k} [3, H]``
    (``peepholes=True``: p_i, p_f, p_o). State ``(h [L*D, B, R], c [L*D, B, H])``.

    >>> import numpy as np
    >>> m = LSTM(4, 8, num_layers=2, bidirectional=True, seed=0)
    >>> y, (h, c) = m.forward(np.zeros((5, 3, 4), np.float32))
    >>> y.shape, h.shape, c.shape
    ((5, 3, 16), (4, 3, 8), (4, 3, 8))
    """

    _cell = "lstm"
    _gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        dtype: DTypeLike | None = np.float32,
        seed: int | None = None,
        merge_mode: MergeMode | None = "concat",
        residual: bool = False,
        peepholes: bool = False,
        input_forget: bool = False,
        clip: float | None = None,
        init: Literal["uniform", "orthogonal"] = "uniform",
        forget_bias: float | None = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size=proj_size,
            dtype=dtype,
            seed=seed,
            merge_mode=merge_mode,
            residual=residual,
            clip=clip,
            init=init,
            forget_bias=forget_bias,
            peepholes=peepholes,
            input_forget=input_forget,
        )

    if TYPE_CHECKING:  # the same methods, with the LSTM's state type

        def forward(
            self, x: Array, state: StateArg | None = None, lengths: ArrayLike | None = None
        ) -> tuple[Output, tuple[Array, Array]]: ...

        def __call__(
            self, x: Array, state: StateArg | None = None, lengths: ArrayLike | None = None
        ) -> tuple[Output, tuple[Array, Array]]: ...


class GRU(RNNBase):
    """Multi-layer GRU, torch's ``nn.GRU`` on NumPy arrays (see the module docstring).

    Parameters as :class:`LSTM` with 3H gate rows (r, z, n) and no projection or peepholes.
    ``linear_before_reset=False`` applies the reset gate before the recurrent matmul (ONNX's
    default, Keras ``reset_after=False``). State ``h [L*D, B, H]``.
    """

    _cell = "gru"
    _gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        dtype: DTypeLike | None = np.float32,
        seed: int | None = None,
        merge_mode: MergeMode | None = "concat",
        residual: bool = False,
        linear_before_reset: bool = True,
        clip: float | None = None,
        init: Literal["uniform", "orthogonal"] = "uniform",
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype=dtype,
            seed=seed,
            merge_mode=merge_mode,
            residual=residual,
            clip=clip,
            init=init,
            linear_before_reset=linear_before_reset,
        )

    if TYPE_CHECKING:  # the same methods, with a single-array state

        def forward(
            self, x: Array, state: StateArg | None = None, lengths: ArrayLike | None = None
        ) -> tuple[Output, Array]: ...

        def __call__(
            self, x: Array, state: StateArg | None = None, lengths: ArrayLike | None = None
        ) -> tuple[Output, Array]: ...


class RNN(RNNBase):
    """Multi-layer Elman RNN, torch's ``nn.RNN`` on NumPy arrays (see the module docstring).

    ``h' = act(W_ih x + b_ih + W_hh h + b_hh)`` with ``act`` = ``nonlinearity`` (``"tanh"``
    or ``"relu"``); parameters as :class:`LSTM` with H gate rows. ``init="identity"`` is the
    IRNN (Le et al., 2015): ``weight_hh = I`` and zero biases, meant for ``"relu"``.
    State ``h [L*D, B, H]``.
    """

    _cell = "rnn"
    _gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        dtype: DTypeLike | None = np.float32,
        seed: int | None = None,
        merge_mode: MergeMode | None = "concat",
        residual: bool = False,
        clip: float | None = None,
        init: Init = "uniform",
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            nonlinearity=nonlinearity,
            dtype=dtype,
            seed=seed,
            merge_mode=merge_mode,
            residual=residual,
            clip=clip,
            init=init,
        )

    if TYPE_CHECKING:  # the same methods, with a single-array state

        def forward(
            self, x: Array, state: StateArg | None = None, lengths: ArrayLike | None = None
        ) -> tuple[Output, Array]: ...

        def __call__(
            self, x: Array, state: StateArg | None = None, lengths: ArrayLike | None = None
        ) -> tuple[Output, Array]: ...
