"""Tests of the modules ``rnnkit.nn.LSTM/GRU/RNN`` that do not need torch.

* rnnkit's extensions (merge modes, residual, peepholes, input_forget, clip,
  linear_before_reset=False, seeded dropout, lengths, batch_first) against central finite
  differences in float64 of the whole module on tiny shapes: the gradients of ``x``, the
  initial state and every parameter of a random linear loss;
* what the options mean (a one-layer module is exactly one functional kernel call with the same
  options; merge modes combine the directions; residual adds the input; lengths equal running
  each sequence alone; batch_first and unbatched are layouts of the same computation);
* dropout: reproducible by seed, scaled, off in eval mode, kept for backward;
* truncated BPTT: two chunks carrying the state (and the state gradient back) equal one call;
* initialisation options, state_dict round trips, gradient accumulation, repr;
* bad arguments, with the messages they raise.

Shapes: T time steps, B batch, I input size, H hidden size, P projection size, L layers,
D directions.
"""

from __future__ import annotations

import copy
import pickle
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import rnnkit
from helpers import central_difference
from rnnkit import nn, reference

CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")


def make(cell: str, input_size: int, hidden_size: int, **kw: Any) -> Any:
    """A module of ``cell`` ("lstm", "gru", "rnn_tanh", "rnn_relu"), float64 by default.

    Typed ``Any``: the tests index its outputs (arrays, or tuples with merge_mode=None)
    according to the options they chose."""
    kw.setdefault("dtype", np.float64)
    kw.setdefault("seed", 0)
    if cell == "lstm":
        return nn.LSTM(input_size, hidden_size, **kw)
    if cell == "gru":
        return nn.GRU(input_size, hidden_size, **kw)
    act: Any = cell.removeprefix("rnn_")
    return nn.RNN(input_size, hidden_size, nonlinearity=act, **kw)


def random_problem(
    m: nn.RNNBase, rng: np.random.Generator, T: int, B: int, *, lengths: bool = False
) -> dict[str, Any]:
    """Input, initial state, lengths and the loss seeds ``dy``/``dstate`` for module ``m``."""
    lstm = isinstance(m, nn.LSTM)
    LD, R, H, W = m.num_layers * m.num_directions, m.state_size, m.hidden_size, m.output_size
    x_shape = (B, T, m.input_size) if m.batch_first else (T, B, m.input_size)
    y_lead = (B, T) if m.batch_first else (T, B)
    h0 = 0.5 * rng.standard_normal((LD, B, R))
    c0 = 0.5 * rng.standard_normal((LD, B, H))
    dh, dc = rng.standard_normal((LD, B, R)), rng.standard_normal((LD, B, H))
    if m.merge_mode is None and m.num_directions == 2:
        dy: Any = (rng.standard_normal((*y_lead, R)), rng.standard_normal((*y_lead, R)))
    else:
        dy = rng.standard_normal((*y_lead, W))
    lens = None
    if lengths:
        lens = rng.integers(0, T + 1, size=B)
        lens[0] = T
    return {
        "x": rng.standard_normal(x_shape),
        "state": (h0, c0) if lstm else h0,
        "lengths": lens,
        "dy": dy,
        "dstate": (dh, dc) if lstm else dh,
    }


def _leaves(state: Any) -> list[np.ndarray]:
    return list(state) if isinstance(state, tuple) else [state]


def linear_loss(y: Any, state_n: Any, dy: Any, dstate: Any) -> float:
    """``sum(dy * y) + sum(dstate * state_n)`` over every array of the (nested) outputs."""
    total = sum(float(np.sum(a * b)) for a, b in zip(_leaves(y), _leaves(dy), strict=True))
    total += sum(
        float(np.sum(a * b)) for a, b in zip(_leaves(state_n), _leaves(dstate), strict=True)
    )
    return total


def check_gradients(m: nn.RNNBase, p: dict[str, Any], eps: float = 1e-6) -> None:
    """Every gradient of the module (x, initial state, parameters) against central finite
    differences of :func:`linear_loss`. Dropout masks are redrawn identically for every
    forward by reseeding ``m.rng``."""

    def loss() -> float:
        m.rng = np.random.default_rng(1234)
        y, st = m.forward(p["x"], p["state"], p["lengths"])
        return linear_loss(y, st, p["dy"], p["dstate"])

    m.zero_grad()
    m.rng = np.random.default_rng(1234)
    m.forward(p["x"], p["state"], p["lengths"])
    dx = m.backward(p["dy"], p["dstate"])
    analytic: dict[str, np.ndarray] = {"x": dx}
    for k, g in enumerate(_leaves(m.dstate0)):
        analytic[f"state{k}"] = g
    analytic.update({k: g.copy() for k, g in m.grads.items()})
    targets: dict[str, np.ndarray] = {"x": p["x"]}
    for k, s in enumerate(_leaves(p["state"])):
        targets[f"state{k}"] = s
    targets.update(m.params)

    for name, arr in targets.items():
        numeric = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            numeric[idx] = central_difference(loss, arr, idx, eps)
        got = analytic[name]
        assert got.shape == arr.shape, name
        scale = max(1.0, float(np.max(np.abs(numeric))))
        np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-7 * scale, err_msg=name)


