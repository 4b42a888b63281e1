"""Parity of the modules ``rnnkit.nn.LSTM/GRU/RNN`` with ``torch.nn.LSTM/GRU/RNN``.

Every configuration torch has: ``num_layers`` 1..3, ``bidirectional``, ``proj_size`` (LSTM),
``batch_first``, ``bias=False``, variable lengths (torch: ``pack_padded_sequence(...,
enforce_sorted=False)`` and ``pad_packed_sequence``), an initial state given or ``None``,
unbatched input, float64 and float32. Weights move through ``state_dict`` in both directions
(torch's into ours, ours into torch) with no reordering. Compared: ``y``, the final state, and
the gradients of a random linear loss ``sum(dy*y) + sum(dh*h_n) [+ sum(dc*c_n)]`` with respect
to ``x``, the initial state and every parameter.

Tolerance: float64 to 1e-10 of the largest magnitude of each compared array; float32 to 1e-5.
Shapes: T time steps, B batch, I input size, H hidden size, P projection size, L layers,
D directions.
"""

from __future__ import annotations

import itertools
import re
import zlib
from typing import Any

import numpy as np
import pytest
import rnnkit
from rnnkit import nn

torch = pytest.importorskip("torch")

#: Cells under test; "lstm_proj" is the LSTM with proj_size.
CELLS = ("lstm", "lstm_proj", "gru", "rnn_tanh", "rnn_relu")
T, B, I, H, P = 5, 4, 3, 5, 2  # noqa: E741 -- the shape letters used everywhere
TOL: dict[Any, float] = {np.float64: 1e-10, np.float32: 1e-5}
TORCH_DTYPE: dict[Any, Any] = {np.float64: torch.float64, np.float32: torch.float32}

#: (batch_first, bias, lengths, state given): every combination.
VARIANTS = list(itertools.product([False, True], repeat=4))


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    """Run rnnkit and torch single-threaded here (rnnkit's results do not depend on the
    thread count, and these problems are tiny).

    With torch imported, rnnkit runs on torch's ``libgomp``; on a small busy machine each
    multi-threaded call of these tiny problems (rnnkit's backward, torch's forward and
    backward) can then stall for tens of milliseconds (OMP_WAIT_POLICY=passive avoids it too).
    """
    saved = rnnkit.get_num_threads(), torch.get_num_threads()
    rnnkit.set_num_threads(1)
    torch.set_num_threads(1)
    yield
    rnnkit.set_num_threads(saved[0])
    torch.set_num_threads(saved[1])


def _ids(v: tuple[bool, bool, bool, bool]) -> str:
    names = ("batch_first", "bias", "lengths", "state")
    return "-".join(n if on else "no_" + n for n, on in zip(names, v, strict=True))


def _seed(*parts: object) -> int:
    return zlib.crc32(repr(parts).encode())


def _pair(
    cell: str,
    num_layers: int,
    bidirectional: bool,
    *,
    bias: bool = True,
    batch_first: bool = False,
    dtype: Any = np.float64,
    source: str = "torch",
) -> tuple[Any, Any]:
    """A torch module and ours with the same weights, moved by ``state_dict`` from
    ``source`` ("torch": torch's default init loaded into ours; "ours": the reverse)."""
    kw: dict[str, Any] = {
        "num_layers": num_layers,
        "bias": bias,
        "batch_first": batch_first,
        "bidirectional": bidirectional,
    }
    seed = _seed(cell, num_layers, bidirectional, bias, batch_first, source)
    torch.manual_seed(seed)
    tkw = dict(kw, dtype=TORCH_DTYPE[dtype])
    if cell.startswith("lstm"):
        proj = P if cell == "lstm_proj" else 0
        tm = torch.nn.LSTM(I, H, proj_size=proj, **tkw)
        ours: nn.RNNBase = nn.LSTM(I, H, proj_size=proj, dtype=dtype, seed=seed, **kw)
    elif cell == "gru":
        tm = torch.nn.GRU(I, H, **tkw)
        ours = nn.GRU(I, H, dtype=dtype, seed=seed, **kw)
    else:
        act: Any = cell.removeprefix("rnn_")
        tm = torch.nn.RNN(I, H, nonlinearity=act, **tkw)
        ours = nn.RNN(I, H, nonlinearity=act, dtype=dtype, seed=seed, **kw)
    # Same keys, same order, same shapes: nothing to rename or reorder.
    tsd = tm.state_dict()
    assert list(ours.state_dict()) == list(tsd)
    assert [v.shape for v in ours.params.values()] == [tuple(v.shape) for v in tsd.values()]
    if source == "torch":
        ours.load_state_dict(tsd)
    else:
        tm.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    for k, v in tm.state_dict().items():
        np.testing.assert_array_equal(ours.params[k], v.numpy(), err_msg=k)
    return tm, ours


