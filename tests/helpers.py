"""Shared utilities of the kernel tests: random problems, a uniform calling convention, and
the comparisons against the float64 reference.

Import them as ``from helpers import ...`` (``tests/conftest.py`` puts this directory on
``sys.path``).

Cells are named by strings: ``"lstm"``, ``"gru"``, ``"rnn_tanh"`` and ``"rnn_relu"``
(:data:`CELLS`). A *library* is either the compiled kernels (``rnnkit``) or the NumPy oracle
(``rnnkit.reference``); both have the same functions, and :func:`forward` /
:func:`backward` (whole sequences) and :func:`cell_forward` / :func:`cell_backward` (one
step) call either one the same way, returning dicts keyed by name so that a test can loop
over every output and every gradient without caring which cell it runs:

* forward outputs: ``"y"`` (sequences only), ``"h_n"``, ``"c_n"`` (LSTM only);
* gradients: ``"dx"``, ``"dh0"``, ``"dc0"`` (LSTM only), ``"dw_ih"``, ``"dw_hh"``,
  ``"db_ih"``, ``"db_hh"`` (``None`` where the forward had no such bias). The cell
  functions' ``dh``/``dc`` are returned under ``"dh0"``/``"dc0"`` too.

Tolerances (DESIGN.md section 5): float64 kernels must match the float64 reference to about
1e-10 relative (:func:`assert_close64`); a float32 kernel may be off the float64 reference by
at most a small multiple of the reference's own float32 error (:func:`assert_close_to_ref`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import rnnkit
from rnnkit import reference

CELLS: tuple[str, ...] = ("lstm", "gru", "rnn_tanh", "rnn_relu")
GATES: dict[str, int] = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
DTYPES: tuple[type, ...] = (np.float32, np.float64)

#: Names of the gradients, in the order backward returns them (``dc0`` for the LSTM only).
GRAD_NAMES: tuple[str, ...] = ("dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh")

Params = tuple[np.ndarray, np.ndarray, "np.ndarray | None", "np.ndarray | None"]


def has_cell_state(cell: str) -> bool:
    """Whether ``cell`` has a cell state ``c`` besides ``h`` (the LSTM)."""
    return cell == "lstm"


def grad_names(cell: str) -> tuple[str, ...]:
    """The gradient names backward returns for ``cell`` (see the module docstring)."""
    return tuple(n for n in GRAD_NAMES if n != "dc0" or has_cell_state(cell))


def output_names(cell: str, *, sequence: bool = True) -> tuple[str, ...]:
    """The forward output names for ``cell`` (``y`` only for sequences, ``c_n`` for LSTM)."""
    names = ("y", "h_n") if sequence else ("h_n",)
    return names + (("c_n",) if has_cell_state(cell) else ())


# ------------------------------------------------------------------------ random problems
def uniform_nonzero(
    rng: np.random.Generator, shape: tuple[int, ...], bound: float, dtype: Any = np.float64
) -> np.ndarray:
    """``U(-bound, bound)`` samples of ``shape`` in ``dtype``, none of them exactly 0.

    Entries that come out as 0 (or underflow to 0 in ``dtype``) are redrawn, so a test that
    relies on every value counting can never be fooled by a zero.
    """
    a = rng.uniform(-bound, bound, size=shape).astype(dtype)
    while True:
        zero = a == 0
        if not zero.any():
            return a
        a[zero] = rng.uniform(-bound, bound, size=int(zero.sum())).astype(dtype)


def make_params(
    cell: str,
    I: int,  # noqa: E741 -- the shape letter used everywhere in rnnkit
    H: int,
    dtype: Any,
    rng: np.random.Generator,
    bias: bool | str = True,
) -> Params:
    """Random weights ``(w_ih [G*H, I], w_hh [G*H, H], b_ih [G*H], b_hh [G*H])`` for ``cell``.

    Every value is drawn from ``U(-1/sqrt(H), 1/sqrt(H))`` (PyTorch's initialisation, which
    keeps the recurrence contractive, so long sequences stay well conditioned) and is never
    exactly zero. ``bias`` is ``True`` (both biases), ``False`` (both ``None``), or ``"ih"`` /
    ``"hh"`` for only that one (the other ``None``).
    """
    if bias not in (True, False, "ih", "hh"):
        raise ValueError(f"bias must be True, False, 'ih' or 'hh', got {bias!r}")
    gh = GATES[cell] * H
    k = 1 / np.sqrt(H)
    w_ih = uniform_nonzero(rng, (gh, I), k, dtype)
    w_hh = uniform_nonzero(rng, (gh, H), k, dtype)
    b_ih = uniform_nonzero(rng, (gh,), k, dtype) if bias in (True, "ih") else None
    b_hh = uniform_nonzero(rng, (gh,), k, dtype) if bias in (True, "hh") else None
    return w_ih, w_hh, b_ih, b_hh


def make_inputs(
    cell: str,
    T: int,
    B: int,
    I: int,  # noqa: E741
    H: int,
    dtype: Any,
    rng: np.random.Generator,
    state: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Random ``(x [T, B, I], h0 [B, H], c0 [B, H])``, values ``U(-1, 1)``, never 0.

    ``state=False`` gives ``h0 = c0 = None``; ``c0`` is ``None`` for cells without a cell
    state. For a single step, use ``x[0]`` (``[B, I]``).
    """
    x = uniform_nonzero(rng, (T, B, I), 1.0, dtype)
    h0 = uniform_nonzero(rng, (B, H), 1.0, dtype) if state else None
    c0 = uniform_nonzero(rng, (B, H), 1.0, dtype) if state and has_cell_state(cell) else None
    return x, h0, c0