# ------------------------------------------------------------------ finite differences
#: (cell, module keyword arguments, lengths): rnnkit's extensions and their combinations.
GRADCHECK_CASES: list[tuple[str, dict[str, Any], bool]] = [
    *[
        (cell, {"num_layers": 2, "bidirectional": True, "merge_mode": mode}, False)
        for cell, mode in [
            ("lstm", "sum"),
            ("gru", "mean"),
            ("rnn_tanh", "max"),
            ("lstm", "mul"),
            ("gru", None),
            ("rnn_tanh", "concat"),
        ]
    ],
    ("lstm", {"num_layers": 3, "residual": True}, False),
    ("gru", {"num_layers": 2, "bidirectional": True, "residual": True, "merge_mode": None}, True),
    (
        "rnn_relu",
        {"num_layers": 2, "bidirectional": True, "residual": True, "merge_mode": "max"},
        False,
    ),
    ("lstm", {"num_layers": 2, "peepholes": True, "bidirectional": True}, True),
    ("lstm", {"num_layers": 2, "input_forget": True, "proj_size": 2}, False),
    ("lstm", {"peepholes": True, "input_forget": True, "clip": 0.6, "bias": False}, False),
    ("gru", {"num_layers": 2, "linear_before_reset": False, "batch_first": True}, True),
    ("gru", {"linear_before_reset": False, "clip": 0.5}, False),
    ("rnn_tanh", {"clip": 0.4, "num_layers": 2}, False),
    ("lstm", {"num_layers": 3, "dropout": 0.4, "bidirectional": True, "merge_mode": "sum"}, True),
    ("rnn_relu", {"num_layers": 2, "dropout": 0.5, "residual": True, "batch_first": True}, False),
]


@pytest.mark.parametrize(
    ("cell", "kw", "lengths"),
    GRADCHECK_CASES,
    ids=[
        f"{c}-" + "-".join(f"{k}={v}" for k, v in kw.items()) + ("-lengths" if ln else "")
        for c, kw, ln in GRADCHECK_CASES
    ],
)
def test_gradients_finite_differences(
    cell: str, kw: dict[str, Any], lengths: bool, rng: np.random.Generator
) -> None:
    m = make(cell, 2, 3, **kw)
    if cell == "rnn_relu" or kw.get("clip"):  # larger weights, so that clipping/relu matter
        for w in m.parameters():
            w *= 2.0
    p = random_problem(m, rng, T=3, B=2, lengths=lengths)
    check_gradients(m, p)


def test_clip_is_active(rng: np.random.Generator) -> None:
    """The clip values of the finite-difference cases do clamp some pre-activations."""
    m = make("rnn_tanh", 2, 3, clip=0.4)
    for w in m.parameters():
        w *= 2.0
    x = rng.standard_normal((3, 2, 2))
    y_clip, _ = m.forward(x)
    m.clip = None
    y_free, _ = m.forward(x)
    assert np.any(np.abs(y_clip) >= np.tanh(0.4) - 1e-12)
    assert not np.allclose(y_clip, y_free)


# ------------------------------------------------------------------ what the options mean
@pytest.mark.parametrize(
    ("cell", "kw"),
    [
        ("lstm", {}),
        ("lstm", {"peepholes": True, "input_forget": True, "clip": 0.7}),
        ("lstm", {"proj_size": 2, "bias": False}),
        ("gru", {"linear_before_reset": False, "clip": 0.3}),
        ("rnn_relu", {"clip": 0.5}),
        ("rnn_tanh", {}),
    ],
)
@pytest.mark.parametrize("reverse", [False, True])
def test_one_layer_is_one_kernel_call(
    cell: str, kw: dict[str, Any], reverse: bool, rng: np.random.Generator
) -> None:
    """A one-layer module's direction is the functional kernel with the same options, and
    agrees with the float64 NumPy reference."""
    m = make(cell, 4, 5, bidirectional=reverse, merge_mode=None, **kw)
    for w in m.parameters():
        w += 0.3 * rng.standard_normal(w.shape)  # non-zero peepholes
    T, B = 6, 3
    x = rng.standard_normal((T, B, 4))
    lens = np.array([6, 2, 0])
    y, state = m.forward(x, None, lens)
    y_dir = y[1] if reverse else y
    sfx = "_l0_reverse" if reverse else "_l0"
    pw = {k.replace(sfx, ""): v for k, v in m.params.items() if k.endswith(sfx)}
    args = (pw["weight_ih"], pw["weight_hh"], pw.get("bias_ih"), pw.get("bias_hh"))
    opts: dict[str, Any] = {"lengths": lens, "reverse": reverse, "clip": m.clip}
    for lib in (rnnkit, reference):
        if cell == "lstm":
            opts.update(w_hr=pw.get("weight_hr"), peepholes=pw.get("peepholes"))
            opts.update(input_forget=m.input_forget)
            out = lib.lstm_forward(x, None, None, *args, **opts)
        elif cell == "gru":
            opts.update(linear_before_reset=m.linear_before_reset)
            out = lib.gru_forward(x, None, *args, **opts)
        else:
            opts.update(nonlinearity=m.nonlinearity)
            out = lib.rnn_forward(x, None, *args, **opts)
        h_n = state[0] if isinstance(state, tuple) else state
        if lib is rnnkit:
            np.testing.assert_array_equal(y_dir, out.y)
            np.testing.assert_array_equal(h_n[int(reverse)], out.h_n)
        else:
            np.testing.assert_allclose(y_dir, out.y, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["concat", "sum", "mean", "max", "mul", None])