def _close(actual: Any, expected: np.ndarray, dtype: Any, name: str) -> None:
    assert isinstance(actual, np.ndarray), f"{name}: got {type(actual).__name__}"
    assert actual.dtype == dtype, f"{name}: dtype {actual.dtype}"
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    assert scale > 0, f"{name}: torch's result is all zeros"
    tol = TOL[dtype]
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale, err_msg=name)


def _run_and_compare(
    tm: Any,
    ours: Any,
    rng: np.random.Generator,
    *,
    lengths: bool,
    state: bool,
    unbatched: bool = False,
    dtype: Any = np.float64,
) -> None:
    """Forward and backward through both modules with the same data; compare everything."""
    lstm = isinstance(ours, nn.LSTM)
    LD, R = ours.num_layers * ours.num_directions, ours.state_size
    W = ours.num_directions * R
    bf = ours.batch_first
    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    lead: tuple[int, ...]
    if unbatched:
        x_shape, y_shape, lead = (T, I), (T, W), (LD,)
    else:
        x_shape = (B, T, I) if bf else (T, B, I)
        y_shape = (B, T, W) if bf else (T, B, W)
        lead = (LD, B)
    x: np.ndarray = rng.standard_normal(x_shape).astype(dtype)
    h0: Any = (0.7 * rng.standard_normal((*lead, R))).astype(dtype) if state else None
    c0: Any = (0.7 * rng.standard_normal((*lead, H))).astype(dtype) if state and lstm else None
    lens = rng.integers(1, T + 1, size=B) if lengths else None
    if lens is not None:
        lens[rng.integers(B)] = T  # one full-length sequence, so that y has T steps in torch
    dy: np.ndarray = rng.standard_normal(y_shape).astype(dtype)
    dh: np.ndarray = rng.standard_normal((*lead, R)).astype(dtype)
    dc: Any = rng.standard_normal((*lead, H)).astype(dtype) if lstm else None

    # ours
    st = (h0, c0) if lstm and state else h0
    y, st_n = ours.forward(x, st, lengths=lens)
    dx = ours.backward(dy, (dh, dc) if lstm else dh)
    h_n, c_n = st_n if lstm else (st_n, None)

    # torch
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    tstate: Any = None
    leaves: dict[str, Any] = {"x": xt}
    if state:
        ht = torch.from_numpy(h0.copy()).requires_grad_(True)
        leaves["h0"] = ht
        tstate = ht
        if lstm:
            ct = torch.from_numpy(c0.copy()).requires_grad_(True)
            leaves["c0"] = ct
            tstate = (ht, ct)
    inp: Any = xt
    if lens is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.from_numpy(lens), batch_first=bf, enforce_sorted=False
        )
    ty, tst = tm(inp, tstate)
    if lens is not None:
        ty, _ = torch.nn.utils.rnn.pad_packed_sequence(ty, batch_first=bf, total_length=T)
    th, tc = tst if lstm else (tst, None)
    outs = [ty, th] + ([tc] if lstm else [])
    seeds = [dy, dh] + ([dc] if lstm else [])
    names = list(leaves) + list(ours.params)
    wrt = list(leaves.values()) + [dict(tm.named_parameters())[k] for k in ours.params]
    tgrads = torch.autograd.grad(
        outs,
        wrt,
        grad_outputs=[torch.from_numpy(s) for s in seeds],
    )
    tg = {n: g.numpy() for n, g in zip(names, tgrads, strict=True)}

    _close(y, ty.detach().numpy(), dtype, "y")
    _close(h_n, th.detach().numpy(), dtype, "h_n")
    if tc is not None:
        _close(c_n, tc.detach().numpy(), dtype, "c_n")
    _close(dx, tg["x"], dtype, "dx")
    if state:
        dh0, dc0 = ours.dstate0 if lstm else (ours.dstate0, None)
        _close(dh0, tg["h0"], dtype, "dh0")
        if lstm:
            _close(dc0, tg["c0"], dtype, "dc0")
    for k in ours.params:
        _close(ours.grads[k], tg[k], dtype, k)


