"""Tests of the pure-NumPy reference (``rnnkit.reference``) on its own.

The reference is the oracle for every kernel, so it is checked against the two things
that do not depend on it: central finite differences (every input and parameter of
every cell, at the cell and the sequence level) and PyTorch's autograd (float64, to
1e-10). The rest pins down its conventions: sequences are loops of cells, ``T = 0`` and
``B = 0``, dtypes, fresh outputs, ``None`` arguments, argument errors.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from rnnkit import reference as ref

KINDS = ("lstm", "gru", "rnn_tanh", "rnn_relu")
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
LEVELS = ("cell", "seq")
BIASES = ("both", "none", "ih", "hh")
PARAMS = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")
GRADS = PARAMS  # the gradient of each parameter is returned under the same name

# Tiny shapes for the finite-difference checks.
STEPS, BATCH, INPUT, HIDDEN = 3, 2, 3, 4

Params = dict[str, Any]


# --------------------------------------------------------------------------- helpers
def make_params(
    rng: np.random.Generator,
    kind: str,
    level: str,
    *,
    steps: int = STEPS,
    batch: int = BATCH,
    inp: int = INPUT,
    hid: int = HIDDEN,
    bias: str = "both",
    state: bool = True,
    dtype: type = np.float64,
) -> Params:
    """Random non-zero inputs and parameters (``None`` where absent) for one problem."""
    g = GATES[kind]

    def draw(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (scale * rng.standard_normal(shape)).astype(dtype)

    x_shape = (steps, batch, inp) if level == "seq" else (batch, inp)
    return {
        "x": draw(*x_shape),
        "h0": draw(batch, hid) if state else None,
        "c0": draw(batch, hid) if state and kind == "lstm" else None,
        "w_ih": draw(g * hid, inp, scale=0.6),
        "w_hh": draw(g * hid, hid, scale=0.6),
        "b_ih": draw(g * hid, scale=0.5) if bias in ("both", "ih") else None,
        "b_hh": draw(g * hid, scale=0.5) if bias in ("both", "hh") else None,
    }


def nonlinearity(kind: str) -> str:
    return kind.split("_")[1]


def forward(kind: str, level: str, p: Params) -> tuple[dict[str, np.ndarray], Any]:
    """Run the reference forward: outputs by name (``y``, ``h_n``, ``c_n``), cache."""
    w = (p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    if kind == "lstm":
        if level == "seq":
            y, h, c, cache = ref.lstm_forward(p["x"], p["h0"], p["c0"], *w)
            return {"y": y, "h_n": h, "c_n": c}, cache
        h, c, cache = ref.lstm_cell_forward(p["x"], p["h0"], p["c0"], *w)
        return {"h_n": h, "c_n": c}, cache
    if kind == "gru":
        if level == "seq":
            y, h, cache = ref.gru_forward(p["x"], p["h0"], *w)
            return {"y": y, "h_n": h}, cache
        h, cache = ref.gru_cell_forward(p["x"], p["h0"], *w)
        return {"h_n": h}, cache
    nl = nonlinearity(kind)
    if level == "seq":
        y, h, cache = ref.rnn_forward(p["x"], p["h0"], *w, nonlinearity=nl)
        return {"y": y, "h_n": h}, cache
    h, cache = ref.rnn_cell_forward(p["x"], p["h0"], *w, nonlinearity=nl)
    return {"h_n": h}, cache


def backward(
    kind: str,
    level: str,
    g: dict[str, np.ndarray | None],
    cache: Any,
) -> dict[str, np.ndarray | None]:
    """Run the reference backward: gradients by parameter name (``x``, ``h0``...)."""
    if kind == "lstm":
        if level == "seq":
            res = ref.lstm_backward(g.get("y"), g.get("h_n"), g.get("c_n"), cache)
        else:
            res = ref.lstm_cell_backward(g.get("h_n"), g.get("c_n"), cache)
        *core, dw_hr, dpeepholes = res  # no projection, no peepholes in this file
        assert dw_hr is None and dpeepholes is None
        return dict(zip(GRADS, core, strict=True))
    if kind == "gru":
        if level == "seq":
            res = ref.gru_backward(g.get("y"), g.get("h_n"), cache)
        else:
            res = ref.gru_cell_backward(g.get("h_n"), cache)
    elif level == "seq":
        res = ref.rnn_backward(g.get("y"), g.get("h_n"), cache)
    else:
        res = ref.rnn_cell_backward(g.get("h_n"), cache)
    names = [n for n in GRADS if n != "c0"]
    return dict(zip(names, res, strict=True))


def output_grads(
    rng: np.random.Generator,
    outputs: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Random weights ``gy``, ``gh``, ``gc`` of the loss, one per output."""
    return {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in outputs.items()}


