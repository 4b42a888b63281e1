"""Weights from and to the ONNX and Keras layouts (every gate reorder of rnnkit lives here).

rnnkit's modules (:mod:`rnnkit.nn`) use PyTorch's layout: ``weight_ih [G*H, I]``,
``weight_hh [G*H, H]``, ``bias_ih``/``bias_hh [G*H]``, gate order LSTM (i, f, g, o) and GRU
(r, z, n); ``peepholes [3, H]`` is (p_i, p_f, p_o). The other layouts (one direction each):

* ONNX: ``W [D, G*H, I]``, ``R [D, G*H, H]``, ``B [D, 2*G*H]`` (``Wb`` then ``Rb``) and the
  LSTM peepholes ``P [D, 3*H]``; gate order LSTM (i, o, f, c), GRU (z, r, h), P (i, o, f).
* Keras: ``kernel [I, G*H]``, ``recurrent_kernel [H, G*H]`` (transposed), ``bias [G*H]``
  (GRU with ``reset_after=True``: ``[2, G*H]``, input bias then recurrent bias); gate order
  LSTM (i, f, c, o), GRU (z, r, h).

* :func:`from_onnx` turns the attributes and weight inputs of an ONNX ``LSTM``/``GRU``/``RNN``
  node into an :class:`OnnxRecurrent`, which computes the node's outputs ``(Y, Y_h, Y_c)``
  from its inputs ``(X, sequence_lens, initial_h, initial_c)`` with rnnkit's kernels, and runs
  backpropagation through time; :func:`to_onnx_weights` goes the other way.
* :func:`from_keras` turns the weights of a Keras ``LSTM``/``GRU``/``SimpleRNN`` layer
  (``layer.get_weights()``) into an :mod:`rnnkit.nn` module; :func:`to_keras_weights` goes
  the other way (``layer.set_weights(w.weights)``).

Neither onnx nor Keras is needed: everything here works on NumPy arrays. The dtype of ``W``
(``kernel``) decides (float32 or float64); the other arrays must have the same dtype
(``TypeError`` otherwise: nothing is cast silently). Arrays are copied, never shared.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _functional as F
from . import nn
from ._checks import check_bool
from ._core import RecurrentCache

__all__ = [
    "KerasWeights",
    "OnnxOutput",
    "OnnxRecurrent",
    "OnnxWeights",
    "from_keras",
    "from_onnx",
    "to_keras_weights",
    "to_onnx_weights",
]

Array = NDArray[np.floating]
OnnxOp = Literal["LSTM", "GRU", "RNN"]
KerasKind = Literal["LSTM", "GRU", "SimpleRNN"]
ZeroLengthState = Literal["zeros", "initial"]

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_DIRECTIONS = ("forward", "reverse", "bidirectional")

# Gate permutations: block k of the target is block perm[k] of the source.
_LSTM_ONNX_FROM_TORCH = (0, 3, 1, 2)  # (i, o, f, c) from (i, f, g, o)
_LSTM_TORCH_FROM_ONNX = (0, 2, 3, 1)  # (i, f, g, o) from (i, o, f, c)
_GRU_SWAP = (1, 0, 2)  # (z, r, h) <-> (r, z, n): its own inverse
_PEEP_SWAP = (0, 2, 1)  # (i, o, f) <-> (i, f, o): its own inverse

#: The default activations of one direction (ONNX names); RNN also accepts ``"Relu"``.
_DEFAULT_ACTIVATIONS = {
    "LSTM": ("Sigmoid", "Tanh", "Tanh"),
    "GRU": ("Sigmoid", "Tanh"),
    "RNN": ("Tanh",),
}
_COMMON_ATTRIBUTES = (
    "activation_alpha",
    "activation_beta",
    "activations",
    "clip",
    "direction",
    "hidden_size",
    "layout",
)
_EXTRA_ATTRIBUTES = {"LSTM": ("input_forget",), "GRU": ("linear_before_reset",), "RNN": ()}


def _op_of(m: nn.RNNBase) -> OnnxOp:
    """``"LSTM"``, ``"GRU"`` or ``"RNN"`` from a module's ``mode`` (torch's)."""
    return "RNN" if m.mode.startswith("RNN") else m.mode  # type: ignore[return-value]


def _permute(a: np.ndarray, perm: tuple[int, ...], size: int) -> np.ndarray:
    """Reorder the gate blocks (``size`` rows each) of ``a`` along axis 0."""
    if perm == tuple(range(len(perm))):
        return np.array(a, copy=True)
    return np.concatenate([a[k * size : (k + 1) * size] for k in perm], axis=0)


def _torch_from_onnx_perm(op: str) -> tuple[int, ...]:
    return {"LSTM": _LSTM_TORCH_FROM_ONNX, "GRU": _GRU_SWAP, "RNN": (0,)}[op]


def _onnx_from_torch_perm(op: str) -> tuple[int, ...]:
    return {"LSTM": _LSTM_ONNX_FROM_TORCH, "GRU": _GRU_SWAP, "RNN": (0,)}[op]


def _float_array(a: Any, name: str, dtype: np.dtype[Any] | None) -> np.ndarray:
    """``a`` as a floating NumPy array; of ``dtype`` when given (``TypeError`` otherwise)."""
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # a torch tensor
        a = a.detach().cpu().numpy()
    arr = np.asarray(a)
    if dtype is None:
        if arr.dtype not in _DTYPES:
            raise TypeError(f"{name} must have dtype float32 or float64, got {arr.dtype}")
    elif arr.dtype != dtype:
        raise TypeError(
            f"{name} must have dtype {dtype} (the dtype of the weights), got {arr.dtype}"
        )
    return arr


def _check_shape(arr: np.ndarray, name: str, doc: str, shape: tuple[int, ...]) -> None:
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {doc} = {shape}, got {arr.shape}")


# ================================================================================== ONNX
class OnnxWeights(NamedTuple):
    """The attributes and weight inputs of an ONNX recurrent node (what
    :func:`to_onnx_weights` returns), in :func:`from_onnx`'s argument order, so that
    ``from_onnx(*w)`` rebuilds the module. ``B`` is ``None`` without biases, ``P`` without
    peepholes (both are optional ONNX inputs)."""

    op_type: OnnxOp
    attributes: dict[str, Any]
    W: Array  #: [D, G*H, I]
    R: Array  #: [D, G*H, H]
    B: Array | None  #: [D, 2*G*H]
    P: Array | None  #: [D, 3*H] (LSTM only)


class OnnxOutput(NamedTuple):
    """The outputs of an ONNX recurrent node (``Y_c`` is ``None`` for GRU and RNN).

    Layout 0: ``Y [T, D, B, H]``, ``Y_h``/``Y_c [D, B, H]``; layout 1: ``Y [B, T, D, H]``,
    ``Y_h``/``Y_c [B, D, H]``."""

    Y: Array
    Y_h: Array
    Y_c: Array | None


def _text(value: Any, name: str) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"attribute {name} must be a string, got {type(value).__name__}")


def _flag(attrs: Mapping[str, Any], name: str, default: int) -> int:
    value = attrs.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value not in (0, 1):
        raise ValueError(f"attribute {name} must be 0 or 1, got {value!r}")
    return int(value)


def _attribute_dict(attributes: Mapping[str, Any] | Iterable[Any] | None) -> dict[str, Any]:
    """A ``{name: value}`` dict from a mapping or from ONNX ``AttributeProto`` objects (a
    node's ``attribute`` field; decoded with ``onnx.helper.get_attribute_value``)."""
    if attributes is None:
        return {}
    if isinstance(attributes, Mapping):
        return dict(attributes)
    out: dict[str, Any] = {}
    a: Any
    for a in attributes:
        if not hasattr(a, "name"):
            raise TypeError(
                "attributes must be a mapping {name: value} or ONNX AttributeProto objects, got "
                f"an item of type {type(a).__name__}"
            )
        from onnx import helper  # only reached with onnx objects

        out[a.name] = helper.get_attribute_value(a)
    return out


def _check_activations(op: str, attrs: Mapping[str, Any], D: int) -> str:
    """Validate ``activations``/``activation_alpha``/``activation_beta``; returns the RNN
    nonlinearity (``"tanh"`` or ``"relu"``; ``"tanh"`` for LSTM and GRU)."""
    extra = [n for n in ("activation_alpha", "activation_beta") if len(attrs.get(n) or ()) > 0]
    if extra:
        raise NotImplementedError(
            f"ONNX {op} attribute(s) {', '.join(extra)} are not supported: rnnkit implements "
            "only the default activations, which take no alpha or beta"
        )
    given = attrs.get("activations")
    if given is None or len(given) == 0:
        return "tanh"
    names = [_text(a, "activations") for a in given]
    default = _DEFAULT_ACTIVATIONS[op]
    n = len(default)
    if len(names) not in (n, n * D):
        raise ValueError(
            f"attribute activations of an ONNX {op} with {D} direction(s) must list {n * D} "
            f"functions ({n} per direction), got {len(names)}: {names}"
        )
    if op == "RNN":
        kinds = {a.lower() for a in names}
        bad = [a for a in names if a.lower() not in ("tanh", "relu")]
        if bad:
            raise NotImplementedError(
                f"ONNX RNN activations {bad} are not supported: rnnkit implements Tanh (the "
                "default) and Relu"
            )
        if len(kinds) > 1:
            raise NotImplementedError(
                f"ONNX RNN activations {names}: rnnkit needs the same activation in both directions"
            )
        return kinds.pop()
    bad = [
        f"{a} (position {k}, expected {default[k % n]})"
        for k, a in enumerate(names)
        if a.lower() != default[k % n].lower()
    ]
    if bad:
        raise NotImplementedError(
            f"ONNX {op} activations {names} are not supported: rnnkit implements only the "
            f"default activations ({', '.join(default)} per direction); unsupported: "
            + ", ".join(bad)
        )
    return "tanh"


def from_onnx(
    op_type: str,
    attributes: Mapping[str, Any] | Iterable[Any] | None,
    W: ArrayLike,
    R: ArrayLike,
    B: ArrayLike | None = None,
    P: ArrayLike | None = None,
    *,
    zero_length_state: ZeroLengthState = "zeros",
) -> OnnxRecurrent:
    """An :class:`OnnxRecurrent` that computes what the ONNX node computes.

    ``op_type`` is ``"LSTM"``, ``"GRU"`` or ``"RNN"``; ``attributes`` the node's attributes as
    a ``{name: value}`` mapping (strings may be ``bytes``), or the node's ``attribute`` list
    of ``onnx.AttributeProto`` (decoded with onnx, which must then be installed); ``W``,
    ``R``, ``B`` and ``P`` the node's weight inputs (``B`` and ``P`` optional, as in ONNX).

    Supported: ``direction`` ``"forward"``, ``"reverse"`` and ``"bidirectional"``, ``layout``
    0 and 1, ``clip``, LSTM ``input_forget`` and peepholes ``P``, GRU ``linear_before_reset``
    0 and 1, ``hidden_size`` (checked against ``R``; inferred from it when absent) and the
    default ``activations`` (LSTM Sigmoid, Tanh, Tanh; GRU Sigmoid, Tanh; RNN Tanh, and Relu).
    Other activations, or ``activation_alpha``/``activation_beta``, raise
    ``NotImplementedError`` naming them; an unknown attribute, a bad value or a wrong shape
    raises ``ValueError``; a non-float or mixed dtype raises ``TypeError``.

    ``zero_length_state``: what ``Y_h``/``Y_c`` are for a sequence of length 0
    (``sequence_lens[b] == 0``), which the ONNX specification leaves open: ``"zeros"``
    (ONNX Runtime's choice, the default) or ``"initial"`` (``initial_h``/``initial_c``, what
    :mod:`rnnkit.nn` modules and kernels return).
    """
    op = op_type.upper() if isinstance(op_type, str) else op_type
    if op not in _GATES:
        raise ValueError(f"op_type must be 'LSTM', 'GRU' or 'RNN', got {op_type!r}")
    attrs = _attribute_dict(attributes)
    allowed = _COMMON_ATTRIBUTES + _EXTRA_ATTRIBUTES[op]
    unknown = sorted(set(attrs) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown attribute(s) of an ONNX {op}: {', '.join(unknown)} (known: "
            f"{', '.join(sorted(allowed))})"
        )
    direction = _text(attrs.get("direction", "forward"), "direction")
    if direction not in _DIRECTIONS:
        raise ValueError(
            f"attribute direction must be 'forward', 'reverse' or 'bidirectional', got "
            f"{direction!r}"
        )
    D = 2 if direction == "bidirectional" else 1
    layout = _flag(attrs, "layout", 0)
    nonlinearity = _check_activations(op, attrs, D)
    clip = attrs.get("clip")
    if clip is not None and (
        isinstance(clip, bool)
        or not isinstance(clip, (int, float, np.integer, np.floating))
        or not (math.isfinite(clip) and clip > 0)
    ):
        raise ValueError(f"attribute clip must be a positive finite number, got {clip!r}")
    input_forget = _flag(attrs, "input_forget", 0) if op == "LSTM" else 0
    lbr = _flag(attrs, "linear_before_reset", 0) if op == "GRU" else 0

    w = _float_array(W, "W", None)
    dtype = w.dtype
    r = _float_array(R, "R", dtype)
    G = _GATES[op]
    if r.ndim != 3:
        raise ValueError(f"R must have shape (D, {G}*H, H), got {r.shape}")
    hidden = attrs.get("hidden_size")
    if hidden is not None and (
        isinstance(hidden, bool) or not isinstance(hidden, (int, np.integer)) or hidden < 1
    ):
        raise ValueError(f"attribute hidden_size must be a positive int, got {hidden!r}")
    H = r.shape[2] if hidden is None else int(hidden)
    doc = f"D = {D} ({direction})" + ("" if hidden is None else f", H = hidden_size = {H}")
    _check_shape(r, "R", f"(D, {G}*H, H) with {doc}", (D, G * H, H))
    if w.ndim != 3:
        raise ValueError(f"W must have shape (D, {G}*H, I), got {w.shape}")
    I = w.shape[2]  # noqa: E741
    _check_shape(w, "W", f"(D, {G}*H, I) with D = {D} ({direction})", (D, G * H, I))
    b = None if B is None else _float_array(B, "B", dtype)
    if b is not None:
        _check_shape(b, "B", f"(D, {2 * G}*H)", (D, 2 * G * H))
    p = None if P is None else _float_array(P, "P", dtype)
    if p is not None:
        if op != "LSTM":
            raise ValueError(f"P (peepholes) is an input of the ONNX LSTM only, not of {op}")
        _check_shape(p, "P", "(D, 3*H)", (D, 3 * H))

    kw: dict[str, Any] = {
        "bias": b is not None,
        "batch_first": layout == 1,
        "bidirectional": D == 2,
        "dtype": dtype,
        "seed": 0,
        "merge_mode": None if D == 2 else "concat",
        "clip": None if clip is None else float(clip),
    }
    module: nn.RNNBase
    if op == "LSTM":
        module = nn.LSTM(I, H, peepholes=p is not None, input_forget=bool(input_forget), **kw)
    elif op == "GRU":
        module = nn.GRU(I, H, linear_before_reset=bool(lbr), **kw)
    else:
        module = nn.RNN(I, H, nonlinearity=nonlinearity, **kw)  # type: ignore[arg-type]
    perm = _torch_from_onnx_perm(op)
    state: dict[str, np.ndarray] = {}
    for d in range(D):
        s = "_l0" + ("_reverse" if d else "")
        state["weight_ih" + s] = _permute(w[d], perm, H)
        state["weight_hh" + s] = _permute(r[d], perm, H)
        if b is not None:
            state["bias_ih" + s] = _permute(b[d, : G * H], perm, H)
            state["bias_hh" + s] = _permute(b[d, G * H :], perm, H)
        if p is not None:
            state["peepholes" + s] = _permute(p[d], _PEEP_SWAP, H).reshape(3, H)
    module.load_state_dict(state)
    return OnnxRecurrent(
        module, reverse=direction == "reverse", zero_length_state=zero_length_state
    )


def _onnx_arrays(
    op: str, values: Mapping[str, np.ndarray], suffixes: list[str], H: int, bias: bool, peep: bool
) -> tuple[Array, Array, Array | None, Array | None]:
    """ONNX ``W, R, B, P`` from torch-named arrays (parameters or their gradients)."""
    perm = _onnx_from_torch_perm(op)
    W = np.stack([_permute(values["weight_ih" + s], perm, H) for s in suffixes])
    R = np.stack([_permute(values["weight_hh" + s], perm, H) for s in suffixes])
    B = None
    if bias:
        B = np.stack(
            [
                np.concatenate(
                    [
                        _permute(values["bias_ih" + s], perm, H),
                        _permute(values["bias_hh" + s], perm, H),
                    ]
                )
                for s in suffixes
            ]
        )
    P = None
    if peep:
        P = np.stack(
            [_permute(values["peepholes" + s], _PEEP_SWAP, 1).reshape(-1) for s in suffixes]
        )
    return W, R, B, P


class OnnxRecurrent:
    """An ONNX ``LSTM``/``GRU``/``RNN`` node run by rnnkit (made by :func:`from_onnx`).

    :meth:`forward` takes the node's inputs ``X``, ``sequence_lens``, ``initial_h`` and
    ``initial_c`` and returns its outputs ``(Y, Y_h, Y_c)`` (:class:`OnnxOutput`);
    :meth:`backward` takes their gradients and returns ``dX``, adding the parameter
    gradients into ``module.grads`` (also available in ONNX's layout from
    :meth:`onnx_grads`) and leaving those of the initial states in :attr:`dinitial_h` and
    :attr:`dinitial_c`.

    Attributes:

    * ``module``: the :mod:`rnnkit.nn` module (one layer, ``batch_first`` for ``layout=1``,
      ``bidirectional`` with ``merge_mode=None`` for ``"bidirectional"``) holding the
      parameters (torch's names and gate order) and their gradients. For ``"forward"`` and
      ``"bidirectional"`` nodes ``module.forward(X, state, lengths)`` is the same
      computation, with torch's output structure. For a ``"reverse"`` node the module is a
      one-direction module holding the reverse direction's weights, and :meth:`forward` runs
      them right to left through the functional kernels (``module.forward`` itself would run
      them left to right).
    * ``op_type``, ``direction``, ``layout``: the node's.
    * ``dinitial_h``, ``dinitial_c``: the gradients of ``initial_h``/``initial_c`` (ONNX's
      layout) left by the last :meth:`backward` (``dinitial_c`` ``None`` for GRU/RNN).
    """

    def __init__(
        self,
        module: nn.RNNBase,
        *,
        reverse: bool = False,
        zero_length_state: ZeroLengthState = "zeros",
    ) -> None:
        if not isinstance(module, nn.RNNBase):
            raise TypeError(f"module must be an rnnkit.nn module, got {type(module).__name__}")
        if module.num_layers != 1 or module.proj_size:
            raise ValueError(
                "an ONNX recurrent node is one layer without projection; got "
                f"num_layers={module.num_layers}, proj_size={module.proj_size}"
            )
        if reverse and module.bidirectional:
            raise ValueError("reverse=True needs a one-direction module")
        if module.bidirectional and module.merge_mode is not None:
            raise ValueError("a bidirectional module must have merge_mode=None")
        if zero_length_state not in ("zeros", "initial"):
            raise ValueError(
                f"zero_length_state must be 'zeros' or 'initial', got {zero_length_state!r}"
            )
        self.zero_length_state: ZeroLengthState = zero_length_state
        self.module = module
        self.op_type: OnnxOp = _op_of(module)
        self.direction: str = (
            "bidirectional" if module.bidirectional else ("reverse" if reverse else "forward")
        )
        self.layout: int = 1 if module.batch_first else 0
        self.dinitial_h: Array | None = None
        self.dinitial_c: Array | None = None
        #: (T, B) of the last forward, and the reverse direction's cache (training mode)
        self._shape: tuple[int, int] | None = None
        self._cache: RecurrentCache | None = None
        #: rows whose final state forward set to zero (length 0, ``zero_length_state="zeros"``)
        self._zeroed: np.ndarray | None = None

    @property
    def num_directions(self) -> int:
        """D: 2 for ``"bidirectional"``, else 1."""
        return self.module.num_directions

    def __repr__(self) -> str:
        return (
            f"OnnxRecurrent({self.op_type}, direction={self.direction!r}, layout={self.layout}, "
            f"module={self.module!r})"
        )

    # ------------------------------------------------------------------ layouts
    def _state_in(self, a: Any, name: str, B: int, width: int) -> Array | None:
        """An ONNX state (or its gradient) as ``[D, B, width]``, checked."""
        if a is None:
            return None
        m = self.module
        arr = _float_array(a, name, m.dtype)
        D = self.num_directions
        shape, doc = (
            ((D, B, width), "(D, B, H)") if self.layout == 0 else ((B, D, width), "(B, D, H)")
        )
        _check_shape(arr, name, f"{doc} (layout={self.layout})", shape)
        return arr if self.layout == 0 else arr.transpose(1, 0, 2)

    def _state_out(self, a: Array) -> Array:
        """``[D, B, H]`` in the node's layout."""
        return a if self.layout == 0 else np.ascontiguousarray(a.transpose(1, 0, 2))

    # ------------------------------------------------------------------ forward
    def __call__(
        self,
        X: ArrayLike,
        sequence_lens: ArrayLike | None = None,
        initial_h: ArrayLike | None = None,
        initial_c: ArrayLike | None = None,
    ) -> OnnxOutput:
        """Same as :meth:`forward`."""
        return self.forward(X, sequence_lens, initial_h, initial_c)

    def forward(
        self,
        X: ArrayLike,
        sequence_lens: ArrayLike | None = None,
        initial_h: ArrayLike | None = None,
        initial_c: ArrayLike | None = None,
    ) -> OnnxOutput:
        """The node's outputs for its inputs.

        ``X [T, B, I]`` (layout 0) or ``[B, T, I]`` (layout 1) of the weights' dtype;
        ``sequence_lens`` ``None`` or integers ``[B]`` in ``[0, T]``; ``initial_h`` and (LSTM)
        ``initial_c`` ``[D, B, H]`` (layout 0) or ``[B, D, H]`` (layout 1), ``None`` for zeros.
        Returns ``(Y, Y_h, Y_c)``: ``Y [T, D, B, H]`` or ``[B, T, D, H]``, zero past each
        sequence's length; ``Y_h``/``Y_c`` the final states (for the reverse direction the
        state after step 0), in the layout of ``initial_h``; ``Y_c`` is ``None`` for GRU/RNN.
        In training mode (``module.training``) what :meth:`backward` needs is kept.
        """
        m = self.module
        x = _float_array(X, "X", m.dtype)
        doc = "(T, B, I)" if self.layout == 0 else "(B, T, I)"
        if x.ndim != 3 or x.shape[2] != m.input_size:
            raise ValueError(
                f"X must have shape {doc} (layout={self.layout}) with I = {m.input_size}, got "
                f"{x.shape}"
            )
        B = x.shape[1 - self.layout]
        T = x.shape[self.layout]
        H = m.hidden_size
        lstm = self.op_type == "LSTM"
        h0 = self._state_in(initial_h, "initial_h", B, H)
        c0 = self._state_in(initial_c, "initial_c", B, H)
        if c0 is not None and not lstm:
            raise ValueError(f"initial_c is an input of the ONNX LSTM only, not of {self.op_type}")
        lengths = None if sequence_lens is None else np.asarray(sequence_lens)
        self._cache = None
        self._shape = None
        if self.direction == "reverse":
            xt = x if self.layout == 0 else x.transpose(1, 0, 2)
            p = m.params
            args = (p["weight_ih_l0"], p["weight_hh_l0"], p.get("bias_ih_l0"), p.get("bias_hh_l0"))
            common: dict[str, Any] = {
                "training": m.training,
                "lengths": lengths,
                "reverse": True,
                "clip": m.clip,
            }
            h0_ = None if h0 is None else h0[0]
            c_n: Array | None = None
            if lstm:
                y, h_n, c_n, cache = F.lstm_forward(
                    xt,
                    h0_,
                    None if c0 is None else c0[0],
                    *args,
                    peepholes=p.get("peepholes_l0"),
                    input_forget=m.input_forget,
                    **common,
                )
            elif self.op_type == "GRU":
                y, h_n, cache = F.gru_forward(
                    xt, h0_, *args, linear_before_reset=m.linear_before_reset, **common
                )
            else:
                y, h_n, cache = F.rnn_forward(xt, h0_, *args, nonlinearity=m.nonlinearity, **common)
            if m.training:
                self._cache = cache
            ys: list[Array] = [y if self.layout == 0 else y.transpose(1, 0, 2)]
            hs, cs = h_n[None], None if c_n is None else c_n[None]
        else:
            state: Any = h0 if not lstm else (None if h0 is None and c0 is None else (h0, c0))
            out, st = m.forward(x, state, lengths)
            ys = list(out) if isinstance(out, tuple) else [out]
            if isinstance(st, tuple):
                hs, cs = st
            else:
                hs, cs = st, None
        Y = np.stack(ys, axis=1 + self.layout)
        self._shape = (T, B)
        self._zeroed = None
        if lengths is not None and self.zero_length_state == "zeros":
            empty = np.asarray(lengths).reshape(-1) == 0
            if empty.any():
                hs = hs.copy()
                hs[:, empty] = 0
                if cs is not None:
                    cs = cs.copy()
                    cs[:, empty] = 0
                self._zeroed = empty
        return OnnxOutput(Y, self._state_out(hs), None if cs is None else self._state_out(cs))

    # ------------------------------------------------------------------ backward
    def backward(
        self,
        dY: ArrayLike | None = None,
        dY_h: ArrayLike | None = None,
        dY_c: ArrayLike | None = None,
    ) -> Array:
        """Backpropagation through time for the last :meth:`forward` (training mode).

        ``dY``, ``dY_h``, ``dY_c`` are the gradients of the loss with respect to ``Y``,
        ``Y_h``, ``Y_c`` (same shapes and layout; ``None`` for zeros). Returns ``dX`` (the
        layout of ``X``), **adds** the parameter gradients into ``module.grads`` (see
        :meth:`onnx_grads`) and sets :attr:`dinitial_h` / :attr:`dinitial_c`.
        """
        m = self.module
        lstm = self.op_type == "LSTM"
        if dY_c is not None and not lstm:
            raise ValueError(f"dY_c: the ONNX {self.op_type} has no output Y_c")
        D, H = self.num_directions, m.hidden_size
        if self._shape is None:
            raise RuntimeError("OnnxRecurrent.backward needs a forward in training mode first")
        T, B = self._shape
        if self.direction == "reverse":
            if self._cache is None:
                raise RuntimeError(
                    "OnnxRecurrent.backward needs a forward in training mode first; the last "
                    "forward ran in eval mode, which keeps nothing for backward (call train() "
                    "and run forward again)"
                )
            cache = self._cache
        lead = (T, D, B) if self.layout == 0 else (B, T, D)
        dy = None
        if dY is not None:
            dy = _float_array(dY, "dY", m.dtype)
            doc = "(T, D, B, H)" if self.layout == 0 else "(B, T, D, H)"
            _check_shape(dy, "dY", f"{doc} (that of Y)", (*lead, H))
        dh = self._state_in(dY_h, "dY_h", B, H)
        dc = self._state_in(dY_c, "dY_c", B, H)
        if self._zeroed is not None:  # those final states are constants: no gradient flows
            if dh is not None:
                dh = dh.copy()
                dh[:, self._zeroed] = 0
            if dc is not None:
                dc = dc.copy()
                dc[:, self._zeroed] = 0
        ax = 1 + self.layout
        if self.direction == "reverse":
            dyt = None if dy is None else np.take(dy, 0, axis=ax)
            if dyt is not None and self.layout == 1:
                dyt = dyt.transpose(1, 0, 2)
            dh_n = None if dh is None else dh[0]
            if lstm:
                lg = F.lstm_backward(dyt, dh_n, None if dc is None else dc[0], cache)
                dx, dh0, dc0 = lg.dx, lg.dh0, lg.dc0
                pairs = [
                    ("weight_ih", lg.dw_ih),
                    ("weight_hh", lg.dw_hh),
                    ("bias_ih", lg.db_ih),
                    ("bias_hh", lg.db_hh),
                    ("peepholes", lg.dpeepholes),
                ]
            else:
                backward = F.gru_backward if self.op_type == "GRU" else F.rnn_backward
                sg = backward(dyt, dh_n, cache)
                dx, dh0, dc0 = sg.dx, sg.dh0, None
                pairs = [
                    ("weight_ih", sg.dw_ih),
                    ("weight_hh", sg.dw_hh),
                    ("bias_ih", sg.db_ih),
                    ("bias_hh", sg.db_hh),
                ]
            for kind, grad in pairs:
                if grad is not None and kind + "_l0" in m.grads:
                    m.grads[kind + "_l0"] += grad
            if self.layout == 1:
                dx = dx.transpose(1, 0, 2)
            dh0s, dc0s = dh0[None], None if dc0 is None else dc0[None]
        else:
            g: Any = None
            if dy is not None:
                parts = [np.take(dy, d, axis=ax) for d in range(D)]
                g = tuple(parts) if D == 2 else parts[0]
            dstate: Any = None
            if lstm and (dh is not None or dc is not None):
                dstate = (dh, dc)
            elif not lstm:
                dstate = dh
            dx = m.backward(g, dstate)
            st = m.dstate0
            assert st is not None
            dh0s, dc0s = st if isinstance(st, tuple) else (st, None)
        self.dinitial_h = self._state_out(dh0s)
        self.dinitial_c = None if dc0s is None else self._state_out(dc0s)
        return dx

    # ------------------------------------------------------------------ weights
    def _suffixes(self) -> list[str]:
        return ["_l0", "_l0_reverse"][: self.num_directions]

    def onnx_grads(self) -> OnnxWeights:
        """The accumulated parameter gradients ``module.grads`` in ONNX's layout: an
        :class:`OnnxWeights` whose ``W, R, B, P`` are ``dW, dR, dB, dP``."""
        m = self.module
        W, R, B, P = _onnx_arrays(
            self.op_type, m.grads, self._suffixes(), m.hidden_size, m.bias, m.peepholes
        )
        return OnnxWeights(self.op_type, _onnx_attributes(m, self.direction), W, R, B, P)

    def zero_grad(self) -> None:
        """Zero ``module.grads`` (in place)."""
        self.module.zero_grad()

    def train(self, mode: bool = True) -> OnnxRecurrent:
        """Training mode (the default): forward keeps what backward needs."""
        self.module.train(mode)
        return self

    def eval(self) -> OnnxRecurrent:
        """Inference mode: forward keeps nothing."""
        return self.train(False)


def _onnx_attributes(m: nn.RNNBase, direction: str) -> dict[str, Any]:
    """The ONNX attributes of a node computing one layer of ``m`` in ``direction``."""
    op = _op_of(m)
    attrs: dict[str, Any] = {"hidden_size": m.hidden_size, "direction": direction}
    if m.batch_first:
        attrs["layout"] = 1
    if m.clip is not None:
        attrs["clip"] = m.clip
    if op == "LSTM" and m.input_forget:
        attrs["input_forget"] = 1
    if op == "GRU":
        attrs["linear_before_reset"] = int(m.linear_before_reset)
    if op == "RNN" and m.nonlinearity == "relu":
        attrs["activations"] = ["Relu"] * (2 if direction == "bidirectional" else 1)
    return attrs


def to_onnx_weights(module: OnnxRecurrent | nn.RNNBase, *, layer: int | None = None) -> OnnxWeights:
    """The ONNX node (``op_type``, ``attributes``, ``W``, ``R``, ``B``, ``P``) that computes
    what ``module`` computes: ``from_onnx(*to_onnx_weights(m))`` rebuilds it.

    ``module`` is an :class:`OnnxRecurrent` (its direction is kept, ``"reverse"`` included) or
    an :mod:`rnnkit.nn` module (``"forward"``, or ``"bidirectional"`` for a bidirectional
    one: ONNX keeps the two directions apart in ``Y [T, D, B, H]``, whatever the module's
    ``merge_mode``). A multi-layer module needs ``layer=k``: the weights of that layer alone
    (ONNX has one layer per node). Attributes: ``hidden_size``, ``direction``, ``layout``
    (1 for ``batch_first``), ``clip``, LSTM ``input_forget``, GRU ``linear_before_reset``
    (always written: ONNX's default is 0, rnnkit's 1) and RNN ``activations`` for Relu.
    ``B`` is ``None`` for ``bias=False``, ``P`` without peepholes. A projection
    (``proj_size``) has no ONNX equivalent (``ValueError``). Arrays are copies.
    """
    if isinstance(module, OnnxRecurrent):
        m = module.module
        if layer not in (None, 0):
            raise ValueError(f"layer must be None or 0 for an OnnxRecurrent, got {layer!r}")
        suffixes = module._suffixes()
        direction = module.direction
    elif isinstance(module, nn.RNNBase):
        m = module
        if m.proj_size:
            raise ValueError(
                f"the ONNX LSTM has no projection; this module has proj_size={m.proj_size}"
            )
        L = m.num_layers
        if layer is None:
            if L != 1:
                raise ValueError(
                    f"this module has num_layers={L}; ONNX has one layer per node: pass "
                    "layer=k to export layer k"
                )
            layer = 0
        _check_layer(layer, L)
        suffixes = [f"_l{layer}", f"_l{layer}_reverse"][: m.num_directions]
        direction = "bidirectional" if m.bidirectional else "forward"
    else:
        raise TypeError(
            "module must be an OnnxRecurrent or an rnnkit.nn LSTM/GRU/RNN, got "
            f"{type(module).__name__}"
        )
    op = _op_of(m)
    W, R, B, P = _onnx_arrays(op, m._host_params(), suffixes, m.hidden_size, m.bias, m.peepholes)
    return OnnxWeights(op, _onnx_attributes(m, direction), W, R, B, P)


def _check_layer(layer: Any, L: int) -> None:
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 0 <= layer < L:
        raise ValueError(f"layer must be an int in [0, {L - 1}], got {layer!r}")


# ================================================================================= Keras
class KerasWeights(NamedTuple):
    """The weights of a Keras recurrent layer (what :func:`to_keras_weights` returns), and
    the layer options they need in ``config`` (``reset_after`` for a GRU, ``activation``
    for a SimpleRNN), so that ``from_keras(w.kind, w.kernel, w.recurrent_kernel, w.bias,
    **w.config)`` rebuilds the module and ``layer.set_weights(w.weights)`` loads them."""

    kind: KerasKind
    kernel: Array  #: [I, G*H]
    recurrent_kernel: Array  #: [H, G*H]
    bias: Array | None  #: [G*H] (GRU reset_after=True: [2, G*H]); None without bias
    config: dict[str, Any]

    @property
    def weights(self) -> list[Array]:
        """``[kernel, recurrent_kernel, bias]`` (no bias without one), Keras's
        ``get_weights()`` order."""
        out = [self.kernel, self.recurrent_kernel]
        return out if self.bias is None else [*out, self.bias]


_KERAS_KINDS = {"LSTM": "lstm", "GRU": "gru", "SIMPLERNN": "rnn"}
_KERAS_NAMES: dict[str, KerasKind] = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}


def _keras_perm(cell: str) -> tuple[int, ...]:
    """torch from Keras (and Keras from torch): LSTM (i, f, c, o) is torch's order."""
    return {"lstm": (0, 1, 2, 3), "gru": _GRU_SWAP, "rnn": (0,)}[cell]


def from_keras(
    kind: str,
    kernel: ArrayLike,
    recurrent_kernel: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    reset_after: bool = True,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    batch_first: bool = True,
) -> nn.RNNBase:
    """An :mod:`rnnkit.nn` module that computes what a Keras recurrent layer computes.

    ``kind`` is ``"LSTM"``, ``"GRU"`` or ``"SimpleRNN"``; ``kernel [I, G*H]``,
    ``recurrent_kernel [H, G*H]`` and ``bias`` are the layer's weights
    (``layer.get_weights()``; ``bias=None`` for ``use_bias=False``): ``bias [G*H]``, or for
    a GRU with ``reset_after=True`` (Keras's default) ``[2, G*H]`` (input bias, then
    recurrent bias). ``reset_after=False`` gives ``linear_before_reset=False``.

    The module is one layer, one direction, ``batch_first=True`` by default (Keras's
    ``[B, T, I]``; pass ``batch_first=False`` for time-major input); ``y`` is Keras's
    ``return_sequences=True`` output and the final state its ``return_state`` states
    (``[1, B, H]``: index 0 of ours is Keras's state). Keras's single LSTM/SimpleRNN bias
    goes to ``bias_ih`` (``bias_hh`` is zero). Activations: LSTM and GRU need Keras's
    defaults (``activation="tanh"``, ``recurrent_activation="sigmoid"``); SimpleRNN takes
    ``"tanh"`` or ``"relu"``; others raise ``NotImplementedError``.
    """
    key = kind.upper() if isinstance(kind, str) else kind
    if key not in _KERAS_KINDS:
        raise ValueError(f"kind must be 'LSTM', 'GRU' or 'SimpleRNN', got {kind!r}")
    cell = _KERAS_KINDS[key]
    name = _KERAS_NAMES[cell]
    act = _text(activation, "activation").lower()
    rec_act = _text(recurrent_activation, "recurrent_activation").lower()
    if cell == "rnn":
        if act not in ("tanh", "relu"):
            raise NotImplementedError(
                f"Keras SimpleRNN activation={activation!r} is not supported: rnnkit implements "
                "'tanh' and 'relu'"
            )
    else:
        bad = [
            f"{n}={v!r}"
            for n, v, want in (
                ("activation", act, "tanh"),
                ("recurrent_activation", rec_act, "sigmoid"),
            )
            if v != want
        ]
        if bad:
            raise NotImplementedError(
                f"Keras {name} {', '.join(bad)} is not supported: rnnkit implements "
                "activation='tanh' and recurrent_activation='sigmoid' (Keras's defaults)"
            )
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    k = _float_array(kernel, "kernel", None)
    dtype = k.dtype
    rk = _float_array(recurrent_kernel, "recurrent_kernel", dtype)
    if rk.ndim != 2 or rk.shape[1] != G * rk.shape[0] or rk.shape[0] < 1:
        raise ValueError(f"recurrent_kernel must have shape (H, {G}*H), got {rk.shape}")
    H = rk.shape[0]
    if k.ndim != 2 or k.shape[1] != G * H:
        raise ValueError(f"kernel must have shape (I, {G}*H) with H = {H}, got {k.shape}")
    I = k.shape[0]  # noqa: E741
    b = None if bias is None else _float_array(bias, "bias", dtype)
    two = cell == "gru" and reset_after
    if b is not None:
        if two and b.shape != (2, G * H):
            hint = " (a bias of shape (3*H,) is reset_after=False)" if b.shape == (G * H,) else ""
            _check_shape(b, "bias", f"(2, 3*H) for reset_after=True{hint}", (2, G * H))
        if not two and b.shape != (G * H,):
            hint = " (a bias of shape (2, 3*H) is reset_after=True)" if cell == "gru" else ""
            _check_shape(b, "bias", f"({G}*H,){hint}", (G * H,))
    kw: dict[str, Any] = {
        "bias": b is not None,
        "batch_first": batch_first,
        "dtype": dtype,
        "seed": 0,
    }
    module: nn.RNNBase
    if cell == "lstm":
        module = nn.LSTM(I, H, **kw)
    elif cell == "gru":
        module = nn.GRU(I, H, linear_before_reset=bool(reset_after), **kw)
    else:
        module = nn.RNN(I, H, nonlinearity=act, **kw)  # type: ignore[arg-type]
    perm = _keras_perm(cell)
    state = {
        "weight_ih_l0": _permute(k.T, perm, H),
        "weight_hh_l0": _permute(rk.T, perm, H),
    }
    if b is not None:
        b_ih, b_hh = (b[0], b[1]) if two else (b, np.zeros_like(b))
        state["bias_ih_l0"] = _permute(b_ih, perm, H)
        state["bias_hh_l0"] = _permute(b_hh, perm, H)
    module.load_state_dict(state)
    return module


def to_keras_weights(
    module: nn.RNNBase | OnnxRecurrent, *, layer: int | None = None, reverse: bool | None = None
) -> KerasWeights:
    """The Keras layer weights (:class:`KerasWeights`) that compute what ``module`` computes.

    ``module`` is an :mod:`rnnkit.nn` LSTM, GRU or RNN (or an :class:`OnnxRecurrent` of
    direction forward or bidirectional); a multi-layer one needs ``layer=k``, and a
    bidirectional one ``reverse=False`` (its forward direction: the ``forward_layer`` of a
    Keras ``Bidirectional``) or ``reverse=True`` (the ``backward_layer``), since a Keras layer
    holds one direction. The two biases of the LSTM and the
    RNN, and of a GRU with ``linear_before_reset=False`` (``reset_after=False``), are summed
    into Keras's one bias (the same function); a GRU with ``linear_before_reset=True`` gives
    ``reset_after=True`` and a ``[2, 3*H]`` bias. Options Keras lacks (``proj_size``,
    peepholes, ``input_forget``, ``clip``) raise ``ValueError``.
    """
    if isinstance(module, OnnxRecurrent):
        if module.direction == "reverse":
            raise ValueError(
                "a reverse-only ONNX node has no plain Keras equivalent (Keras's "
                "go_backwards=True also reverses the output sequence)"
            )
        module = module.module
    if not isinstance(module, nn.RNNBase):
        raise TypeError(f"module must be an rnnkit.nn LSTM/GRU/RNN, got {type(module).__name__}")
    m = module
    lacking = [
        n
        for n, on in (
            ("proj_size", m.proj_size),
            ("peepholes", m.peepholes),
            ("input_forget", m.input_forget),
            ("clip", m.clip is not None),
        )
        if on
    ]
    if lacking:
        raise ValueError(f"Keras recurrent layers have no {', '.join(lacking)}; this is {m!r}")
    L = m.num_layers
    if layer is None:
        if L != 1:
            raise ValueError(
                f"this module has num_layers={L}; a Keras layer is one layer: pass layer=k"
            )
        layer = 0
    _check_layer(layer, L)
    if reverse is None:
        if m.bidirectional:
            raise ValueError(
                "this module is bidirectional; a Keras layer is one direction: pass "
                "reverse=False (Bidirectional's forward_layer) or reverse=True (its "
                "backward_layer)"
            )
        reverse = False
    reverse = check_bool(reverse, "reverse")
    if reverse and not m.bidirectional:
        raise ValueError("reverse=True needs a bidirectional module")
    s = f"_l{layer}" + ("_reverse" if reverse else "")
    H, p = m.hidden_size, m._host_params()
    cell = _op_of(m).lower()
    perm = _keras_perm(cell)
    kernel = np.ascontiguousarray(_permute(p["weight_ih" + s], perm, H).T)
    recurrent = np.ascontiguousarray(_permute(p["weight_hh" + s], perm, H).T)
    bias: Array | None = None
    config: dict[str, Any] = {}
    two = cell == "gru" and m.linear_before_reset
    if cell == "gru":
        config["reset_after"] = bool(m.linear_before_reset)
    if cell == "rnn":
        config["activation"] = m.nonlinearity
    if m.bias:
        b_ih = _permute(p["bias_ih" + s], perm, H)
        b_hh = _permute(p["bias_hh" + s], perm, H)
        bias = np.stack([b_ih, b_hh]) if two else b_ih + b_hh
    return KerasWeights(_KERAS_NAMES[cell], kernel, recurrent, bias, config)
