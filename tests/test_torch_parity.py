"""Parity of rnnkit's kernels with PyTorch (``torch.nn.LSTM/GRU/RNN`` and the ``*Cell`` modules).

The weights are the torch module's own parameters (``weight_ih_l0``, ``weight_hh_l0``,
``bias_ih_l0``, ``bias_hh_l0``, or ``weight_ih``... for the cells) passed to rnnkit's
functional API as they are: the layout and gate order are PyTorch's, with no reordering.
Outputs are compared, then the gradients of a random linear loss
``sum(dy * y) + sum(dh * h_n) [+ sum(dc * c_n)]`` with respect to every input (``x``, ``h0``,
``c0``) and every parameter against torch autograd.

Tolerances: float64 to 1e-12 of the largest magnitude of each compared array (both
libraries compute the same sums, only in a different order); float32 to 1e-5 of it.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import rnnkit

torch = pytest.importorskip("torch")

CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}

# (T, B, I, H): H below, at and above one 64-unit block, not a multiple of 64, and B = 1.
SEQ_SHAPES = [(6, 3, 10, 70), (4, 1, 9, 130), (3, 5, 130, 33), (5, 2, 7, 64)]
CELL_SHAPES = [(3, 10, 70), (1, 9, 130), (5, 130, 33)]


# --------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True, scope="module")
def _one_thread_each():
    """torch and rnnkit on one thread each: two OpenMP runtimes spinning on a few cores
    slow these small problems down a hundredfold. rnnkit's results do not depend on its
    thread count (tests/test_determinism.py), so this loses nothing."""
    saved = torch.get_num_threads(), rnnkit.get_num_threads()
    torch.set_num_threads(1)
    rnnkit.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        rnnkit.set_num_threads(saved[1])


def _seed(*parts: object) -> int:
    return zlib.crc32(repr(parts).encode())


def _assert_close(actual: np.ndarray, expected: np.ndarray, dtype: type, name: str) -> None:
    """``actual`` equals ``expected`` to TOLERANCE[dtype] of the largest ``|expected|``."""
    assert isinstance(actual, np.ndarray), f"{name}: got {type(actual).__name__}"
    assert actual.dtype == dtype, f"{name}: dtype {actual.dtype}, expected {np.dtype(dtype)}"
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    tol = TOLERANCE[dtype]
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    assert scale > 0.0 or expected.size == 0, f"{name}: the torch result is all zeros"
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale, err_msg=name)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _torch_module(cell: str, level: str, inp: int, hid: int, bias: bool, dtype: type):
    """A freshly initialised torch module (torch's own default initialisation, seeded)."""
    torch.manual_seed(_seed(cell, level, inp, hid, bias))
    kw = {"bias": bias, "dtype": TORCH_DTYPE[dtype]}
    if level == "seq":
        if cell == "lstm":
            return torch.nn.LSTM(inp, hid, **kw)
        if cell == "gru":
            return torch.nn.GRU(inp, hid, **kw)
        return torch.nn.RNN(inp, hid, nonlinearity=cell.removeprefix("rnn_"), **kw)
    if cell == "lstm":
        return torch.nn.LSTMCell(inp, hid, **kw)
    if cell == "gru":
        return torch.nn.GRUCell(inp, hid, **kw)
    return torch.nn.RNNCell(inp, hid, nonlinearity=cell.removeprefix("rnn_"), **kw)


def _weights(module, level: str, bias: bool) -> dict[str, np.ndarray | None]:
    """The module's parameters as NumPy arrays, under rnnkit's argument names."""
    suffix = "_l0" if level == "seq" else ""
    out = {
        "w_ih": getattr(module, "weight_ih" + suffix),
        "w_hh": getattr(module, "weight_hh" + suffix),
        "b_ih": getattr(module, "bias_ih" + suffix) if bias else None,
        "b_hh": getattr(module, "bias_hh" + suffix) if bias else None,
    }
    return {k: None if v is None else _np(v).copy() for k, v in out.items()}


def _rnnkit_forward(cell: str, level: str, x, h0, c0, w, training: bool = True):
    """rnnkit's forward; returns (dict of outputs, cache)."""
    args = (w["w_ih"], w["w_hh"], w["b_ih"], w["b_hh"])
    if level == "seq":
        if cell == "lstm":
            y, h_n, c_n, cache = rnnkit.lstm_forward(x, h0, c0, *args, training=training)
            return {"y": y, "h_n": h_n, "c_n": c_n}, cache
        if cell == "gru":
            y, h_n, cache = rnnkit.gru_forward(x, h0, *args, training=training)
        else:
            y, h_n, cache = rnnkit.rnn_forward(
                x, h0, *args, nonlinearity=cell.removeprefix("rnn_"), training=training
            )
        return {"y": y, "h_n": h_n}, cache
    if cell == "lstm":
        h1, c1, cache = rnnkit.lstm_cell_forward(x, h0, c0, *args, training=training)
        return {"h_n": h1, "c_n": c1}, cache
    if cell == "gru":
        h1, cache = rnnkit.gru_cell_forward(x, h0, *args, training=training)
    else:
        h1, cache = rnnkit.rnn_cell_forward(
            x, h0, *args, nonlinearity=cell.removeprefix("rnn_"), training=training
        )
    return {"h_n": h1}, cache


def _rnnkit_backward(cell: str, level: str, seeds: dict[str, np.ndarray], cache):
    """rnnkit's backward, as a dict keyed dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh."""
    if level == "seq":
        if cell == "lstm":
            g = rnnkit.lstm_backward(seeds["y"], seeds["h_n"], seeds["c_n"], cache)
        elif cell == "gru":
            g = rnnkit.gru_backward(seeds["y"], seeds["h_n"], cache)
        else:
            g = rnnkit.rnn_backward(seeds["y"], seeds["h_n"], cache)
        return g._asdict()
    if cell == "lstm":
        g = rnnkit.lstm_cell_backward(seeds["h_n"], seeds["c_n"], cache)._asdict()
        g["dc0"] = g.pop("dc")
    elif cell == "gru":
        g = rnnkit.gru_cell_backward(seeds["h_n"], cache)._asdict()
    else:
        g = rnnkit.rnn_cell_backward(seeds["h_n"], cache)._asdict()
    g["dh0"] = g.pop("dh")
    return g


def _torch_run(cell: str, level: str, module, x, h0, c0, seeds, bias: bool):
    """torch's outputs and the gradients of the linear loss given by ``seeds``."""
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    ht = torch.from_numpy(h0.copy()).requires_grad_(True)
    ct = torch.from_numpy(c0.copy()).requires_grad_(True) if c0 is not None else None
    if level == "seq":
        if cell == "lstm":
            y, (h_n, c_n) = module(xt, (ht[None], ct[None]))
            outs = {"y": y, "h_n": h_n[0], "c_n": c_n[0]}
        else:
            y, h_n = module(xt, ht[None])
            outs = {"y": y, "h_n": h_n[0]}
    elif cell == "lstm":
        h1, c1 = module(xt, (ht, ct))
        outs = {"h_n": h1, "c_n": c1}
    else:
        outs = {"h_n": module(xt, ht)}
    suffix = "_l0" if level == "seq" else ""
    wrt = {"dx": xt, "dh0": ht}
    if ct is not None:
        wrt["dc0"] = ct
    wrt["dw_ih"] = getattr(module, "weight_ih" + suffix)
    wrt["dw_hh"] = getattr(module, "weight_hh" + suffix)
    if bias:
        wrt["db_ih"] = getattr(module, "bias_ih" + suffix)
        wrt["db_hh"] = getattr(module, "bias_hh" + suffix)
    names = list(outs)
    grads = torch.autograd.grad(
        [outs[n] for n in names],
        list(wrt.values()),
        grad_outputs=[torch.from_numpy(seeds[n]) for n in names],
    )
    return {k: _np(v) for k, v in outs.items()}, {
        k: _np(g) for k, g in zip(wrt, grads, strict=True)
    }


def _problem(cell: str, level: str, shape: tuple[int, ...], dtype: type, seed: int):
    rng = np.random.default_rng(seed)
    if level == "seq":
        steps, batch, inp, hid = shape
        x = rng.standard_normal((steps, batch, inp)).astype(dtype)
    else:
        batch, inp, hid = shape
        x = rng.standard_normal((batch, inp)).astype(dtype)
    h0 = (0.8 * rng.standard_normal((batch, hid))).astype(dtype)
    c0 = (0.8 * rng.standard_normal((batch, hid))).astype(dtype) if cell == "lstm" else None
    return x, h0, c0, hid, inp, rng


def _check_parity(cell: str, level: str, shape, bias: bool, dtype: type) -> None:
    x, h0, c0, hid, inp, rng = _problem(cell, level, shape, dtype, _seed(cell, shape, bias))
    module = _torch_module(cell, level, inp, hid, bias, dtype)
    w = _weights(module, level, bias)
    assert w["w_ih"].shape == (GATES[cell] * hid, inp)

    ours, cache = _rnnkit_forward(cell, level, x, h0, c0, w)
    seeds = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in ours.items()}
    theirs, torch_grads = _torch_run(cell, level, module, x, h0, c0, seeds, bias)

    assert set(ours) == set(theirs)
    for name in ours:
        _assert_close(ours[name], theirs[name], dtype, name)

    grads = _rnnkit_backward(cell, level, seeds, cache)
    expected_names = {"dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh"}
    if cell == "lstm":
        expected_names.add("dc0")
    assert expected_names <= set(grads)
    for name in set(grads) - expected_names:  # optional parameters torch's module lacks
        assert grads.pop(name) is None, name
    for name, value in grads.items():
        if name in torch_grads:
            _assert_close(value, torch_grads[name], dtype, name)
        else:  # a bias gradient of a forward without biases
            assert not bias and name in ("db_ih", "db_hh") and value is None, name

    # Inference mode matches torch as well.
    inference, _ = _rnnkit_forward(cell, level, x, h0, c0, w, training=False)
    for name in ours:
        _assert_close(inference[name], theirs[name], dtype, name + " (training=False)")


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("shape", SEQ_SHAPES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize("cell", CELLS)
def test_sequence_matches_torch(cell: str, shape, bias: bool, dtype: type) -> None:
    _check_parity(cell, "seq", shape, bias, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("shape", CELL_SHAPES, ids=lambda s: "B{}I{}H{}".format(*s))
@pytest.mark.parametrize("cell", CELLS)
def test_cell_matches_torch(cell: str, shape, bias: bool, dtype: type) -> None:
    _check_parity(cell, "cell", shape, bias, dtype)


@pytest.mark.parametrize("cell", CELLS)
def test_zero_initial_state_matches_torch(cell: str) -> None:
    """``h0 = c0 = None`` is torch's ``hx = None``; dh0/dc0 are still the gradients there."""
    dtype, (steps, batch, inp, hid) = np.float64, (5, 4, 6, 70)
    rng = np.random.default_rng(_seed("zero-state", cell))
    x = rng.standard_normal((steps, batch, inp))
    module = _torch_module(cell, "seq", inp, hid, True, dtype)
    w = _weights(module, "seq", True)
    ours, cache = _rnnkit_forward(cell, "seq", x, None, None, w)
    seeds = {k: rng.standard_normal(v.shape) for k, v in ours.items()}
    zeros = np.zeros((batch, hid))
    theirs, torch_grads = _torch_run(
        cell, "seq", module, x, zeros, zeros if cell == "lstm" else None, seeds, True
    )
    for name in ours:
        _assert_close(ours[name], theirs[name], dtype, name)
    # torch.nn.LSTM with hx=None gives the same outputs as explicit zeros.
    y_none = module(torch.from_numpy(x))[0]
    np.testing.assert_array_equal(_np(y_none), theirs["y"])
    grads = _rnnkit_backward(cell, "seq", seeds, cache)
    for name, expected in torch_grads.items():
        _assert_close(grads[name], expected, dtype, name)


@pytest.mark.parametrize("cell", CELLS)
def test_state_dict_loads_without_reordering(cell: str) -> None:
    """Weights written into a torch module from NumPy (not torch's init) give torch's
    outputs: the gate order is PyTorch's in both directions."""
    steps, batch, inp, hid = 4, 3, 5, 9
    rng = np.random.default_rng(_seed("state-dict", cell))
    g = GATES[cell]
    w = {
        "w_ih": 0.5 * rng.standard_normal((g * hid, inp)),
        "w_hh": 0.5 * rng.standard_normal((g * hid, hid)),
        "b_ih": 0.5 * rng.standard_normal(g * hid),
        "b_hh": 0.5 * rng.standard_normal(g * hid),
    }
    module = _torch_module(cell, "seq", inp, hid, True, np.float64)
    module.load_state_dict(
        {
            "weight_ih_l0": torch.from_numpy(w["w_ih"]),
            "weight_hh_l0": torch.from_numpy(w["w_hh"]),
            "bias_ih_l0": torch.from_numpy(w["b_ih"]),
            "bias_hh_l0": torch.from_numpy(w["b_hh"]),
        }
    )
    x = rng.standard_normal((steps, batch, inp))
    ours, _ = _rnnkit_forward(cell, "seq", x, None, None, w)
    with torch.no_grad():
        expected = _np(module(torch.from_numpy(x))[0])
    _assert_close(ours["y"], expected, np.float64, "y")