def loss(kind: str, level: str, p: Params, g: dict[str, np.ndarray]) -> float:
    """``sum(y*gy) + sum(h_n*gh) (+ sum(c_n*gc))``."""
    outputs, _ = forward(kind, level, p)
    return float(sum(np.sum(outputs[k] * g[k]) for k in outputs))


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a - b| / max |b|`` (0 when both are all zeros)."""
    num = float(np.max(np.abs(a - b), initial=0.0))
    den = float(np.max(np.abs(b), initial=0.0))
    return 0.0 if num == 0.0 else num / max(den, 1e-300)


def relu_preactivations(p: Params, level: str) -> np.ndarray:
    """The pre-activations ``x W_ih^T + b_ih + h W_hh^T + b_hh`` at every step."""
    xs = p["x"] if level == "seq" else p["x"][None]
    h = p["h0"] if p["h0"] is not None else np.zeros((xs.shape[1], p["w_hh"].shape[1]))
    pre = []
    for x in xs:
        a = x @ p["w_ih"].T + h @ p["w_hh"].T
        a = a + (0 if p["b_ih"] is None else p["b_ih"])
        a = a + (0 if p["b_hh"] is None else p["b_hh"])
        pre.append(a)
        h = np.maximum(a, 0)
    return np.stack(pre)


def make_fd_params(
    rng: np.random.Generator,
    kind: str,
    level: str,
    bias: str,
    state: bool,
) -> Params:
    """:func:`make_params`, redrawn for relu until no pre-activation is near 0."""
    for _ in range(100):
        p = make_params(rng, kind, level, bias=bias, state=state)
        if kind != "rnn_relu":
            return p
        pre = relu_preactivations(p, level)
        if np.min(np.abs(pre)) > 1e-4 and np.any(pre > 0):
            return p
    raise AssertionError("no kink-free relu problem drawn")  # pragma: no cover


def numerical_grad(
    kind: str,
    level: str,
    p: Params,
    g: dict[str, np.ndarray],
    name: str,
    eps: float,
) -> np.ndarray:
    """Central differences of :func:`loss` for every coordinate of ``p[name]``."""
    a = p[name]
    out = np.empty_like(a)
    for idx in np.ndindex(a.shape):
        orig = a[idx]
        a[idx] = orig + eps
        up = loss(kind, level, p, g)
        a[idx] = orig - eps
        down = loss(kind, level, p, g)
        a[idx] = orig
        out[idx] = (up - down) / (2 * eps)
    return out


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240601)


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("state", [True, False], ids=["state", "nostate"])
@pytest.mark.parametrize("bias", BIASES)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("kind", KINDS)
def test_finite_differences(
    rng: np.random.Generator,
    kind: str,
    level: str,
    bias: str,
    state: bool,
) -> None:
    p = make_fd_params(rng, kind, level, bias, state)
    outputs, cache = forward(kind, level, p)
    g = output_grads(rng, outputs)
    grads = backward(kind, level, g, cache)

    checked = 0
    for name in PARAMS:
        if name not in grads:  # c0 of GRU / RNN
            assert p[name] is None
            continue
        if p[name] is None:
            if name.startswith("b_"):
                assert grads[name] is None
            else:  # gradient with respect to the zero initial state
                assert grads[name] is not None
                assert grads[name].shape == (BATCH, HIDDEN)
            continue
        assert grads[name].shape == p[name].shape
        assert grads[name].dtype == np.float64
        num = numerical_grad(kind, level, p, g, name, eps=1e-6)
        err = rel_err(grads[name], num)
        assert err < 1e-6, f"{name}: relative error {err:.3g}"
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("kind", KINDS)
def test_none_state_is_zeros(rng: np.random.Generator, kind: str, level: str) -> None:
    p = make_params(rng, kind, level, state=False)
    outputs, cache = forward(kind, level, p)
    g = output_grads(rng, outputs)
    grads = backward(kind, level, g, cache)

    pz = dict(
        p,
        h0=np.zeros((BATCH, HIDDEN)),
        c0=np.zeros((BATCH, HIDDEN)) if kind == "lstm" else None,
    )
    outputs_z, cache_z = forward(kind, level, pz)
    grads_z = backward(kind, level, g, cache_z)
    for k in outputs:
        np.testing.assert_array_equal(outputs[k], outputs_z[k])
    for k in grads:
        np.testing.assert_array_equal(grads[k], grads_z[k])


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("kind", KINDS)
def test_none_incoming_grads_are_zeros(
    rng: np.random.Generator,
    kind: str,
    level: str,
) -> None:
    p = make_params(rng, kind, level)
    outputs, cache = forward(kind, level, p)
    g = output_grads(rng, outputs)
    for dropped in outputs:
        partial = {k: (None if k == dropped else v) for k, v in g.items()}
        zeroed = {k: (np.zeros_like(v) if k == dropped else v) for k, v in g.items()}
        a = backward(kind, level, partial, cache)
        b = backward(kind, level, zeroed, cache)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    nothing = backward(kind, level, {}, cache)
    for k, v in nothing.items():
        if v is not None:
            assert not np.any(v), k


def test_relu_derivative_at_zero_is_zero() -> None:
    x = np.array([[1.0, -1.0]])
    w_ih = np.array([[1.0, 1.0]])  # pre-activation exactly 0
    w_hh = np.array([[0.5]])
    h1, cache = ref.rnn_cell_forward(x, None, w_ih, w_hh, nonlinearity="relu")
    assert h1[0, 0] == 0.0
    dx, dh, dw_ih, dw_hh, db_ih, db_hh = ref.rnn_cell_backward(np.ones((1, 1)), cache)
    for a in (dx, dh, dw_ih, dw_hh):
        assert not np.any(a)
    assert db_ih is None and db_hh is None


# --------------------------------------------------------------------------- structure
@pytest.mark.parametrize("kind", KINDS)
def test_sequence_is_a_loop_of_cells(rng: np.random.Generator, kind: str) -> None:
    steps = 4
    p = make_params(rng, kind, "seq", steps=steps)
    outputs, cache = forward(kind, "seq", p)
    g = output_grads(rng, outputs)
    grads = backward(kind, "seq", g, cache)

    h, c = p["h0"], p["c0"]
    ys, caches = [], []
    for t in range(steps):
        cell_out, cell_cache = forward(kind, "cell", dict(p, x=p["x"][t], h0=h, c0=c))
        h, c = cell_out["h_n"], cell_out.get("c_n")
        ys.append(h)
        caches.append(cell_cache)
    np.testing.assert_array_equal(outputs["y"], np.stack(ys))
    np.testing.assert_array_equal(outputs["h_n"], h)
    if kind == "lstm":
        np.testing.assert_array_equal(outputs["c_n"], c)

    dh, dc = g["h_n"], g.get("c_n")
    dxs = [None] * steps
    sums = {k: np.zeros_like(p[k]) for k in ("w_ih", "w_hh", "b_ih", "b_hh")}
    for t in reversed(range(steps)):
        cg = backward(kind, "cell", {"h_n": g["y"][t] + dh, "c_n": dc}, caches[t])
        dxs[t], dh, dc = cg["x"], cg["h0"], cg.get("c0")
        for k in sums:
            sums[k] += cg[k]
    np.testing.assert_array_equal(grads["x"], np.stack(dxs))
    np.testing.assert_array_equal(grads["h0"], dh)
    if kind == "lstm":
        np.testing.assert_array_equal(grads["c0"], dc)
    for k, v in sums.items():
        np.testing.assert_array_equal(grads[k], v)


@pytest.mark.parametrize("state", [True, False], ids=["state", "nostate"])
@pytest.mark.parametrize("bias", ["both", "none"])
@pytest.mark.parametrize("kind", KINDS)
def test_zero_steps(
    rng: np.random.Generator,
    kind: str,
    bias: str,
    state: bool,
) -> None:
    p = make_params(rng, kind, "seq", steps=0, bias=bias, state=state)
    outputs, cache = forward(kind, "seq", p)
    assert outputs["y"].shape == (0, BATCH, HIDDEN)
    assert outputs["y"].dtype == np.float64
    for name, init in (("h_n", "h0"), ("c_n", "c0")):
        if name not in outputs:
            continue
        if state:
            np.testing.assert_array_equal(outputs[name], p[init])
            assert not np.shares_memory(outputs[name], p[init])
        else:
            np.testing.assert_array_equal(outputs[name], np.zeros((BATCH, HIDDEN)))

    g = {"y": np.zeros((0, BATCH, HIDDEN))} | {
        k: rng.standard_normal((BATCH, HIDDEN)) for k in outputs if k != "y"
    }
    grads = backward(kind, "seq", g, cache)
    assert grads["x"].shape == (0, BATCH, INPUT)
    np.testing.assert_array_equal(grads["h0"], g["h_n"])
    assert not np.shares_memory(grads["h0"], g["h_n"])
    if kind == "lstm":
        np.testing.assert_array_equal(grads["c0"], g["c_n"])
        assert not np.shares_memory(grads["c0"], g["c_n"])
    for k in ("w_ih", "w_hh"):
        assert grads[k].shape == p[k].shape
        assert not np.any(grads[k])
    for k in ("b_ih", "b_hh"):
        if p[k] is None:
            assert grads[k] is None
        else:
            assert grads[k].shape == p[k].shape
            assert not np.any(grads[k])

    nothing = backward(kind, "seq", {}, cache)
    assert not np.any(nothing["h0"])


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("kind", KINDS)
def test_zero_batch(rng: np.random.Generator, kind: str, level: str) -> None:
    p = make_params(rng, kind, level, batch=0)
    outputs, cache = forward(kind, level, p)
    if level == "seq":
        assert outputs["y"].shape == (STEPS, 0, HIDDEN)
    for k in ("h_n", "c_n"):
        if k in outputs:
            assert outputs[k].shape == (0, HIDDEN)
    g = output_grads(rng, outputs)
    grads = backward(kind, level, g, cache)
    for k, v in grads.items():
        if p[k] is not None:
            assert v.shape == p[k].shape
            assert not np.any(v)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("kind", KINDS)
def test_float32_in_float32_out(
    rng: np.random.Generator,
    kind: str,
    level: str,
) -> None:
    p64 = make_params(rng, kind, level)
    p32 = {k: None if v is None else v.astype(np.float32) for k, v in p64.items()}
    out64, cache64 = forward(kind, level, p64)
    out32, cache32 = forward(kind, level, p32)
    g64 = output_grads(rng, out64)
    g32 = {k: v.astype(np.float32) for k, v in g64.items()}
    grads64 = backward(kind, level, g64, cache64)
    grads32 = backward(kind, level, g32, cache32)
    for k in out64:
        assert out32[k].dtype == np.float32, k
        assert rel_err(out32[k], out64[k]) < 1e-5, k
    for k in grads64:
        assert grads32[k].dtype == np.float32, k
        assert rel_err(grads32[k], grads64[k]) < 1e-5, k


@pytest.mark.parametrize(
    ("level", "steps"),
    [("cell", STEPS), ("seq", STEPS), ("seq", 0)],
    ids=["cell", "seq", "T0"],
)
@pytest.mark.parametrize("kind", KINDS)
def test_outputs_are_fresh(
    rng: np.random.Generator,
    kind: str,
    level: str,
    steps: int,
) -> None:
    p = make_params(rng, kind, level, steps=steps)
    outputs, cache = forward(kind, level, p)
    g = output_grads(rng, outputs)
    grads = backward(kind, level, g, cache)
    inputs = [v for v in (*p.values(), *g.values()) if v is not None]
    results = [*outputs.values(), *(v for v in grads.values() if v is not None)]
    for r in results:
        for a in inputs:
            assert not np.shares_memory(r, a)
    for r1, r2 in itertools.combinations(results, 2):
        assert not np.shares_memory(r1, r2)


# --------------------------------------------------------------------------- numerics
def test_sigmoid_is_stable() -> None:
    for dtype in (np.float32, np.float64):
        a = np.array([-1e4, -800.0, -30.0, 0.0, 30.0, 800.0, 1e4], dtype=dtype)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            s = ref.sigmoid(a)
        assert s.dtype == dtype
        assert s[0] == 0.0 and s[3] == 0.5 and s[-1] == 1.0
        np.testing.assert_allclose(s[2], 1 / (1 + np.exp(30.0)), rtol=1e-6)
        np.testing.assert_allclose(s[4], 1 / (1 + np.exp(-30.0)), rtol=1e-6)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("kind", KINDS)
def test_large_inputs_do_not_overflow(
    rng: np.random.Generator,
    kind: str,
    level: str,
) -> None:
    p = make_params(rng, kind, level)
    p["x"] = p["x"] * 1e4
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        outputs, cache = forward(kind, level, p)
        grads = backward(kind, level, output_grads(rng, outputs), cache)
    for v in (*outputs.values(), *grads.values()):
        if v is not None:
            assert np.all(np.isfinite(v))


# --------------------------------------------------------------------------- arguments
def test_bad_nonlinearity(rng: np.random.Generator) -> None:
    p = make_params(rng, "rnn_tanh", "seq")
    w = (p["w_ih"], p["w_hh"])
    with pytest.raises(ValueError, match="nonlinearity"):
        ref.rnn_forward(p["x"], None, *w, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="nonlinearity"):
        ref.rnn_cell_forward(p["x"][0], None, *w, nonlinearity="Tanh")


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("kind", KINDS)
def test_mixed_dtypes_are_refused(
    rng: np.random.Generator,
    kind: str,
    level: str,
) -> None:
    p = make_params(rng, kind, level)
    for name in ("x", "h0", "b_hh"):
        q = dict(p, **{name: p[name].astype(np.float32)})
        expected = name if level == "seq" else name.rstrip("0")  # cells take h, c
        with pytest.raises(TypeError, match=rf"^{expected} has dtype float32"):
            forward(kind, level, q)
    outputs, cache = forward(kind, level, p)
    g = {k: v.astype(np.float32) for k, v in output_grads(rng, outputs).items()}
    with pytest.raises(TypeError):
        backward(kind, level, g, cache)


# --------------------------------------------------------------------------- PyTorch
def torch_run(
    kind: str,
    level: str,
    p: Params,
    g: dict[str, np.ndarray],
    bias: bool,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Outputs and autograd gradients of the same problem through ``torch.nn``."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    inp, hid = p["w_ih"].shape[1], p["w_hh"].shape[1]
    kwargs: dict[str, Any] = {"bias": bias, "dtype": torch.float64}
    base = kind.split("_")[0]
    if base == "rnn":
        kwargs["nonlinearity"] = nonlinearity(kind)
    cls = {
        ("lstm", "seq"): nn.LSTM,
        ("gru", "seq"): nn.GRU,
        ("rnn", "seq"): nn.RNN,
        ("lstm", "cell"): nn.LSTMCell,
        ("gru", "cell"): nn.GRUCell,
        ("rnn", "cell"): nn.RNNCell,
    }[base, level]
    module = cls(inp, hid, **kwargs)
    suffix = "_l0" if level == "seq" else ""
    names = {k: k.replace("w_", "weight_").replace("b_", "bias_") + suffix for k in p}
    with torch.no_grad():
        for k in ("w_ih", "w_hh", "b_ih", "b_hh"):
            if p[k] is not None:
                getattr(module, names[k]).copy_(torch.from_numpy(p[k]))

    def leaf(a: np.ndarray | None) -> Any:
        return None if a is None else torch.tensor(a, requires_grad=True)

    x, h0, c0 = leaf(p["x"]), leaf(p["h0"]), leaf(p["c0"])
    outputs: dict[str, Any] = {}
    if level == "seq":
        if base == "lstm":
            hx = None if h0 is None else (h0[None], c0[None])
            outputs["y"], (h_n, c_n) = module(x, hx)
            outputs["h_n"], outputs["c_n"] = h_n[0], c_n[0]
        else:
            outputs["y"], h_n = module(x, None if h0 is None else h0[None])
            outputs["h_n"] = h_n[0]
    elif base == "lstm":
        hx = None if h0 is None else (h0, c0)
        outputs["h_n"], outputs["c_n"] = module(x, hx)
    else:
        outputs["h_n"] = module(x, h0)

    total = sum((v * torch.from_numpy(g[k])).sum() for k, v in outputs.items())
    total.backward()
    grads = {"x": x.grad.numpy()}
    if h0 is not None:
        grads["h0"] = h0.grad.numpy()
    if c0 is not None:
        grads["c0"] = c0.grad.numpy()
    for k in ("w_ih", "w_hh", "b_ih", "b_hh"):
        if p[k] is not None:
            grads[k] = getattr(module, names[k]).grad.numpy()
    return {k: v.detach().numpy() for k, v in outputs.items()}, grads


@pytest.mark.parametrize("state", [True, False], ids=["state", "nostate"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("kind", KINDS)
def test_torch_parity(
    rng: np.random.Generator,
    kind: str,
    level: str,
    bias: bool,
    state: bool,
) -> None:
    p = make_params(
        rng,
        kind,
        level,
        steps=4,
        batch=3,
        inp=4,
        hid=5,
        bias="both" if bias else "none",
    )
    if not state:
        p["h0"] = p["c0"] = None
    outputs, cache = forward(kind, level, p)
    g = output_grads(rng, outputs)
    grads = backward(kind, level, g, cache)
    t_outputs, t_grads = torch_run(kind, level, p, g, bias)

    assert outputs.keys() == t_outputs.keys()
    for k, v in t_outputs.items():
        assert rel_err(outputs[k], v) < 1e-10, k
    expected = {k for k in PARAMS if p[k] is not None}
    assert t_grads.keys() == expected
    for k, v in t_grads.items():
        assert rel_err(grads[k], v) < 1e-10, k