@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3], ids=lambda n: f"L{n}")
@pytest.mark.parametrize("cell", CELLS)
def test_parity_float64(
    cell: str,
    num_layers: int,
    bidirectional: bool,
    variant: tuple[bool, bool, bool, bool],
    rng: np.random.Generator,
) -> None:
    batch_first, bias, lengths, state = variant
    # Weights go torch -> ours for half the variants and ours -> torch for the other half.
    source = "ours" if (batch_first ^ bias ^ lengths ^ state) else "torch"
    tm, ours = _pair(
        cell, num_layers, bidirectional, bias=bias, batch_first=batch_first, source=source
    )
    _run_and_compare(tm, ours, rng, lengths=lengths, state=state)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("cell", CELLS)
def test_parity_float32(cell: str, bidirectional: bool, rng: np.random.Generator) -> None:
    tm, ours = _pair(cell, 2, bidirectional, dtype=np.float32)
    _run_and_compare(tm, ours, rng, lengths=True, state=True, dtype=np.float32)


@pytest.mark.parametrize("state", [False, True], ids=["zero_state", "state"])
@pytest.mark.parametrize("cell", CELLS)
def test_parity_unbatched(cell: str, state: bool, rng: np.random.Generator) -> None:
    """torch's unbatched input ``x [T, I]`` with a state ``[L*D, H]``."""
    tm, ours = _pair(cell, 2, True, source="ours")
    _run_and_compare(tm, ours, rng, lengths=False, state=state, unbatched=True)


@pytest.mark.parametrize("cell", CELLS)
def test_parity_eval_mode(cell: str, rng: np.random.Generator) -> None:
    """eval mode (inference kernels, dropout off) matches torch's eval mode."""
    tm, ours = _pair(cell, 3, True)
    tm.dropout = ours.dropout = 0.0
    tm.eval()
    ours.eval()
    x = rng.standard_normal((T, B, I))
    y, _ = ours.forward(x)
    with torch.no_grad():
        ty, _ = tm(torch.from_numpy(x))
    _close(y, ty.numpy(), np.float64, "y")


@pytest.mark.parametrize("dtype", ["bfloat16", "float8_e4m3fn"])
def test_tensors_of_a_float_dtype_numpy_lacks(dtype: str) -> None:
    """torch.bfloat16 (or float8) tensors have no NumPy array to become: a TypeError naming
    the key (or x) and the dtype, not torch's "unsupported ScalarType", and no silent cast."""
    tdtype = getattr(torch, dtype, None)
    if tdtype is None:
        pytest.skip(f"this torch has no {dtype}")
    m = nn.LSTM(2, 5, proj_size=3)
    before = {k: v.copy() for k, v in m.params.items()}
    sd = {k: torch.from_numpy(v).to(tdtype) for k, v in m.state_dict().items()}
    message = (
        f"weight_ih_l0 must be a floating array of a dtype NumPy has (float16, float32 or "
        f"float64), got dtype torch.{dtype}; convert it explicitly, e.g. with .float()"
    )
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        m.load_state_dict(sd)
    for k, v in m.params.items():
        np.testing.assert_array_equal(v, before[k])  # nothing loaded
    x = torch.zeros(3, 2, 2, dtype=tdtype)
    message = f"x must have dtype float32 (the dtype of this LSTM), got torch.{dtype}"
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        m.forward(x)
    m.load_state_dict({k: v.float() for k, v in sd.items()})  # converted explicitly: loads
