"""Tests of ``rnnkit.convert``: ONNX and Keras weights to and from rnnkit modules.

* ONNX: :class:`OnnxRecurrent` against an independent NumPy transcription of the ONNX
  operator definitions (ONNX gate orders and layouts written out here, nothing taken from
  ``rnnkit.convert``) for every attribute combination; against ONNX Runtime (layout 0: ORT
  refuses ``layout=1``; float32: ORT has no float64 kernels for these ops) and against
  ``onnx.reference.ReferenceEvaluator`` for ``layout=1``, when those are installed;
  gradients by central differences in float64; round trips.
* Keras: the modules of :func:`from_keras` against an independent NumPy transcription of
  Keras's LSTM, GRU (``reset_after`` both ways) and SimpleRNN cells; round trips.
* Bad arguments and the messages they raise.

Shapes: T time steps, B batch, I input size, H hidden size, D directions.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from rnnkit import convert, nn

T, B, I, H = 5, 3, 4, 6  # noqa: E741
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
LENGTHS = np.array([5, 0, 3], np.int32)  # one full, one empty, one partial sequence

#: (op_type, attributes other than direction/layout, with P, with B)
VARIANTS: list[tuple[str, dict[str, Any], bool, bool]] = [
    ("LSTM", {}, False, True),
    ("LSTM", {}, True, True),
    ("LSTM", {"input_forget": 1}, False, True),
    ("LSTM", {"clip": 0.7}, True, True),
    ("LSTM", {"input_forget": 1, "clip": 0.5}, True, False),
    ("GRU", {}, False, True),
    ("GRU", {"linear_before_reset": 1}, False, True),
    ("GRU", {"linear_before_reset": 0, "clip": 0.6}, False, True),
    ("GRU", {"linear_before_reset": 1, "clip": 0.6}, False, False),
    ("RNN", {}, False, True),
    ("RNN", {"activations": ["Relu"]}, False, True),
    ("RNN", {"activations": ["Relu"], "clip": 1.2}, False, True),
    ("RNN", {"clip": 0.5}, False, False),
]
DIRECTIONS = ("forward", "reverse", "bidirectional")


def _variant_id(v: tuple[str, dict[str, Any], bool, bool]) -> str:
    op, attrs, peep, bias = v
    parts = [op] + [f"{k}={v}" for k, v in attrs.items()]
    parts += ["P"] if peep else []
    parts += [] if bias else ["noB"]
    return "-".join(str(p) for p in parts)


# ============================================================== ONNX, written out in NumPy
def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def onnx_numpy(
    op: str,
    attrs: dict[str, Any],
    X: np.ndarray,
    W: np.ndarray,
    R: np.ndarray,
    Bias: np.ndarray | None = None,
    P: np.ndarray | None = None,
    seq: np.ndarray | None = None,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The ONNX LSTM/GRU/RNN operator, one sequence and one step at a time, from the
    equations of the ONNX specification (gate orders i, o, f, c / z, r, h; ``B`` = Wb then
    Rb; ``P`` = i, o, f), with ONNX Runtime's choice of a zero final state for a sequence of
    length 0. Computed in the inputs' dtype."""
    layout = attrs.get("layout", 0)
    direction = attrs.get("direction", "forward")
    clip = attrs.get("clip")
    relu = [a.lower() for a in attrs.get("activations", [])][:1] == ["relu"]
    if layout == 1:  # to layout 0
        X = X.transpose(1, 0, 2)
        h0 = None if h0 is None else h0.transpose(1, 0, 2)
        c0 = None if c0 is None else c0.transpose(1, 0, 2)
    nT, nB = X.shape[0], X.shape[1]
    D, nH = W.shape[0], R.shape[2]
    G = GATES[op]
    dt = X.dtype
    Y = np.zeros((nT, D, nB, nH), dt)
    Y_h = np.zeros((D, nB, nH), dt)
    Y_c = np.zeros((D, nB, nH), dt)

    def cl(a: np.ndarray) -> np.ndarray:
        return a if clip is None else np.clip(a, -clip, clip)

    for d in range(D):
        backwards = direction == "reverse" or d == 1
        Wd, Rd = W[d], R[d]
        Wb = np.zeros(G * nH, dt) if Bias is None else Bias[d, : G * nH]
        Rb = np.zeros(G * nH, dt) if Bias is None else Bias[d, G * nH :]
        Pd = np.zeros((3, nH), dt) if P is None else P[d].reshape(3, nH)
        for b in range(nB):
            n = nT if seq is None else int(seq[b])
            h = np.zeros(nH, dt) if h0 is None else h0[d, b].copy()
            c = np.zeros(nH, dt) if c0 is None else c0[d, b].copy()
            for t in range(n - 1, -1, -1) if backwards else range(n):
                x = X[t, b]
                if op == "LSTM":
                    a_i, a_o, a_f, a_c = np.split(Wd @ x + Rd @ h + Wb + Rb, 4)
                    p_i, p_o, p_f = Pd
                    i = _sigmoid(cl(a_i + p_i * c))
                    f = 1 - i if attrs.get("input_forget", 0) else _sigmoid(cl(a_f + p_f * c))
                    c = f * c + i * np.tanh(cl(a_c))
                    o = _sigmoid(cl(a_o + p_o * c))
                    h = o * np.tanh(c)
                elif op == "GRU":
                    x_z, x_r, x_h = np.split(Wd @ x + Wb, 3)
                    R_z, R_r, R_h = np.split(Rd, 3)
                    b_z, b_r, b_h = np.split(Rb, 3)
                    z = _sigmoid(cl(x_z + R_z @ h + b_z))
                    r = _sigmoid(cl(x_r + R_r @ h + b_r))
                    if attrs.get("linear_before_reset", 0):
                        hh = np.tanh(cl(x_h + r * (R_h @ h + b_h)))
                    else:
                        hh = np.tanh(cl(x_h + R_h @ (r * h) + b_h))
                    h = (1 - z) * hh + z * h
                else:
                    a = cl(Wd @ x + Rd @ h + Wb + Rb)
                    h = np.maximum(a, 0) if relu else np.tanh(a)
                Y[t, d, b] = h
            if n > 0:
                Y_h[d, b], Y_c[d, b] = h, c
    if layout == 1:
        Y = Y.transpose(2, 0, 1, 3)
        Y_h = Y_h.transpose(1, 0, 2)
        Y_c = Y_c.transpose(1, 0, 2)
    return Y, Y_h, (Y_c if op == "LSTM" else None)