def test_merge_modes_combine_directions(mode: str | None, rng: np.random.Generator) -> None:
    """Each merge mode is the stated function of the two directions' outputs."""
    ref = make("gru", 3, 4, bidirectional=True)
    m = make("gru", 3, 4, bidirectional=True, merge_mode=mode)
    m.load_state_dict(ref.state_dict())  # one layer: the same parameters for every mode
    x = rng.standard_normal((5, 2, 3))
    y_cat, h_ref = ref.forward(x)
    y, h = m.forward(x)
    f, b = y_cat[..., :4], y_cat[..., 4:]
    expected = {
        "concat": y_cat,
        "sum": f + b,
        "mean": (f + b) / 2,
        "max": np.maximum(f, b),
        "mul": f * b,
        None: (f, b),
    }[mode]
    if mode is None:
        assert isinstance(y, tuple)
        np.testing.assert_array_equal(y[0], f)
        np.testing.assert_array_equal(y[1], b)
    else:
        np.testing.assert_allclose(y, expected, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(h, h_ref)
    assert m.output_size == (8 if mode in ("concat", None) else 4)


@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
def test_residual_adds_the_layer_input(merge_mode: str, rng: np.random.Generator) -> None:
    """A 2-layer residual module is layer1(x1) + x1 with x1 = layer0(x)."""
    kw: dict[str, Any] = {"bidirectional": True, "merge_mode": merge_mode}
    m = make("lstm", 3, 4, num_layers=2, residual=True, **kw)
    layer0 = make("lstm", 3, 4, **kw)
    layer1 = make("lstm", m.output_size, 4, **kw)
    for k, v in m.params.items():
        (layer0 if "_l0" in k else layer1).params[k.replace("_l1", "_l0")][...] = v
    x = rng.standard_normal((5, 2, 3))
    y, (h, c) = m.forward(x)
    x1, (h0, c0) = layer0.forward(x)
    y1, (h1, c1) = layer1.forward(x1)
    np.testing.assert_allclose(y, y1 + x1, rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(h, np.concatenate([h0, h1]))
    np.testing.assert_array_equal(c, np.concatenate([c0, c1]))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_lengths_equal_each_sequence_alone(
    cell: str, bidirectional: bool, rng: np.random.Generator
) -> None:
    """With lengths, sequence b gives what x[:len_b, b] gives alone (the reverse direction
    starts at its own end); y is zero past it; dx is zero past it."""
    m = make(cell, 3, 4, num_layers=2, bidirectional=bidirectional, residual=True)
    T, B = 6, 4
    x = rng.standard_normal((T, B, 3))
    lens = np.array([6, 3, 1, 0])
    y, state = m.forward(x, None, lens)
    dx = m.backward(np.ones_like(y))
    for b in range(B):
        n = lens[b]
        np.testing.assert_array_equal(y[n:, b], 0)
        np.testing.assert_array_equal(dx[n:, b], 0)
        y_b, state_b = m.forward(x[:n, b : b + 1])
        np.testing.assert_allclose(y[:n, b : b + 1], y_b, rtol=1e-13, atol=1e-14)
        for s, s_b in zip(_leaves(state), _leaves(state_b), strict=True):
            np.testing.assert_allclose(s[:, b : b + 1], s_b, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_batch_first_and_unbatched_are_layouts(cell: str, rng: np.random.Generator) -> None:
    tm = make(cell, 3, 4, num_layers=2, bidirectional=True)
    bf = make(cell, 3, 4, num_layers=2, bidirectional=True, batch_first=True)
    bf.load_state_dict(tm.state_dict())
    x = rng.standard_normal((5, 2, 3))
    y, s = tm.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = tm.backward(dy)
    y_bf, s_bf = bf.forward(x.transpose(1, 0, 2))
    dx_bf = bf.backward(dy.transpose(1, 0, 2))
    np.testing.assert_array_equal(y_bf, y.transpose(1, 0, 2))
    np.testing.assert_array_equal(dx_bf, dx.transpose(1, 0, 2))
    for a, b in zip(_leaves(s), _leaves(s_bf), strict=True):
        np.testing.assert_array_equal(a, b)
    for k in tm.grads:
        np.testing.assert_array_equal(tm.grads[k], bf.grads[k])
    # unbatched [T, I] is the batch of one, with states [L*D, H]
    y2, s2 = tm.forward(x[:, :1])
    dx2 = tm.backward(dy[:, :1])
    y1, s1 = tm.forward(x[:, 0])
    dx1 = tm.backward(dy[:, 0])
    np.testing.assert_array_equal(y1, y2[:, 0])
    np.testing.assert_array_equal(dx1, dx2[:, 0])
    for a, b in zip(_leaves(s1), _leaves(s2), strict=True):
        np.testing.assert_array_equal(a, b[:, 0])


def test_float32_module(rng: np.random.Generator) -> None:
    """float32 modules compute in float32 and agree with float64 ones to float32 accuracy;
    the same seed gives the same initial weights (rounded) in either dtype."""
    m32: Any = nn.LSTM(3, 4, 2, bidirectional=True, seed=5, dtype=None)  # None: float32
    m64: Any = nn.LSTM(3, 4, 2, bidirectional=True, seed=5, dtype=np.float64)
    for k in m32.params:
        assert m32.params[k].dtype == np.float32
        np.testing.assert_array_equal(m32.params[k], m64.params[k].astype(np.float32))
    m64.load_state_dict(m32.state_dict())
    x = rng.standard_normal((5, 2, 3))
    y32, _ = m32.forward(x.astype(np.float32))
    y64, _ = m64.forward(x)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-6)
    dx = m32.backward(np.ones_like(y32))
    assert dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in m32.grads.values())


# ------------------------------------------------------------------ dropout
def test_dropout_reproducible_by_seed(rng: np.random.Generator) -> None:
    x = rng.standard_normal((6, 3, 4)).astype(np.float32)
    a = nn.GRU(4, 8, 3, dropout=0.5, seed=11)
    b = nn.GRU(4, 8, 3, dropout=0.5, seed=11)
    c = nn.GRU(4, 8, 3, dropout=0.5, seed=12)
    c.load_state_dict(a.state_dict())
    ya1, _ = a.forward(x)
    ya2, _ = a.forward(x)
    yb1, _ = b.forward(x)
    yb2, _ = b.forward(x)
    yc1, _ = c.forward(x)
    np.testing.assert_array_equal(ya1, yb1)  # same seed: same weights, same masks
    np.testing.assert_array_equal(ya2, yb2)
    assert not np.array_equal(ya1, ya2)  # new masks every forward
    assert not np.array_equal(ya1, yc1)  # another seed, other masks (same weights)
    np.testing.assert_array_equal(a.backward(np.ones_like(ya2)), b.backward(np.ones_like(yb2)))
    for k in a.grads:
        np.testing.assert_array_equal(a.grads[k], b.grads[k])


def test_dropout_masks_and_modes(rng: np.random.Generator) -> None:
    """Inverted dropout on every layer's output but the last, in training mode only."""
    p = 0.3
    m = make("rnn_tanh", 4, 64, num_layers=2, dropout=p)
    plain = make("rnn_tanh", 4, 64, num_layers=2)
    plain.load_state_dict(m.state_dict())
    x = rng.standard_normal((20, 8, 4))
    m.forward(x)
    tape = m._tape
    assert tape is not None
    mask0, mask1 = tape.layers[0].mask, tape.layers[1].mask
    assert mask1 is None  # not after the last layer
    assert mask0 is not None
    assert set(np.unique(mask0)) == {0.0, 1.0 / (1.0 - p)}
    assert abs(np.mean(mask0 == 0) - p) < 0.02
    y_plain, _ = plain.forward(x)
    m.eval()
    assert not m.training
    y_eval, _ = m.forward(x)
    np.testing.assert_array_equal(y_eval, y_plain)  # eval: no dropout
    assert m.train() is m and m.training
    m.dropout = 0.0
    y_train, _ = m.forward(x)
    np.testing.assert_array_equal(y_train, y_plain)  # training and inference kernels agree


# ------------------------------------------------------------------ truncated BPTT
@pytest.mark.parametrize("cell", [*CELLS, "lstm_proj"])
def test_chunks_carrying_state_equal_one_call(cell: str, rng: np.random.Generator) -> None:
    """Forward: two chunks with the state carried equal one call. Backward: the second
    chunk's ``dstate0`` passed as the first chunk's ``dstate`` gives one call's gradients."""
    kw: dict[str, Any] = {"num_layers": 3, "residual": True}
    if cell == "lstm_proj":
        cell, kw["proj_size"] = "lstm", 2
    whole = make(cell, 3, 4, **kw)
    first, second = make(cell, 3, 4, **kw), make(cell, 3, 4, **kw)
    first.load_state_dict(whole.state_dict())
    second.load_state_dict(whole.state_dict())
    p = random_problem(whole, rng, T=7, B=3)
    x, state, dy, dstate = p["x"], p["state"], p["dy"], p["dstate"]
    y, state_n = whole.forward(x, state)
    dx = whole.backward(dy, dstate)

    y1, s1 = first.forward(x[:4], state)
    y2, s2 = second.forward(x[4:], s1)
    np.testing.assert_allclose(np.concatenate([y1, y2]), y, rtol=1e-13, atol=1e-14)
    for a, b in zip(_leaves(s2), _leaves(state_n), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    dx2 = second.backward(dy[4:], dstate)
    dx1 = first.backward(dy[:4], second.dstate0)
    np.testing.assert_allclose(np.concatenate([dx1, dx2]), dx, rtol=1e-12, atol=1e-13)
    for a, b in zip(_leaves(first.dstate0), _leaves(whole.dstate0), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    for k in whole.grads:
        total = first.grads[k] + second.grads[k]
        np.testing.assert_allclose(total, whole.grads[k], rtol=1e-11, atol=1e-12, err_msg=k)


# ------------------------------------------------------------------ backward conventions
def test_backward_none_and_accumulation(rng: np.random.Generator) -> None:
    m = make("lstm", 3, 4, num_layers=2, bidirectional=True, merge_mode=None)
    p = random_problem(m, rng, T=4, B=2)
    m.forward(p["x"], p["state"])
    dh, dc = p["dstate"]
    zeros_y = tuple(np.zeros_like(a) for a in p["dy"])
    dx_none = m.backward(None, (dh, None))
    grads_none = {k: g.copy() for k, g in m.grads.items()}
    m.zero_grad()
    assert all(not g.any() for g in m.grads.values())
    dx_zero = m.backward((zeros_y[0], None), (dh, np.zeros_like(dc)))
    np.testing.assert_array_equal(dx_none, dx_zero)
    for k in m.grads:
        np.testing.assert_array_equal(grads_none[k], m.grads[k])
    m.backward(p["dy"], p["dstate"])  # gradients add up
    once = {k: g - grads_none[k] for k, g in m.grads.items()}
    m.backward(p["dy"], p["dstate"])
    for k in m.grads:
        np.testing.assert_allclose(m.grads[k], grads_none[k] + 2 * once[k], rtol=1e-12, atol=1e-14)
    m.zero_grad()
    dx0 = m.backward()
    assert not dx0.any()
    assert not any(g.any() for g in m.grads.values())


# ------------------------------------------------------------------ initialisation
def test_init_options() -> None:
    H = 8
    m = nn.LSTM(5, H, 2, seed=0, dtype=np.float64)
    bound = 1 / np.sqrt(H)
    for w in m.parameters():
        assert np.all(np.abs(w) <= bound) and np.std(w) > bound / 3  # torch's U(-k, k)
    np.testing.assert_array_equal(
        m.params["weight_hh_l1"], nn.LSTM(5, H, 2, seed=0, dtype=np.float64).params["weight_hh_l1"]
    )
    assert not np.array_equal(
        m.params["weight_hh_l1"], nn.LSTM(5, H, 2, seed=1).params["weight_hh_l1"]
    )

    o = nn.LSTM(5, H, proj_size=3, init="orthogonal", forget_bias=1.0, seed=0, dtype=np.float64)
    for g in range(4):
        block = o.params["weight_hh_l0"][g * H : (g + 1) * H]  # [H, P]: orthonormal columns
        np.testing.assert_allclose(block.T @ block, np.eye(3), atol=1e-12)
    w_hr = o.params["weight_hr_l0"]  # [P, H]: orthonormal rows
    np.testing.assert_allclose(w_hr @ w_hr.T, np.eye(3), atol=1e-12)
    limit = np.sqrt(6 / (4 * H + 5))
    assert np.all(np.abs(o.params["weight_ih_l0"]) <= limit)
    b_ih, b_hh = o.params["bias_ih_l0"], o.params["bias_hh_l0"]
    np.testing.assert_array_equal(b_ih[H : 2 * H], 1.0)
    np.testing.assert_array_equal(np.delete(b_ih, np.s_[H : 2 * H]), 0.0)
    np.testing.assert_array_equal(b_hh, 0.0)

    irnn = nn.RNN(5, H, nonlinearity="relu", init="identity", seed=0)
    np.testing.assert_array_equal(irnn.params["weight_hh_l0"], np.eye(H))
    assert not irnn.params["bias_ih_l0"].any() and not irnn.params["bias_hh_l0"].any()

    before = m.params["weight_ih_l0"]
    m.reset_parameters(seed=3)
    assert m.params["weight_ih_l0"] is before  # in place
    again = nn.LSTM(5, H, 2, seed=9, dtype=np.float64)
    again.reset_parameters(seed=3)
    for k in m.params:
        np.testing.assert_array_equal(m.params[k], again.params[k])


# ------------------------------------------------------------------ parameters, state_dict
def test_state_dict_and_parameters(rng: np.random.Generator) -> None:
    m = nn.LSTM(3, 5, 2, bidirectional=True, proj_size=2, peepholes=True, seed=0)
    keys = list(m.params)
    assert keys[:6] == [
        "weight_ih_l0",
        "weight_hh_l0",
        "bias_ih_l0",
        "bias_hh_l0",
        "weight_hr_l0",
        "peepholes_l0",
    ]
    assert "peepholes_l1_reverse" in keys and m.params["peepholes_l1_reverse"].shape == (3, 5)
    assert m.params["weight_ih_l1"].shape == (20, 4)
    assert [n for n, _ in m.named_parameters()] == keys
    assert all(a is b for a, b in zip(m.parameters(), m.params.values(), strict=True))
    assert set(m.grads) == set(m.params)
    sd = m.state_dict()
    for k in keys:
        assert sd[k] is not m.params[k]
        np.testing.assert_array_equal(sd[k], m.params[k])
    other = nn.LSTM(3, 5, 2, bidirectional=True, proj_size=2, peepholes=True, seed=1)
    old = other.params["weight_ih_l0"]
    result = other.load_state_dict(sd)
    assert result == nn.IncompatibleKeys([], [])
    assert other.params["weight_ih_l0"] is old  # copied in place
    sd["weight_ih_l0"][...] = 7.0  # a copy: changing the source changes nothing
    assert not np.any(other.params["weight_ih_l0"] == 7.0)
    x = rng.standard_normal((4, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(m.forward(x)[0], other.forward(x)[0])
    # float64 values are cast into a float32 module, as torch's load_state_dict does
    other.load_state_dict({k: v.astype(np.float64) for k, v in m.state_dict().items()})
    assert other.params["weight_ih_l0"].dtype == np.float32
    # strict=False: ignored keys are reported
    partial = {k: v for k, v in m.state_dict().items() if "peepholes" not in k}
    partial["extra"] = np.zeros(1, np.float32)
    res = other.load_state_dict(partial, strict=False)
    assert res.unexpected_keys == ["extra"]
    assert res.missing_keys == [k for k in keys if "peepholes" in k]


def test_in_place_updates_are_seen(rng: np.random.Generator) -> None:
    """An optimiser step done in place on params changes the next forward."""
    m = make("gru", 3, 4)
    x = rng.standard_normal((3, 2, 3))
    y0, _ = m.forward(x)
    m.backward(np.ones_like(y0))
    for k, w in m.params.items():
        w -= 0.1 * m.grads[k]
    y1, _ = m.forward(x)
    assert np.sum(y1) < np.sum(y0)  # one gradient step on sum(y) lowers it


def test_repr() -> None:
    assert repr(nn.LSTM(10, 20)) == "LSTM(10, 20)"
    assert (
        repr(nn.LSTM(10, 20, 2, False, True, 0.5, True, 5))
        == "LSTM(10, 20, proj_size=5, num_layers=2, bias=False, batch_first=True, "
        "dropout=0.5, bidirectional=True)"
    )
    assert repr(nn.RNN(3, 4, nonlinearity="relu", init="identity")) == (
        "RNN(3, 4, nonlinearity='relu', init='identity')"
    )
    assert repr(
        nn.GRU(3, 4, 2, bidirectional=True, merge_mode=None, residual=True, dtype=np.float64)
    ) == (
        "GRU(3, 4, num_layers=2, bidirectional=True, merge_mode=None, residual=True, dtype=float64)"
    )
    assert repr(nn.GRU(3, 4, linear_before_reset=False, clip=2)) == (
        "GRU(3, 4, linear_before_reset=False, clip=2.0)"
    )
    assert nn.RNN(3, 4, nonlinearity="relu").mode == "RNN_RELU"
    assert nn.LSTM(3, 4).mode == "LSTM"


# ------------------------------------------------------------------ bad arguments
#: Arguments of the wrong type, as a caller without a type checker may pass them.
BAD: Any = {
    "float": 4.0,
    "str": "0.5",
    "avg": "avg",
    "sigmoid": "sigmoid",
    "identity": "identity",
    "xavier": "xavier",
    "seed": 1.5,
    "1": "1",
}

BAD_CONSTRUCTORS: list[tuple[Callable[[], Any], type[Exception], str]] = [
    (lambda: nn.LSTM(3, 4, proj_size=4), ValueError, "proj_size must be smaller than hidden_size"),
    (lambda: nn.LSTM(3, 4, proj_size=-1), ValueError, "proj_size must be >= 0, got -1"),
    (lambda: nn.LSTM(0, 4), ValueError, "input_size must be >= 1, got 0"),
    (lambda: nn.GRU(3, 0), ValueError, "hidden_size must be >= 1, got 0"),
    (lambda: nn.RNN(3, 4, num_layers=0), ValueError, "num_layers must be >= 1, got 0"),
    (lambda: nn.RNN(3, BAD["float"]), TypeError, "hidden_size must be an int, got float"),
    (lambda: nn.RNN(3, True), TypeError, "hidden_size must be an int, got bool"),
    (lambda: nn.GRU(3, 4, 2, dropout=1.0), ValueError, r"dropout must be a number in \[0, 1\)"),
    (lambda: nn.GRU(3, 4, 2, dropout=-0.1), ValueError, r"got -0.1"),
    (lambda: nn.GRU(3, 4, 2, dropout=BAD["str"]), ValueError, r"got '0.5'"),
    (
        lambda: nn.LSTM(3, 4, merge_mode=BAD["avg"]),
        ValueError,
        "merge_mode must be one of .* got 'avg'",
    ),
    (
        lambda: nn.RNN(3, 4, nonlinearity=BAD["sigmoid"]),
        ValueError,
        "nonlinearity must be 'tanh' or 'relu', got 'sigmoid'",
    ),
    (
        lambda: nn.LSTM(3, 4, clip=0),
        ValueError,
        "clip must be a positive finite number or None, got 0",
    ),
    (lambda: nn.GRU(3, 4, clip=float("inf")), ValueError, "clip must be a positive finite number"),
    # a kind error is a TypeError (it was a ValueError), and an int past the doubles a
    # ValueError naming clip (it was math.isfinite's bare OverflowError)
    (lambda: nn.RNN(3, 4, clip=BAD["1"]), TypeError, "^clip must be a number or None, got str$"),
    (lambda: nn.LSTM(3, 4, clip=True), TypeError, "^clip must be a number or None, got bool$"),
    (
        lambda: nn.GRU(3, 4, clip=np.array([2.0])),
        TypeError,
        "^clip must be a number or None, got ndarray$",
    ),
    (lambda: nn.LSTM(3, 4, clip=10**400), ValueError, "^clip must be a positive finite number"),
    (
        lambda: nn.LSTM(3, 4, init=BAD["identity"]),
        ValueError,
        r"init='identity' \(IRNN\) is for RNN",
    ),
    (
        lambda: nn.RNN(3, 4, init=BAD["xavier"]),
        ValueError,
        "init must be 'uniform', 'orthogonal' or 'identity', got 'xavier'",
    ),
    (lambda: nn.LSTM(3, 4, bias=False, forget_bias=1.0), ValueError, "forget_bias needs bias=True"),
    (
        lambda: nn.LSTM(3, 4, input_forget=True, forget_bias=1.0),
        ValueError,
        "forget_bias has no effect",
    ),
    (
        lambda: nn.RNN(3, 4, dtype=np.int32),
        TypeError,
        "dtype must be float32 or float64, got int32",
    ),
    (
        lambda: nn.RNN(3, 4, dtype=np.float16),
        TypeError,
        "dtype must be float32 or float64, got float16",
    ),
    (lambda: nn.RNN(3, 4, seed=BAD["seed"]), TypeError, "seed must be an int or None, got float"),
    (lambda: nn.LSTM(4, 3, seed=-1), ValueError, "^seed must be >= 0, got -1$"),
    (lambda: nn.LSTM(4, 3, forget_bias=float("nan")), ValueError, "^forget_bias must be a finite"),
    (lambda: nn.LSTM(4, 3, forget_bias=-float("inf")), ValueError, "^forget_bias must be a finite"),
    (
        lambda: nn.LSTM(4, 3, forget_bias=BAD["1"]),
        TypeError,
        "^forget_bias must be a number, got str$",
    ),
    (
        lambda: nn.LSTM(4, 3, forget_bias=True),
        TypeError,
        "^forget_bias must be a number, got bool$",
    ),
    *[
        (
            lambda f=flag, c=cls, v=value: c(3, 4, **{f: v}),
            TypeError,
            f"^{flag} must be a bool, got {type(value).__name__}$",
        )
        for flag, cls in [
            ("bias", nn.RNN),
            ("batch_first", nn.GRU),
            ("bidirectional", nn.LSTM),
            ("residual", nn.RNN),
            ("peepholes", nn.LSTM),
            ("input_forget", nn.LSTM),
            ("linear_before_reset", nn.GRU),
        ]
        for value in ("no", None, 2)
    ],
]


@pytest.mark.parametrize(("ctor", "exc", "match"), BAD_CONSTRUCTORS)
def test_bad_constructor_arguments(
    ctor: Callable[[], Any], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        ctor()


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU, nn.RNN])
def test_flags_take_numpy_bools_and_train_mode_must_be_a_bool(cls: type[nn.RNNBase]) -> None:
    m = cls(3, 4, bias=np.bool_(False), bidirectional=np.True_)
    assert m.bias is False and m.bidirectional is True and "bias_ih_l0" not in m.params
    for bad in (None, "eval", 0):
        with pytest.raises(TypeError, match=f"^mode must be a bool, got {type(bad).__name__}$"):
            m.train(bad)  # type: ignore[arg-type]
        assert m.training is True
    assert m.train(np.False_).training is False


def test_forward_refuses_a_training_attribute_that_is_not_a_bool(rng: np.random.Generator) -> None:
    m = nn.LSTM(3, 4)
    m.training = None  # type: ignore[assignment]
    with pytest.raises(TypeError, match=r"^training must be a bool, got NoneType$"):
        m.forward(rng.standard_normal((2, 1, 3)).astype(np.float32))


def test_useless_options_warn() -> None:
    with pytest.warns(UserWarning, match="dropout=0.5 has no effect with num_layers=1"):
        nn.LSTM(3, 4, dropout=0.5)
    with pytest.warns(UserWarning, match="residual=True has no effect with num_layers=1"):
        nn.GRU(3, 4, residual=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.LSTM(3, 4, 2, dropout=0.5, residual=True)


def test_bad_forward_arguments(rng: np.random.Generator) -> None:
    m = nn.LSTM(3, 4, 2, bidirectional=True)  # float32, L*D = 4
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    h = np.zeros((4, 2, 4), np.float32)
    with pytest.raises(
        TypeError,
        match=re.escape(
            "x must have dtype float32 (the dtype of this LSTM), got float64; convert it with "
            ".astype(np.float32) or build the module with dtype=np.float64"
        ),
    ):
        m.forward(x.astype(np.float64))
    with pytest.raises(TypeError, match=r"x must have dtype float32 .*got int64"):
        m.forward(np.zeros((5, 2, 3), np.int64))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "x must have shape (T, B, I) (or (T, I) unbatched) with I = input_size = 3, "
            "got (5, 2, 4)"
        ),
    ):
        m.forward(np.zeros((5, 2, 4), np.float32))
    with pytest.raises(ValueError, match=re.escape("x must have shape (B, T, I)")):
        nn.GRU(3, 4, batch_first=True).forward(np.zeros((1, 2, 3, 3), np.float32))
    with pytest.raises(
        TypeError, match=re.escape("state of an LSTM must be a tuple (h, c) or None, got ndarray")
    ):
        m.forward(x, h)
    with pytest.raises(TypeError, match="state of a GRU must be one array h or None, got a tuple"):
        nn.GRU(3, 4).forward(x, (h, h))
    with pytest.raises(
        ValueError,
        match=re.escape("state[1] (c) must have shape (L*D, B, H) = (4, 2, 4), got (2, 2, 4)"),
    ):
        m.forward(x, (h, h[:2]))
    with pytest.raises(TypeError, match=re.escape("state[0] (h) must have dtype float32")):
        m.forward(x, (h.astype(np.float64), None))
    with pytest.raises(
        ValueError, match=re.escape("lengths must have shape (B,) = (2,), got (3,)")
    ):
        m.forward(x, None, np.array([1, 2, 3]))
    with pytest.raises(ValueError, match=re.escape("lengths[1] = ")):
        m.forward(x, None, np.array([1, 6]))
    with pytest.raises(TypeError, match="lengths must have an integer dtype"):
        m.forward(x, None, np.array([1.0, 2.0]))


def test_bad_backward_arguments(rng: np.random.Generator) -> None:
    m = nn.GRU(3, 4, 2, bidirectional=True, merge_mode=None)
    with pytest.raises(RuntimeError, match="needs a forward in training mode first; no forward"):
        m.backward(None)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    (yf, yb), _ = m.forward(x)
    with pytest.raises(TypeError, match=re.escape("dy must be a tuple (dy_forward, dy_backward)")):
        m.backward(np.zeros((5, 2, 8), np.float32))
    with pytest.raises(
        ValueError, match=re.escape("dy[1] must have shape (5, 2, 4) (that of y), got (5, 2, 3)")
    ):
        m.backward((yf, yb[..., :3]))
    with pytest.raises(TypeError, match=re.escape("dy[0] must have dtype float32")):
        m.backward((yf.astype(np.float64), None))
    with pytest.raises(
        ValueError, match=re.escape("dstate must have shape (L*D, B, H) = (4, 2, 4), got (2, 4)")
    ):
        m.backward(None, np.zeros((2, 4), np.float32))
    g = nn.GRU(3, 4)
    y: Any = g.forward(x)[0]
    with pytest.raises(
        ValueError, match=re.escape("dy must have shape (5, 2, 4) (that of y), got (5, 2, 8)")
    ):
        g.backward(np.zeros((5, 2, 8), np.float32))
    with pytest.raises(TypeError, match="dy must be an array"):
        g.backward((y, y))
    g.eval()
    g.forward(x)
    with pytest.raises(
        RuntimeError, match="the module is in eval mode, where forward keeps nothing"
    ):
        g.backward(y)


@pytest.mark.parametrize(
    ("make_module", "message"),
    [
        (
            lambda: nn.LSTM(3, 2**40),
            "hidden_size must be at most 536870911 for LSTM (its weights have G*H = "
            "4*hidden_size rows, and the kernels' 32-bit BLAS takes at most 2147483647), got "
            "1099511627776",
        ),
        (
            lambda: nn.GRU(3, 2**30),
            "hidden_size must be at most 715827882 for GRU (its weights have G*H = "
            "3*hidden_size rows, and the kernels' 32-bit BLAS takes at most 2147483647), got "
            "1073741824",
        ),
        (
            lambda: nn.RNN(2**31, 4),
            "input_size must be at most 2147483647 (the kernels' 32-bit BLAS limit), got "
            "2147483648",
        ),
        (
            lambda: nn.RNN(3, 2**30, num_layers=2, bidirectional=True),
            "hidden_size must be at most 1073741823 for RNN with num_layers=2, "
            "bidirectional=True and merge_mode='concat' (the layers above the first take "
            "2*hidden_size inputs, and the kernels' 32-bit BLAS takes at most 2147483647), got "
            "1073741824",
        ),
    ],
    ids=["lstm-hidden", "gru-hidden", "rnn-input", "rnn-concat"],
)
def test_sizes_beyond_the_kernels(make_module: Callable[[], Any], message: str) -> None:
    """Sizes the 32-bit kernels could never run: a ValueError naming the argument, before
    any weight is allocated (it used to be NumPy's MemoryError for terabytes)."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make_module()


def test_bad_state_dicts() -> None:
    m = nn.LSTM(3, 4, proj_size=2)
    sd = m.state_dict()
    del sd["weight_hr_l0"]
    with pytest.raises(KeyError, match="missing keys: weight_hr_l0"):
        m.load_state_dict(sd)
    sd = m.state_dict()
    sd["weight_hr_l1"] = sd["weight_hr_l0"]
    with pytest.raises(KeyError, match="unexpected keys: weight_hr_l1"):
        m.load_state_dict(sd)
    sd = m.state_dict()
    sd["weight_hh_l0"] = np.zeros((16, 4), np.float32)
    before = m.params["weight_ih_l0"].copy()
    sd["weight_ih_l0"] = before + 1
    with pytest.raises(
        ValueError, match=re.escape("weight_hh_l0 must have shape (16, 2) in LSTM, got (16, 4)")
    ):
        m.load_state_dict(sd)
    np.testing.assert_array_equal(m.params["weight_ih_l0"], before)  # nothing copied
    sd = m.state_dict()
    sd["bias_ih_l0"] = np.zeros(16, np.int64)
    with pytest.raises(TypeError, match="bias_ih_l0 must be a floating array, got dtype int64"):
        m.load_state_dict(sd)


def _round_trips() -> list[Any]:
    return [
        pytest.param(lambda m: pickle.loads(pickle.dumps(m)), id="pickle"),
        pytest.param(copy.deepcopy, id="deepcopy"),
    ]


@pytest.mark.parametrize("copier", _round_trips())
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: nn.LSTM(4, 6, 2, dropout=0.3, proj_size=3, seed=1), id="lstm"),
        pytest.param(lambda: nn.LSTM(4, 6, peepholes=True, clip=2.0, seed=2), id="lstm-peep"),
        pytest.param(
            lambda: nn.GRU(4, 6, 2, bidirectional=True, dropout=0.2, merge_mode="sum", seed=3),
            id="gru",
        ),
        pytest.param(
            lambda: nn.RNN(4, 6, nonlinearity="relu", dtype=np.float64, residual=False, seed=4),
            id="rnn",
        ),
    ],
)
def test_pickle_and_deepcopy_are_exact_and_independent(
    make: Callable[[], nn.RNNBase], copier: Callable[[Any], Any], rng: np.random.Generator
) -> None:
    """pickle and copy.deepcopy used to fail ("cannot pickle 'module' object")."""
    m = make()
    x = rng.standard_normal((5, 2, 4)).astype(m.dtype)
    y, _ = m.forward(x)  # a tape (C++ caches) is kept: it is not copied
    m.backward(np.ones_like(y))
    c = copier(m)
    assert type(c) is type(m) and repr(c) == repr(m) and c.training == m.training
    assert c.params.keys() == m.params.keys()
    for key in m.params:
        assert c.params[key].dtype == m.params[key].dtype
        assert np.array_equal(c.params[key], m.params[key]), key
        assert np.array_equal(c.grads[key], m.grads[key]), key
        assert not np.shares_memory(c.params[key], m.params[key]), key
    # The same outputs, dropout masks (the generator's position is copied) and gradients.
    (y_m, s_m), (y_c, s_c) = m.forward(x), c.forward(x)
    assert np.array_equal(y_m, y_c)
    states_m = s_m if isinstance(s_m, tuple) else (s_m,)
    states_c = s_c if isinstance(s_c, tuple) else (s_c,)
    assert all(np.array_equal(a, b) for a, b in zip(states_m, states_c, strict=True))
    m.zero_grad()
    c.zero_grad()
    dy = rng.standard_normal(y_m.shape).astype(m.dtype)
    assert np.array_equal(m.backward(dy), c.backward(dy))
    for key in m.grads:
        assert np.array_equal(c.grads[key], m.grads[key]), key
    # Independent: changing the copy leaves the original alone.
    before = {k: v.copy() for k, v in m.params.items()}
    for p in c.params.values():
        p += 1
    c.rng.random(10)
    assert all(np.array_equal(m.params[k], v) for k, v in before.items())
    again = copier(m)
    assert np.array_equal(m.forward(x)[0], again.forward(x)[0])


def test_a_pickle_of_another_version_is_refused() -> None:
    m = nn.GRU(3, 4)
    state = m.__getstate__()
    state["_pickle_version"] = 99
    with pytest.raises(
        ValueError, match="cannot unpickle a GRU of pickle version 99; this rnnkit reads version 1"
    ):
        nn.GRU.__new__(nn.GRU).__setstate__(state)