def make_output_grads(
    cell: str,
    T: int,
    B: int,
    H: int,
    dtype: Any,
    rng: np.random.Generator,
    which: str = "all",
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Random incoming gradients ``(dy [T, B, H], dh_n [B, H], dc_n [B, H])``, ``U(-1, 1)``.

    ``which`` selects the ones given (the others are ``None``, i.e. zeros): ``"all"``,
    ``"y"`` (dy only), ``"final"`` (dh_n and dc_n only), ``"c"`` (dc_n only; LSTM),
    ``"none"`` (all ``None``). ``dc_n`` is always ``None`` for cells without a cell state.
    """
    given = {
        "all": {"dy", "dh_n", "dc_n"},
        "y": {"dy"},
        "final": {"dh_n", "dc_n"},
        "c": {"dc_n"},
        "none": set(),
    }[which]
    dy = uniform_nonzero(rng, (T, B, H), 1.0, dtype) if "dy" in given else None
    dh_n = uniform_nonzero(rng, (B, H), 1.0, dtype) if "dh_n" in given else None
    dc_n = (
        uniform_nonzero(rng, (B, H), 1.0, dtype)
        if "dc_n" in given and has_cell_state(cell)
        else None
    )
    return dy, dh_n, dc_n


def cast(a: np.ndarray | None, dtype: Any) -> np.ndarray | None:
    """``a`` converted to ``dtype`` (a fresh array), ``None`` stays ``None``."""
    return None if a is None else np.asarray(a).astype(dtype)


def cast_all(arrays: Any, dtype: Any) -> Any:
    """:func:`cast` over a tuple/list (returns a tuple) or a dict (returns a dict)."""
    if isinstance(arrays, Mapping):
        return {k: cast(v, dtype) for k, v in arrays.items()}
    return tuple(cast(a, dtype) for a in arrays)


# ------------------------------------------------------------------- uniform calling shims
def _nonlinearity(cell: str) -> dict[str, str]:
    return {"nonlinearity": cell.split("_")[1]} if cell.startswith("rnn") else {}


def _training(lib: Any, training: bool) -> dict[str, bool]:
    # Passed only when it is not the default, so that a reference without the keyword works.
    return {} if lib is reference and training else {"training": training}


def _grads_dict(cell: str, res: Any) -> dict[str, np.ndarray | None]:
    """Backward's result (a named tuple, or a plain tuple) as a dict keyed by
    :func:`grad_names`. Fields beyond those (gradients of LSTM variants such as a projection
    or peepholes, which these tests never use) must be None."""
    names = grad_names(cell)
    if hasattr(res, "_asdict"):
        fields = dict(res._asdict())
        for cell_name, seq_name in (("dh", "dh0"), ("dc", "dc0")):
            if cell_name in fields:
                fields[seq_name] = fields.pop(cell_name)
        extra = {k: v for k, v in fields.items() if k not in names}
        assert all(v is None for v in extra.values()), f"unexpected gradients {sorted(extra)}"
        return {name: fields[name] for name in names}
    res = tuple(res)
    assert len(res) == len(names), f"backward returned {len(res)} values, expected {names}"
    return dict(zip(names, res, strict=True))


def forward(
    lib: Any,
    cell: str,
    x: np.ndarray,
    h0: np.ndarray | None,
    c0: np.ndarray | None,
    params: Params,
    *,
    training: bool = True,
) -> tuple[dict[str, np.ndarray], Any]:
    """Sequence forward of ``cell`` with ``lib`` (``rnnkit`` or ``rnnkit.reference``).

    Returns ``({"y", "h_n"[, "c_n"]}, cache)``. ``c0`` is ignored unless ``cell`` is the LSTM.
    """
    kw = _training(lib, training)
    if cell == "lstm":
        y, h, c, cache = lib.lstm_forward(x, h0, c0, *params, **kw)
        return {"y": y, "h_n": h, "c_n": c}, cache
    fn = lib.gru_forward if cell == "gru" else lib.rnn_forward
    y, h, cache = fn(x, h0, *params, **_nonlinearity(cell), **kw)
    return {"y": y, "h_n": h}, cache


def backward(
    lib: Any,
    cell: str,
    dy: np.ndarray | None,
    dh_n: np.ndarray | None,
    dc_n: np.ndarray | None,
    cache: Any,
) -> dict[str, np.ndarray | None]:
    """Sequence backward of ``cell`` with ``lib``: the gradients keyed by :data:`GRAD_NAMES`.

    ``dc_n`` is ignored unless ``cell`` is the LSTM.
    """
    if cell == "lstm":
        res = lib.lstm_backward(dy, dh_n, dc_n, cache)
    else:
        fn = lib.gru_backward if cell == "gru" else lib.rnn_backward
        res = fn(dy, dh_n, cache)
    return _grads_dict(cell, res)


def cell_forward(
    lib: Any,
    cell: str,
    x: np.ndarray,
    h: np.ndarray | None,
    c: np.ndarray | None,
    params: Params,
    *,
    training: bool = True,
) -> tuple[dict[str, np.ndarray], Any]:
    """One step (``x [B, I]``) of ``cell`` with ``lib``: ``({"h_n"[, "c_n"]}, cache)``."""
    kw = _training(lib, training)
    if cell == "lstm":
        h1, c1, cache = lib.lstm_cell_forward(x, h, c, *params, **kw)
        return {"h_n": h1, "c_n": c1}, cache
    fn = lib.gru_cell_forward if cell == "gru" else lib.rnn_cell_forward
    h1, cache = fn(x, h, *params, **_nonlinearity(cell), **kw)
    return {"h_n": h1}, cache


def cell_backward(
    lib: Any, cell: str, dh1: np.ndarray | None, dc1: np.ndarray | None, cache: Any
) -> dict[str, np.ndarray | None]:
    """Backward of one step with ``lib``: gradients keyed like :func:`backward`'s."""
    if cell == "lstm":
        res = lib.lstm_cell_backward(dh1, dc1, cache)
    else:
        fn = lib.gru_cell_backward if cell == "gru" else lib.rnn_cell_backward
        res = fn(dh1, cache)
    return _grads_dict(cell, res)


# ---------------------------------------------------------------------------- comparisons
def _both_or_neither_none(actual: Any, ref: Any, what: str) -> bool:
    """True when both are None; raise when only one is; False when neither is."""
    if actual is None or ref is None:
        assert actual is None and ref is None, (
            f"{what}: one result is None and the other is not "
            f"(actual {type(actual).__name__}, reference {type(ref).__name__})"
        )
        return True
    return False


def _max_abs(a: np.ndarray) -> float:
    return float(np.max(np.abs(a))) if a.size else 0.0


def assert_close64(
    actual: np.ndarray | None, ref: np.ndarray | None, rtol: float = 1e-10, what: str = ""
) -> None:
    """Assert a float64 kernel result equals the float64 reference to ``rtol`` (~1e-10).

    Element-wise ``|actual - ref| <= rtol * (|ref| + max|ref|)`` (so entries that are tiny
    through cancellation are judged on the array's scale), with equal shapes and both
    float64. Both ``None`` passes (e.g. the gradient of an absent bias); one ``None`` fails.
    NaNs fail. float64 rounding is ~1e-16, so 1e-10 leaves room for any summation order
    while still catching any real error.
    """
    if _both_or_neither_none(actual, ref, what):
        return
    assert actual.dtype == np.float64, f"{what}: dtype {actual.dtype}, expected float64"
    assert actual.shape == ref.shape, f"{what}: shape {actual.shape}, expected {ref.shape}"
    assert np.isfinite(ref).all(), f"{what}: the reference is not finite"
    np.testing.assert_allclose(
        actual, ref, rtol=rtol, atol=rtol * max(_max_abs(ref), 1e-300), err_msg=what
    )


def assert_close_to_ref(
    actual32: np.ndarray | None,
    ref64: np.ndarray | None,
    ref32: np.ndarray | None,
    k: float = 8.0,
    atol: float = 1e-6,
    what: str = "",
) -> None:
    """Assert a float32 kernel result is as accurate as a same-precision implementation.

    ``ref64`` is the reference run in float64 on the float32 inputs upcast (exactly) to
    float64, i.e. the true answer to ~1e-16; ``ref32`` is the same reference run in float32.
    The kernel's error ``max|actual32 - ref64|`` must be at most
    ``k * max|ref32 - ref64| + atol * max(1, max|ref64|)``: ``k`` times the rounding error
    of the straightforward float32 implementation (DESIGN.md section 5, flash-attention's
    rule with a larger factor because the kernels use different summation orders and ~1-2
    ulp polynomial ``exp``/``tanh``), plus a small floor relative to the scale of the result
    for the cases where the reference happens to round exactly. Shapes must match and
    ``actual32`` must be float32. Both ``None`` (absent bias) passes; one ``None`` fails.
    """
    if _both_or_neither_none(actual32, ref64, what):
        assert ref32 is None, f"{what}: ref32 is not None but ref64 is"
        return
    assert actual32.dtype == np.float32, f"{what}: dtype {actual32.dtype}, expected float32"
    assert ref64.dtype == np.float64, f"{what}: ref64 has dtype {ref64.dtype}"
    assert ref32.dtype == np.float32, f"{what}: ref32 has dtype {ref32.dtype}"
    assert actual32.shape == ref64.shape == ref32.shape, (
        f"{what}: shapes actual {actual32.shape}, ref64 {ref64.shape}, ref32 {ref32.shape}"
    )
    assert np.isfinite(actual32).all(), f"{what}: the kernel result is not finite"
    if actual32.size == 0:
        return
    err = _max_abs(actual32.astype(np.float64) - ref64)
    ref_err = _max_abs(ref32.astype(np.float64) - ref64)
    bound = k * ref_err + atol * max(1.0, _max_abs(ref64))
    assert err <= bound, (
        f"{what}: float32 kernel max abs error {err:.3g} exceeds {bound:.3g} "
        f"(= {k} x reference float32 error {ref_err:.3g} + floor); "
        f"max |ref| = {_max_abs(ref64):.3g}"
    )


def assert_all_close(
    actual: Mapping[str, np.ndarray | None],
    ref64: Mapping[str, np.ndarray | None],
    ref32: Mapping[str, np.ndarray | None] | None = None,
    *,
    context: str = "",
) -> None:
    """Compare every entry of two result dicts (same keys) with the right rule per dtype.

    float64 results use :func:`assert_close64` against ``ref64``; float32 results use
    :func:`assert_close_to_ref` against ``ref64`` and ``ref32`` (which is then required).
    """
    assert set(actual) == set(ref64), f"{context}: keys {sorted(actual)} != {sorted(ref64)}"
    for name, a in actual.items():
        what = f"{context} {name}".strip()
        if a is not None and a.dtype == np.float32:
            assert ref32 is not None, f"{what}: float32 result needs ref32"
            assert_close_to_ref(a, ref64[name], ref32[name], what=what)
        else:
            assert_close64(a, ref64[name], what=what)


def assert_all_equal(
    actual: Mapping[str, np.ndarray | None],
    expected: Mapping[str, np.ndarray | None],
    *,
    context: str = "",
) -> None:
    """Every entry bit-identical (same dtype, shape and values; both ``None`` allowed)."""
    assert set(actual) == set(expected), f"{context}: keys {sorted(actual)} != {sorted(expected)}"
    for name, a in actual.items():
        e = expected[name]
        what = f"{context} {name}".strip()
        if _both_or_neither_none(a, e, what):
            continue
        assert a.dtype == e.dtype, f"{what}: dtype {a.dtype} != {e.dtype}"
        assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
        assert np.array_equal(a, e), (
            f"{what}: not bit-identical, max abs difference {_max_abs(a - e):.3g}"
        )


# ------------------------------------------------------------------------- the full check
def run_against_reference(
    cell: str,
    dtype: Any,
    T: int,
    B: int,
    I: int,  # noqa: E741
    H: int,
    rng: np.random.Generator,
    *,
    bias: bool | str = True,
    state: bool = True,
    grads: str = "all",
    backward_too: bool = True,
    training: bool = True,
) -> None:
    """Forward (and backward) of the ``dtype`` kernel against the reference, every output.

    Draws a fresh random problem (see :func:`make_params`, :func:`make_inputs`,
    :func:`make_output_grads`), runs the kernel in ``dtype`` and the reference in float64
    (and in float32 for the float32 yardstick) on the same values, and compares every
    output and gradient with :func:`assert_all_close`. Also checks the kernel left its
    inputs untouched.
    """
    params = make_params(cell, I, H, dtype, rng, bias=bias)
    x, h0, c0 = make_inputs(cell, T, B, I, H, dtype, rng, state=state)
    dy, dh_n, dc_n = make_output_grads(cell, T, B, H, dtype, rng, which=grads)
    inputs = (x, h0, c0, *params, dy, dh_n, dc_n)
    saved = [None if a is None else a.copy() for a in inputs]

    out, cache = forward(rnnkit, cell, x, h0, c0, params, training=training)
    x64, h064, c064 = cast_all((x, h0, c0), np.float64)
    out64, cache64 = forward(reference, cell, x64, h064, c064, cast_all(params, np.float64))
    out32 = cache32 = None
    if dtype == np.float32:
        out32, cache32 = forward(reference, cell, x, h0, c0, params)
    ctx = f"{cell} {np.dtype(dtype).name} T={T} B={B} I={I} H={H} bias={bias} state={state}"
    assert_all_close(out, out64, out32, context=ctx + " forward")

    if backward_too:
        g = backward(rnnkit, cell, dy, dh_n, dc_n, cache)
        g64 = backward(reference, cell, *cast_all((dy, dh_n, dc_n), np.float64), cache64)
        g32 = backward(reference, cell, dy, dh_n, dc_n, cache32) if cache32 is not None else None
        assert_all_close(g, g64, g32, context=f"{ctx} grads={grads} backward")

    for before, after in zip(saved, inputs, strict=True):
        if before is not None:
            assert np.array_equal(before, after), f"{ctx}: an input was modified"


# ---------------------------------------------------------------- n-gram corpora
# kpu/kenlm issue #405: `lmplz -o 2` on this text (its ARPA output is quoted there).
ISSUE_405 = (
    "I went to\nI go to\nYou went to\nYou go to\nJoe went to\nJoe go to\n"
    "Anna went ski\nAnna went ski\n"
)


def zipf_corpus(rng: np.random.Generator, sentences: int, vocab: int = 2000) -> list[list[str]]:
    p = 1.0 / np.arange(1, vocab + 1) ** 1.1
    p /= p.sum()
    return [
        [f"w{i}" for i in rng.choice(vocab, size=rng.integers(1, 15), p=p)]
        for _ in range(sentences)
    ]


# ------------------------------------------------------------------------ torch cells
def torch_cell_step(module: Any, x: Any, states: list[Any], mode: str, lstm: bool) -> tuple:
    """One step of a torch (or rnnkit.torch) cell on copies of ``x`` and ``states`` that
    require grad, ``mode`` "batched"/"unbatched" with ``hx`` or "no_hx", then backward of
    ``sum((k + 1) * out_k.sum())``: ``(outputs, [dx, dh (, dc), every parameter's grad])``.
    (torch tensors only; this module does not import torch.)"""
    module.zero_grad()
    xx = x.clone().requires_grad_()
    hh = [s.clone().requires_grad_() for s in states]
    if mode == "no_hx":
        out = module(xx)
    elif lstm:
        out = module(xx, (hh[0], hh[1]))
    else:
        out = module(xx, hh[0])
    outs = out if isinstance(out, tuple) else (out,)
    sum((k + 1) * o.sum() for k, o in enumerate(outs)).backward()
    used = hh if lstm else hh[:1]
    grads = [xx.grad] + ([h.grad for h in used] if mode != "no_hx" else [])
    return outs, [*grads, *(p.grad.clone() for p in module.parameters())]


def central_difference(
    loss: Callable[[], float], array: np.ndarray, index: Any, h: float = 1e-6
) -> float:
    """(loss(array[index] + h) - loss(array[index] - h)) / 2h, ``array`` restored after."""
    old = array[index]
    array[index] = old + h
    up = loss()
    array[index] = old - h
    down = loss()
    array[index] = old
    return float((up - down) / (2 * h))