def problem(
    rng: np.random.Generator,
    op: str,
    direction: str,
    layout: int,
    *,
    peep: bool = False,
    bias: bool = True,
    dtype: type = np.float64,
    shape: tuple[int, int, int, int] = (T, B, I, H),
    scale: float = 0.6,
) -> dict[str, Any]:
    """Random ONNX inputs: X, W, R, B, P, initial_h, initial_c (not sequence_lens)."""
    nT, nB, nI, nH = shape
    G, D = GATES[op], 2 if direction == "bidirectional" else 1

    def arr(*s: int) -> np.ndarray:
        return (scale * rng.standard_normal(s)).astype(dtype)

    state = (D, nB, nH) if layout == 0 else (nB, D, nH)
    return {
        "X": arr(nT, nB, nI) if layout == 0 else arr(nB, nT, nI),
        "W": arr(D, G * nH, nI),
        "R": arr(D, G * nH, nH),
        "B": arr(D, 2 * G * nH) if bias else None,
        "P": arr(D, 3 * nH) if peep else None,
        "initial_h": arr(*state),
        "initial_c": arr(*state) if op == "LSTM" else None,
    }


def attributes(
    attrs: dict[str, Any], direction: str, layout: int, hidden_size: int = H
) -> dict[str, Any]:
    """``attrs`` with direction, layout and hidden_size; activations for both directions."""
    out = dict(attrs, direction=direction, layout=layout, hidden_size=hidden_size)
    if "activations" in out and direction == "bidirectional":
        out["activations"] = out["activations"] * 2
    return out


def build(op: str, attrs: dict[str, Any], p: dict[str, Any], **kw: Any) -> convert.OnnxRecurrent:
    return convert.from_onnx(op, attrs, p["W"], p["R"], p["B"], p["P"], **kw)


def run(rec: convert.OnnxRecurrent, p: dict[str, Any], seq: np.ndarray | None) -> Any:
    return rec.forward(p["X"], seq, p["initial_h"], p["initial_c"])


def assert_outputs(got: Any, want: tuple[Any, ...], atol: float, rtol: float = 0.0) -> None:
    for name, g, w in zip(("Y", "Y_h", "Y_c"), got, want, strict=True):
        if w is None:
            assert g is None, name
            continue
        assert g.shape == w.shape, (name, g.shape, w.shape)
        assert g.dtype == w.dtype, (name, g.dtype, w.dtype)
        np.testing.assert_allclose(g, w, atol=atol, rtol=rtol, err_msg=name)


# ------------------------------------------------------------------ against the NumPy ONNX
@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("layout", [0, 1])
def test_onnx_matches_the_operator_definition(
    rng: np.random.Generator,
    variant: tuple[str, dict[str, Any], bool, bool],
    direction: str,
    layout: int,
) -> None:
    op, extra, peep, bias = variant
    attrs = attributes(extra, direction, layout)
    p = problem(rng, op, direction, layout, peep=peep, bias=bias)
    rec = build(op, attrs, p)
    assert (rec.op_type, rec.direction, rec.layout) == (op, direction, layout)
    for seq in (None, LENGTHS):
        want = onnx_numpy(
            op, attrs, p["X"], p["W"], p["R"], p["B"], p["P"], seq, p["initial_h"], p["initial_c"]
        )
        assert_outputs(run(rec, p, seq), want, atol=1e-12)
    # no initial state: zeros
    want = onnx_numpy(op, attrs, p["X"], p["W"], p["R"], p["B"], p["P"])
    assert_outputs(rec.forward(p["X"]), want, atol=1e-12)


def test_onnx_float32(rng: np.random.Generator) -> None:
    attrs = attributes({"clip": 0.8}, "bidirectional", 1)
    p = problem(rng, "LSTM", "bidirectional", 1, peep=True, dtype=np.float32)
    out = run(build("LSTM", attrs, p), p, LENGTHS)
    p64: dict[str, Any] = {k: None if v is None else v.astype(np.float64) for k, v in p.items()}
    want = onnx_numpy(
        "LSTM",
        attrs,
        p64["X"],
        p64["W"],
        p64["R"],
        p64["B"],
        p64["P"],
        LENGTHS,
        p64["initial_h"],
        p64["initial_c"],
    )
    for g, w in zip(out, want, strict=True):
        assert g is not None and w is not None
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, atol=2e-6)


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_zero_length_state(rng: np.random.Generator, op: str) -> None:
    """ONNX Runtime's zero final state for an empty sequence, or the initial state."""
    attrs = attributes({}, "bidirectional", 0)
    p = problem(rng, op, "bidirectional", 0)
    zeros = run(build(op, attrs, p), p, LENGTHS)
    initial = run(build(op, attrs, p, zero_length_state="initial"), p, LENGTHS)
    np.testing.assert_array_equal(zeros.Y, initial.Y)
    for z, i, s0 in (
        (zeros.Y_h, initial.Y_h, p["initial_h"]),
        (zeros.Y_c, initial.Y_c, p["initial_c"]),
    ):
        if s0 is None:
            assert z is None and i is None
            continue
        assert not z[:, 1].any()
        np.testing.assert_array_equal(i[:, 1], s0[:, 1])
        np.testing.assert_array_equal(z[:, [0, 2]], i[:, [0, 2]])


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_the_inner_module_is_the_same_computation(
    rng: np.random.Generator, op: str, direction: str
) -> None:
    """For forward and bidirectional nodes, ``rec.module.forward`` computes the same."""
    p = problem(rng, op, direction, 1, peep=op == "LSTM")
    rec = build(op, attributes({}, direction, 1), p)
    seq = np.array([5, 1, 3])
    out = run(rec, p, seq)
    h0 = p["initial_h"].transpose(1, 0, 2)
    state = h0 if op != "LSTM" else (h0, p["initial_c"].transpose(1, 0, 2))
    y, st = rec.module.forward(p["X"], state, seq)
    ys = y if isinstance(y, tuple) else (y,)
    for d, yd in enumerate(ys):
        np.testing.assert_array_equal(out.Y[:, :, d], yd)
    h_n: Any = st[0] if isinstance(st, tuple) else st
    np.testing.assert_array_equal(out.Y_h, h_n.transpose(1, 0, 2))
    assert rec.module.batch_first
    assert rec.module.merge_mode is (None if direction == "bidirectional" else "concat")


# ---------------------------------------------------------------------- ONNX Runtime / onnx
def onnx_model(op: str, attrs: dict[str, Any], feeds: dict[str, np.ndarray]) -> Any:
    """A one-node ONNX model of ``op`` whose graph inputs are ``feeds`` (optional inputs
    left out are empty names)."""
    from onnx import TensorProto, helper

    order = ["X", "W", "R", "B", "sequence_lens", "initial_h"]
    order += ["initial_c", "P"] if op == "LSTM" else []
    names = [n if n in feeds else "" for n in order]
    while names[-1] == "":
        names.pop()
    dt = TensorProto.FLOAT if feeds["X"].dtype == np.float32 else TensorProto.DOUBLE
    inputs = [
        helper.make_tensor_value_info(
            n, TensorProto.INT32 if n == "sequence_lens" else dt, feeds[n].shape
        )
        for n in names
        if n
    ]
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, names, outs, **attrs)
    graph = helper.make_graph(
        [node], "g", inputs, [helper.make_tensor_value_info(o, dt, None) for o in outs]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model


def feeds_of(p: dict[str, Any], seq: np.ndarray | None) -> dict[str, np.ndarray]:
    feeds = {k: v for k, v in p.items() if v is not None}
    if seq is not None:
        feeds["sequence_lens"] = seq.astype(np.int32)
    return feeds


@pytest.fixture(scope="module")
def ort_run() -> Callable[[Any, dict[str, np.ndarray]], list[np.ndarray]]:
    ort = pytest.importorskip("onnxruntime")

    def run_model(model: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        sess = ort.InferenceSession(
            model.SerializeToString(), so, providers=["CPUExecutionProvider"]
        )
        return list(sess.run(None, feeds))

    return run_model


@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_onnx_matches_onnxruntime(
    rng: np.random.Generator,
    ort_run: Callable[[Any, dict[str, np.ndarray]], list[np.ndarray]],
    variant: tuple[str, dict[str, Any], bool, bool],
    direction: str,
) -> None:
    """Every attribute combination against ONNX Runtime (float32, layout 0: ORT has neither
    float64 kernels nor ``layout=1`` for these ops), the attributes read from the node."""
    op, extra, peep, bias = variant
    attrs = attributes(extra, direction, 0)
    p = problem(rng, op, direction, 0, peep=peep, bias=bias, dtype=np.float32)
    for seq in (None, LENGTHS):
        model = onnx_model(op, attrs, feeds_of(p, seq))
        want = ort_run(model, feeds_of(p, seq))
        node = model.graph.node[0]
        rec = build(op, node.attribute, p)  # AttributeProto objects, decoded with onnx
        got = run(rec, p, seq)
        assert_outputs(got, (*want, None)[:3], atol=1e-5, rtol=1e-5)


def test_onnx_layout1_matches_onnx_reference(rng: np.random.Generator) -> None:
    """``layout=1`` against onnx's reference evaluator (which ignores sequence_lens)."""
    pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    for (op, extra, peep, bias), direction in itertools.product(
        [VARIANTS[1], VARIANTS[5], VARIANTS[6], VARIANTS[9]], DIRECTIONS
    ):
        attrs = attributes(extra, direction, 1)
        p = problem(rng, op, direction, 1, peep=peep, bias=bias, dtype=np.float32)
        feeds = feeds_of(p, None)
        want = ReferenceEvaluator(onnx_model(op, attrs, feeds)).run(None, feeds)
        assert_outputs(run(build(op, attrs, p), p, None), (*want, None)[:3], atol=1e-5)


# -------------------------------------------------------------------------- ONNX gradients
def _loss_and_grads(
    op: str, attrs: dict[str, Any], p: dict[str, Any], seq: np.ndarray, g: tuple[Any, ...]
) -> float:
    out = run(build(op, attrs, p), p, seq)
    return float(sum(np.sum(o * w) for o, w in zip(out, g, strict=True) if o is not None))


@pytest.mark.parametrize(
    ("op", "extra", "peep", "direction", "layout"),
    [
        ("LSTM", {}, True, "bidirectional", 1),
        ("LSTM", {"input_forget": 1}, True, "reverse", 0),
        ("GRU", {"linear_before_reset": 0}, False, "reverse", 1),
        ("GRU", {"linear_before_reset": 1}, False, "bidirectional", 0),
        ("RNN", {}, False, "forward", 0),
        ("RNN", {}, False, "reverse", 1),
    ],
)
def test_onnx_gradients_by_finite_differences(
    rng: np.random.Generator,
    op: str,
    extra: dict[str, Any],
    peep: bool,
    direction: str,
    layout: int,
) -> None:
    """dX, dW, dR, dB, dP, d initial_h / initial_c of a random linear loss of Y, Y_h, Y_c."""
    attrs = attributes(extra, direction, layout, hidden_size=2)
    p = problem(rng, op, direction, layout, peep=peep, shape=(3, 3, 2, 2))
    seq = np.array([3, 0, 2])
    rec = build(op, attrs, p)
    out = run(rec, p, seq)
    g = tuple(None if o is None else rng.standard_normal(o.shape) for o in out)
    dX = rec.backward(*g)
    grads = rec.onnx_grads()
    analytic: dict[str, Any] = {
        "X": dX,
        "W": grads.W,
        "R": grads.R,
        "B": grads.B,
        "P": grads.P,
        "initial_h": rec.dinitial_h,
        "initial_c": rec.dinitial_c,
    }
    eps = 1e-6
    for name, a in analytic.items():
        if p[name] is None:
            assert a is None, name
            continue
        assert a.shape == p[name].shape, name
        numeric = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            q = {k: (v.copy() if k == name else v) for k, v in p.items()}
            q[name][idx] += eps
            up = _loss_and_grads(op, attrs, q, seq, g)
            q[name][idx] -= 2 * eps
            numeric[idx] = (up - _loss_and_grads(op, attrs, q, seq, g)) / (2 * eps)
        np.testing.assert_allclose(a, numeric, atol=1e-8, rtol=1e-6, err_msg=name)


def test_onnx_backward_accumulates_and_eval_keeps_nothing(rng: np.random.Generator) -> None:
    p = problem(rng, "GRU", "reverse", 0)
    rec = build("GRU", attributes({}, "reverse", 0), p)
    out = run(rec, p, None)
    rec.backward(np.ones_like(out.Y))
    once = rec.onnx_grads().W.copy()
    rec.backward(np.ones_like(out.Y))
    np.testing.assert_allclose(rec.onnx_grads().W, 2 * once)
    rec.zero_grad()
    assert not rec.onnx_grads().W.any()
    rec.eval()
    run(rec, p, None)
    with pytest.raises(RuntimeError, match="training mode"):
        rec.backward(np.ones_like(out.Y))
    bi = build("GRU", attributes({}, "bidirectional", 0), problem(rng, "GRU", "bidirectional", 0))
    with pytest.raises(RuntimeError, match="forward"):
        bi.backward()


# --------------------------------------------------------------------------- ONNX round trips
@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_onnx_round_trip(
    rng: np.random.Generator, variant: tuple[str, dict[str, Any], bool, bool], direction: str
) -> None:
    op, extra, peep, bias = variant
    attrs = attributes(extra, direction, 1)
    p = problem(rng, op, direction, 1, peep=peep, bias=bias, dtype=np.float32)
    w = convert.to_onnx_weights(build(op, attrs, p))
    assert w.op_type == op
    for name in ("W", "R", "B", "P"):
        if p[name] is None:
            assert getattr(w, name) is None, name
        else:
            np.testing.assert_array_equal(getattr(w, name), p[name], err_msg=name)
            assert getattr(w, name).dtype == np.float32
    for key, value in attrs.items():
        assert w.attributes[key] == value, key
    # and back again: the same outputs
    again = convert.from_onnx(*w)
    assert_outputs(run(again, p, LENGTHS), run(build(op, attrs, p), p, LENGTHS), atol=0)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_to_onnx_weights_of_a_module(rng: np.random.Generator, cell: str) -> None:
    """A 2-layer bidirectional module exported layer by layer computes what it computes."""
    kw: dict[str, Any] = {"num_layers": 2, "bidirectional": True, "dtype": np.float64, "seed": 1}
    m: nn.RNNBase
    if cell == "lstm":
        m = nn.LSTM(I, H, peepholes=True, clip=2.0, **kw)
    elif cell == "gru":
        m = nn.GRU(I, H, linear_before_reset=False, **kw)
    else:
        m = nn.RNN(I, H, nonlinearity="relu", **kw)
    x = rng.standard_normal((T, B, I))
    y, _ = m.forward(x)
    with pytest.raises(ValueError, match="layer=k"):
        convert.to_onnx_weights(m)
    inp: np.ndarray = x
    for layer in range(2):
        w = convert.to_onnx_weights(m, layer=layer)
        assert w.attributes["direction"] == "bidirectional"
        out = convert.from_onnx(*w).forward(inp)
        inp = out.Y.transpose(0, 2, 1, 3).reshape(T, B, 2 * H)  # concat, torch's layout
    np.testing.assert_allclose(inp, y, rtol=1e-12, atol=1e-14)


def test_onnx_attribute_spellings(rng: np.random.Generator) -> None:
    """bytes for strings (as onnx decodes them), activations named once for both
    directions, any case; hidden_size inferred."""
    p = problem(rng, "LSTM", "bidirectional", 0)
    want = run(build("LSTM", {"direction": "bidirectional"}, p), p, None)
    for attrs in (
        {"direction": b"bidirectional", "hidden_size": H},
        {"direction": "bidirectional", "activations": [b"Sigmoid", b"Tanh", b"Tanh"]},
        {"direction": "bidirectional", "activations": ["sigmoid", "TANH", "tanh"] * 2},
        {"direction": "bidirectional", "activation_alpha": [], "activation_beta": []},
    ):
        assert_outputs(run(build("LSTM", attrs, p), p, None), want, atol=0)


# ===================================================================== Keras, in NumPy
def keras_numpy(
    kind: str,
    x: np.ndarray,
    kernel: np.ndarray,
    recurrent: np.ndarray,
    bias: np.ndarray | None,
    *,
    reset_after: bool = True,
    activation: str = "tanh",
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Keras's LSTM/GRU/SimpleRNN cells over ``x [B, T, I]`` from zero states (Keras's
    formulas: ``kernel [I, G*H]`` with gate order LSTM i, f, c, o and GRU z, r, h). Returns
    the ``return_sequences`` output and the ``return_state`` states."""
    nB, nT, _ = x.shape
    nH = recurrent.shape[0]
    h = np.zeros((nB, nH))
    c = np.zeros((nB, nH))
    ys = []
    for t in range(nT):
        xt = x[:, t]
        if kind == "LSTM":
            z = xt @ kernel + h @ recurrent + (0 if bias is None else bias)
            z0, z1, z2, z3 = np.split(z, 4, axis=1)
            i, f, o = _sigmoid(z0), _sigmoid(z1), _sigmoid(z3)
            c = f * c + i * np.tanh(z2)
            h = o * np.tanh(c)
        elif kind == "GRU":
            if reset_after:
                b_in, b_rec = (0, 0) if bias is None else (bias[0], bias[1])
                mx = xt @ kernel + b_in
                mi = h @ recurrent + b_rec
                x_z, x_r, x_h = np.split(mx, 3, axis=1)
                r_z, r_r, r_h = np.split(mi, 3, axis=1)
                zg = _sigmoid(x_z + r_z)
                rg = _sigmoid(x_r + r_r)
                hh = np.tanh(x_h + rg * r_h)
            else:
                mx = xt @ kernel + (0 if bias is None else bias)
                x_z, x_r, x_h = np.split(mx, 3, axis=1)
                U_z, U_r, U_h = np.split(recurrent, 3, axis=1)
                zg = _sigmoid(x_z + h @ U_z)
                rg = _sigmoid(x_r + h @ U_r)
                hh = np.tanh(x_h + (rg * h) @ U_h)
            h = zg * h + (1 - zg) * hh
        else:
            a = xt @ kernel + h @ recurrent + (0 if bias is None else bias)
            h = np.maximum(a, 0) if activation == "relu" else np.tanh(a)
        ys.append(h)
    return np.stack(ys, axis=1), ([h, c] if kind == "LSTM" else [h])


KERAS_CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("LSTM", {}, True),
    ("LSTM", {}, False),
    ("GRU", {"reset_after": True}, True),
    ("GRU", {"reset_after": False}, True),
    ("GRU", {"reset_after": True}, False),
    ("SimpleRNN", {}, True),
    ("SimpleRNN", {"activation": "relu"}, True),
]


def keras_weights(
    rng: np.random.Generator, kind: str, reset_after: bool, bias: bool, dtype: type = np.float64
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    G = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[kind]
    kernel: np.ndarray = (0.5 * rng.standard_normal((I, G * H))).astype(dtype)
    recurrent: np.ndarray = (0.5 * rng.standard_normal((H, G * H))).astype(dtype)
    shape = (2, G * H) if kind == "GRU" and reset_after else (G * H,)
    b: np.ndarray | None = (0.5 * rng.standard_normal(shape)).astype(dtype) if bias else None
    return kernel, recurrent, b


def _keras_id(case: tuple[str, dict[str, Any], bool]) -> str:
    kind, kw, bias = case
    return "-".join([kind, *(f"{k}={v}" for k, v in kw.items()), *([] if bias else ["noB"])])


@pytest.mark.parametrize("case", KERAS_CASES, ids=_keras_id)
def test_keras_matches_the_keras_formulas(
    rng: np.random.Generator, case: tuple[str, dict[str, Any], bool]
) -> None:
    kind, kw, bias = case
    kernel, recurrent, b = keras_weights(rng, kind, kw.get("reset_after", True), bias)
    m = convert.from_keras(kind, kernel, recurrent, b, **kw)
    assert m.batch_first and m.num_layers == 1 and not m.bidirectional
    x = rng.standard_normal((B, T, I))
    y, state = m.forward(x)
    want_y, want_states = keras_numpy(kind, x, kernel, recurrent, b, **kw)
    np.testing.assert_allclose(y, want_y, rtol=1e-12, atol=1e-13)
    states = list(state) if isinstance(state, tuple) else [state]
    for s, w in zip(states, want_states, strict=True):
        np.testing.assert_allclose(s[0], w, rtol=1e-12, atol=1e-13)
    # time-major on request
    tm = convert.from_keras(kind, kernel, recurrent, b, batch_first=False, **kw)
    np.testing.assert_allclose(
        tm.forward(x.transpose(1, 0, 2))[0], want_y.transpose(1, 0, 2), rtol=1e-12, atol=1e-13
    )


@pytest.mark.parametrize("case", KERAS_CASES, ids=_keras_id)
def test_keras_round_trip(rng: np.random.Generator, case: tuple[str, dict[str, Any], bool]) -> None:
    kind, kw, bias = case
    reset_after = kw.get("reset_after", True)
    kernel, recurrent, b = keras_weights(rng, kind, reset_after, bias, np.float32)
    m = convert.from_keras(kind, kernel, recurrent, b, **kw)
    assert m.dtype == np.float32
    w = convert.to_keras_weights(m)
    assert w.kind == kind
    np.testing.assert_array_equal(w.kernel, kernel)
    np.testing.assert_array_equal(w.recurrent_kernel, recurrent)
    if b is None:
        assert w.bias is None and len(w.weights) == 2
    else:
        assert w.bias is not None
        np.testing.assert_array_equal(w.bias, b)
        assert len(w.weights) == 3
    for key, value in kw.items():
        assert w.config[key] == value
    again = convert.from_keras(w.kind, w.kernel, w.recurrent_kernel, w.bias, **w.config)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    np.testing.assert_array_equal(again.forward(x)[0], m.forward(x)[0])


@pytest.mark.parametrize("cell", ["lstm", "gru", "gru_lbr0", "rnn"])
def test_to_keras_weights_of_a_module(rng: np.random.Generator, cell: str) -> None:
    """Both of a module's biases (nonzero) fold into Keras's; both directions export."""
    kw: dict[str, Any] = {"bidirectional": True, "dtype": np.float64, "seed": 2}
    m: nn.RNNBase
    if cell == "lstm":
        m = nn.LSTM(I, H, **kw)
    elif cell.startswith("gru"):
        m = nn.GRU(I, H, linear_before_reset=cell == "gru", **kw)
    else:
        m = nn.RNN(I, H, nonlinearity="relu", **kw)
    x = rng.standard_normal((T, B, I))
    y, _ = m.forward(x)
    assert isinstance(y, np.ndarray)
    for d, reverse in enumerate((False, True)):
        w = convert.to_keras_weights(m, reverse=reverse)
        kind = w.kind
        want_y, _ = keras_numpy(
            kind,
            x[::-1].transpose(1, 0, 2) if reverse else x.transpose(1, 0, 2),
            w.kernel,
            w.recurrent_kernel,
            w.bias,
            **w.config,
        )
        if reverse:
            want_y = want_y[:, ::-1]
        np.testing.assert_allclose(
            want_y.transpose(1, 0, 2), y[..., d * H : (d + 1) * H], rtol=1e-11, atol=1e-13
        )


# ======================================================================== bad arguments
def _onnx_args(rng: np.random.Generator, op: str = "LSTM", D: int = 1) -> dict[str, Any]:
    p = problem(rng, op, "bidirectional" if D == 2 else "forward", 0, peep=op == "LSTM")
    return {"W": p["W"], "R": p["R"], "B": p["B"], "P": p["P"]}


@pytest.mark.parametrize(
    ("op", "attrs", "change", "error", "message"),
    [
        (
            "LSTM",
            {"activations": ["Sigmoid", "Relu", "Tanh"]},
            {},
            NotImplementedError,
            re.escape("unsupported: Relu (position 1, expected Tanh)"),
        ),
        ("GRU", {"activations": ["HardSigmoid", "Tanh"]}, {}, NotImplementedError, "HardSigmoid"),
        ("RNN", {"activations": ["Sigmoid"]}, {}, NotImplementedError, "Sigmoid"),
        (
            "RNN",
            {"direction": "bidirectional", "activations": ["Relu", "Tanh"]},
            {"D": 2},
            NotImplementedError,
            "same activation in both directions",
        ),
        ("LSTM", {"activation_alpha": [0.5]}, {}, NotImplementedError, "activation_alpha"),
        ("GRU", {"activation_beta": [1.0]}, {}, NotImplementedError, "activation_beta"),
        ("LSTM", {"activations": ["Sigmoid", "Tanh"]}, {}, ValueError, "must list 3"),
        (
            "LSTM",
            {"linear_before_reset": 1},
            {},
            ValueError,
            "unknown attribute.*linear_before_reset",
        ),
        ("GRU", {"input_forget": 1}, {}, ValueError, "unknown attribute.*input_forget"),
        ("RNN", {"direction": "both"}, {}, ValueError, "direction must be"),
        ("RNN", {"layout": 2}, {}, ValueError, "layout must be 0 or 1, got 2"),
        ("RNN", {"clip": -1.0}, {}, ValueError, "clip must be a positive"),
        (
            "LSTM",
            {"hidden_size": H + 1},
            {},
            ValueError,
            re.escape(
                "R must have shape (D, 4*H, H) with D = 1 (forward), H = hidden_size = 7 "
                "= (1, 28, 7), got (1, 24, 6)"
            ),
        ),
        (
            "LSTM",
            {"direction": "bidirectional"},
            {},
            ValueError,
            r"R must have shape .* D = 2 \(bidirectional\)",
        ),
        ("LSTM", {}, {"B": "short"}, ValueError, r"B must have shape \(D, 8\*H\) = \(1, 48\)"),
        ("LSTM", {}, {"P": "short"}, ValueError, r"P must have shape \(D, 3\*H\) = \(1, 18\)"),
        ("GRU", {}, {"P": "extra"}, ValueError, "P .* LSTM only"),
        ("LSTM", {}, {"R": "float32"}, TypeError, "R must have dtype float64"),
        ("LSTM", {}, {"W": "float16"}, TypeError, "W must have dtype float32 or float64"),
        ("LSTM", {}, {"W": "2d"}, ValueError, r"W must have shape \(D, 4\*H, I\)"),
        ("TANH", {}, {}, ValueError, "op_type must be"),
    ],
)
def test_from_onnx_errors(
    rng: np.random.Generator,
    op: str,
    attrs: dict[str, Any],
    change: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    args = _onnx_args(rng, op if op in GATES else "RNN", change.get("D", 1))
    if change.get("B") == "short":
        args["B"] = args["B"][:, :-1]
    if change.get("P") == "short":
        args["P"] = args["P"][:, :-1]
    if change.get("P") == "extra":
        args["P"] = np.zeros((1, 3 * H))
    if change.get("R") == "float32":
        args["R"] = args["R"].astype(np.float32)
    if change.get("W") == "float16":
        args["W"] = args["W"].astype(np.float16)
    if change.get("W") == "2d":
        args["W"] = args["W"][0]
    with pytest.raises(error, match=message):
        convert.from_onnx(op, attrs, **args)


def test_onnx_forward_and_backward_errors(rng: np.random.Generator) -> None:
    p = problem(rng, "GRU", "bidirectional", 1)
    rec = build("GRU", attributes({}, "bidirectional", 1), p)
    with pytest.raises(ValueError, match=re.escape("X must have shape (B, T, I) (layout=1)")):
        rec.forward(p["X"][..., :-1])
    with pytest.raises(ValueError, match=re.escape("initial_h must have shape (B, D, H)")):
        rec.forward(p["X"], None, p["initial_h"].transpose(1, 0, 2))
    with pytest.raises(ValueError, match="initial_c is an input of the ONNX LSTM only"):
        rec.forward(p["X"], None, None, p["initial_h"])
    with pytest.raises(TypeError, match="X must have dtype float64"):
        rec.forward(p["X"].astype(np.float32))
    with pytest.raises(ValueError, match="lengths"):
        rec.forward(p["X"], np.array([1, 2]))
    out = rec.forward(p["X"])
    with pytest.raises(ValueError, match=re.escape("dY must have shape (B, T, D, H)")):
        rec.backward(out.Y[:, :, :1])
    with pytest.raises(ValueError, match="dY_c: the ONNX GRU has no output Y_c"):
        rec.backward(None, None, out.Y_h)
    with pytest.raises(ValueError, match="zero_length_state"):
        build("GRU", {}, _onnx_args(rng, "GRU") | {"P": None}, zero_length_state="none")


def test_to_onnx_and_keras_errors() -> None:
    with pytest.raises(ValueError, match="no projection"):
        convert.to_onnx_weights(nn.LSTM(I, H, proj_size=2))
    with pytest.raises(ValueError, match=r"layer must be an int in \[0, 0\], got 1"):
        convert.to_onnx_weights(nn.GRU(I, H), layer=1)
    with pytest.raises(TypeError, match="module must be"):
        convert.to_onnx_weights("LSTM")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Keras recurrent layers have no peepholes, clip"):
        convert.to_keras_weights(nn.LSTM(I, H, peepholes=True, clip=1.0))
    with pytest.raises(ValueError, match="reverse=True needs a bidirectional module"):
        convert.to_keras_weights(nn.RNN(I, H), reverse=True)
    with pytest.raises(ValueError, match="pass layer=k"):
        convert.to_keras_weights(nn.RNN(I, H, num_layers=2))
    # a Keras layer is one direction: a bidirectional module must say which (it silently gave
    # the forward one)
    with pytest.raises(ValueError, match=r"bidirectional; .* pass reverse=False .* reverse=True"):
        convert.to_keras_weights(nn.GRU(I, H, bidirectional=True))
    with pytest.raises(TypeError, match="reverse must be a bool, got str"):
        convert.to_keras_weights(nn.GRU(I, H, bidirectional=True), reverse="yes")  # type: ignore[arg-type]
    W, R = np.zeros((1, H, I)), np.zeros((1, H, H))
    with pytest.raises(ValueError, match="reverse-only ONNX node has no plain Keras"):
        convert.to_keras_weights(convert.from_onnx("RNN", {"direction": "reverse"}, W, R))
    fwd = convert.to_keras_weights(convert.from_onnx("RNN", {}, W + 1, R))
    assert fwd.kind == "SimpleRNN" and fwd.bias is None and fwd.kernel.shape == (I, H)


def test_from_keras_errors(rng: np.random.Generator) -> None:
    k, rk, b = keras_weights(rng, "GRU", True, True)
    assert b is not None
    with pytest.raises(
        ValueError, match=re.escape("(a bias of shape (2, 3*H) is reset_after=True)")
    ):
        convert.from_keras("GRU", k, rk, b, reset_after=False)
    with pytest.raises(
        ValueError, match=re.escape("(a bias of shape (3*H,) is reset_after=False)")
    ):
        convert.from_keras("GRU", k, rk, b[0])
    with pytest.raises(ValueError, match=re.escape("kernel must have shape (I, 3*H) with H = 6")):
        convert.from_keras("GRU", k[:, :-1], rk, b)
    with pytest.raises(ValueError, match=re.escape("recurrent_kernel must have shape (H, 4*H)")):
        convert.from_keras("LSTM", k, rk)
    with pytest.raises(NotImplementedError, match="recurrent_activation='hard_sigmoid'"):
        convert.from_keras("GRU", k, rk, b, recurrent_activation="hard_sigmoid")
    with pytest.raises(NotImplementedError, match="activation='elu'"):
        convert.from_keras("SimpleRNN", k[:, :H], rk[:, :H], activation="elu")
    with pytest.raises(TypeError, match="bias must have dtype float64"):
        convert.from_keras("GRU", k, rk, b.astype(np.float32))
    with pytest.raises(ValueError, match="kind must be"):
        convert.from_keras("ConvLSTM2D", k, rk, b)
