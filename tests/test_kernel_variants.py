"""The sequence kernels' options against the reference: variable lengths, reverse direction
and the cell variants (LSTM projection, peepholes, CIFG, clip; GRU reset before the matmul;
RNN clip), alone and combined, in float64 (to ~1e-10) and float32 (within a multiple of the
reference's own float32 error), plus central finite differences of the float64 kernels.

Every case runs forward (training and inference) and backward with random inputs, states and
incoming gradients, and compares every output and every gradient, including those of the
extra inputs (``dw_hr``, ``dpeepholes``). The shapes use H = 70 (two unit blocks of the
kernel) and a batch whose lengths include 0 and T, so that the length-sorted schedule has
rows that never run, rows that run throughout, and ties.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import rnnkit
from helpers import assert_close64, assert_close_to_ref
from rnnkit import reference

SHAPE = (6, 5, 7, 70, 9)  # T, B, I, H, P
H, P = SHAPE[3], SHAPE[4]
LENGTHS = np.array([3, 6, 0, 1, 6])
# A batch of at least kFusedMinRows (32) rows: the LSTM forward then runs each step as one
# GEMM over [x_t | h_prev] (engine.hpp, Pass::ForwardFused); 37 rows = 4 tiles of 8 + 5 rows.
WIDE_SHAPE = (5, 37, 7, 70, 9)
WIDE_LENGTHS = np.array([5, 0, 3, 5, 1, 2, 4, 5, 5, 3] * 3 + [0, 1, 2, 3, 4, 5, 5])
# More than kBackwardChunkRows (1024) packed rows: backward runs in chunks of
# ceil(1024 / 33) = 32 steps ([0, 32), [32, 64), [64, 70), last first), summing the weight
# gradients chunk by chunk; the lengths leave the last chunk with few rows.
LONG_SHAPE = (70, 33, 5, 70, 9)
LONG_LENGTHS = np.array([70, 0, 33, 64, 65, 31, 32, 1, 69, 70, 50] * 3)
# Batch 1 with I > 16: a backward chunk's rows fit one row block, so dx is computed in two
# column halves (engine.hpp, BulkSplit).
ONE_ROW_SHAPE = (30, 1, 40, 70, 9)
ONE_ROW_LENGTHS = np.array([17])
# More than kPanelRows (256) rows: the recurrent GEMMs run on OpenBLAS instead of the
# micro-kernel's panels (engine.hpp; the GRU with the reset before the matmul too).
PAST_PANELS_SHAPE = (3, 260, 5, 70, 9)
PAST_PANELS_LENGTHS = np.arange(260) % 4
# One step (a cell call, a generation step): the forward reads the weights where they are,
# one product per gate of a unit block (engine.hpp, direct_weights), a GEMV for one row; so
# does the backward up to 4 rows (direct_backward_weights), its weight gradients of one row
# as outer products.
ONE_STEP_SHAPE = (1, 4, 7, 70, 9)
ONE_STEP_LENGTHS = np.array([1, 0, 1, 1])
ONE_STEP_ONE_ROW_SHAPE = (1, 1, 40, 130, 9)
ONE_STEP_ONE_ROW_LENGTHS = np.array([1])
# A layer of one unit block (H <= 64) over at least 32 rows is cut in two blocks (engine.hpp,
# unit_blocks): H = 40 as 32 + 8 units, the projection's P = 24 outputs as 16 + 8.
SPLIT_SHAPE = (4, 40, 7, 40, 24)
SPLIT_LENGTHS = np.array([4, 0, 3, 1, 2] * 8)
# One unit block (H <= 16) over 16 rows or more: the LSTM forward's threads split the rows
# (lstm_sequence.cpp, row_split), whole tiles each, rows of every length among them.
ROW_SPLIT_SHAPE = (5, 37, 7, 12, 9)
ROW_SPLIT_LENGTHS = np.array([5, 0, 3, 5, 1, 2, 4, 5, 5, 3] * 3 + [0, 1, 2, 3, 4, 5, 5])
BATCHES = [
    pytest.param((SHAPE, LENGTHS, 0.4), id="B5"),
    pytest.param((SPLIT_SHAPE, SPLIT_LENGTHS, 0.4), id="B40-H40"),
    pytest.param((ONE_STEP_SHAPE, ONE_STEP_LENGTHS, 0.4), id="T1-B4"),
    pytest.param((ONE_STEP_ONE_ROW_SHAPE, ONE_STEP_ONE_ROW_LENGTHS, 0.4), id="T1-B1"),
    pytest.param((WIDE_SHAPE, WIDE_LENGTHS, 0.4), id="B37"),
    pytest.param((LONG_SHAPE, LONG_LENGTHS, 0.15), id="T70-B33"),
    pytest.param((ONE_ROW_SHAPE, ONE_ROW_LENGTHS, 0.15), id="B1-I40"),
    pytest.param((PAST_PANELS_SHAPE, PAST_PANELS_LENGTHS, 0.4), id="B260"),
    pytest.param((ROW_SPLIT_SHAPE, ROW_SPLIT_LENGTHS, 0.4), id="B37-H12"),
]
TINY_SHAPE = (4, 3, 3, 5, 2)  # for finite differences
TINY_LENGTHS = np.array([2, 4, 0])

# (cell, options) for every variant; "peepholes" and "w_hr" mean "draw that array".
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("lstm", {}),
    ("lstm", {"w_hr": True}),
    ("lstm", {"peepholes": True}),
    ("lstm", {"input_forget": True}),
    ("lstm", {"clip": 0.6}),
    ("lstm", {"w_hr": True, "peepholes": True, "input_forget": True, "clip": 0.8}),
    ("gru", {}),
    ("gru", {"linear_before_reset": False}),
    ("gru", {"clip": 0.6}),
    ("gru", {"linear_before_reset": False, "clip": 0.6}),
    ("rnn", {"nonlinearity": "tanh"}),
    ("rnn", {"nonlinearity": "relu"}),
    ("rnn", {"nonlinearity": "tanh", "clip": 0.5}),
    ("rnn", {"nonlinearity": "relu", "clip": 0.5}),
]
SCHEDULES = [
    pytest.param(None, False, id="full"),
    pytest.param(None, True, id="reverse"),
    pytest.param(LENGTHS, False, id="lengths"),
    pytest.param(LENGTHS, True, id="lengths-reverse"),
]
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def _variant_id(variant: tuple[str, dict[str, Any]]) -> str:
    cell, opts = variant
    return "-".join([cell, *(k if v is True else f"{k}={v}" for k, v in opts.items())]) or cell


def make_problem(
    cell: str,
    opts: dict[str, Any],
    rng: np.random.Generator,
    shape: tuple[int, int, int, int, int] = SHAPE,
    scale: float = 0.4,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, np.ndarray]]:
    """Random float64 (inputs, keyword options, incoming gradients) for one variant."""
    T, B, I, H, P = shape  # noqa: E741
    opts = dict(opts)
    R = P if opts.get("w_hr") else H
    G = GATES[cell]
    u = lambda *shape: rng.uniform(-scale, scale, shape)  # noqa: E731
    inputs: dict[str, Any] = {
        "x": rng.uniform(-1, 1, (T, B, I)),
        "h0": rng.uniform(-1, 1, (B, R)),
        "w_ih": u(G * H, I),
        "w_hh": u(G * H, R),
        "b_ih": u(G * H),
        "b_hh": u(G * H),
    }
    grads = {"dy": rng.uniform(-1, 1, (T, B, R)), "dh_n": rng.uniform(-1, 1, (B, R))}
    if cell == "lstm":
        inputs["c0"] = rng.uniform(-1, 1, (B, H))
        grads["dc_n"] = rng.uniform(-1, 1, (B, H))
    if opts.get("w_hr"):
        opts["w_hr"] = u(P, H)
    if opts.get("peepholes"):
        opts["peepholes"] = u(3, H)
    return inputs, opts, grads


def run(
    lib: Any,
    cell: str,
    inputs: dict[str, Any],
    opts: dict[str, Any],
    grads: dict[str, np.ndarray],
    *,
    training: bool = True,
) -> dict[str, np.ndarray | None]:
    """Forward (and backward when training) of ``lib``; results keyed by name."""
    forward = getattr(lib, f"{cell}_forward")
    args = [inputs["x"], inputs["h0"]]
    if cell == "lstm":
        args.append(inputs["c0"])
    args += [inputs["w_ih"], inputs["w_hh"], inputs["b_ih"], inputs["b_hh"]]
    out = forward(*args, training=training, **opts)
    names = ["y", "h_n", "c_n"] if cell == "lstm" else ["y", "h_n"]
    result: dict[str, np.ndarray | None] = dict(zip(names, out[: len(names)], strict=True))
    if not training:
        return result
    backward = getattr(lib, f"{cell}_backward")
    if cell == "lstm":
        g = backward(grads["dy"], grads["dh_n"], grads["dc_n"], out.cache)
    else:
        g = backward(grads["dy"], grads["dh_n"], out.cache)
    result.update(g._asdict())
    return result


def cast(d: dict[str, Any], dtype: type) -> dict[str, Any]:
    """Floating arrays of ``d`` converted to ``dtype`` (other values as they are)."""
    return {
        k: v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
        for k, v in d.items()
    }


def assert_matches_reference(
    cell: str,
    inputs: dict[str, Any],
    opts: dict[str, Any],
    grads: dict[str, Any],
    actual: dict[str, Any],
    dtype: type,
) -> None:
    """Every output and gradient as close to the reference as test_kernel_variants asks.

    One allowance, for float32 with clip: a gate whose pre-activation lies within float32
    rounding of +-clip is clipped or not depending on the last bit of its sum, and the
    gradient jumps there. The result must then be the reference's answer for a clip moved by
    one part in a million one way or the other (the same problem within float32 rounding).
    """
    ref64 = run(reference, cell, *(cast(d, np.float64) for d in (inputs, opts, grads)))
    assert actual.keys() == ref64.keys()
    if dtype == np.float64:
        for name in actual:
            assert_close64(actual[name], ref64[name], what=name)
        return
    ref32 = run(reference, cell, inputs, opts, grads)
    try:
        for name in actual:
            assert_close_to_ref(actual[name], ref64[name], ref32[name], what=name)
    except AssertionError:
        if opts.get("clip") is None:
            raise
        for shift in (1e-6, -1e-6):
            moved = {**opts, "clip": float(opts["clip"]) * (1 + shift)}
            ref = run(reference, cell, *(cast(d, np.float64) for d in (inputs, moved, grads)))
            try:
                for name in actual:
                    assert_close_to_ref(actual[name], ref[name], ref32[name], what=name)
                return
            except AssertionError:
                continue
        raise


# One step of 32 to 256 rows whose weights reach engine.hpp's kDirectWeightBytes (4 MiB; the
# RNN's 700 * 1500 float32 weights just do): read where they are instead of packed into
# panels, and the LSTM's input not fused into its step.
LARGE_ONE_STEP_SHAPE = (1, 40, 800, 700, 9)
LARGE_ONE_STEP_LENGTHS = np.array([1, 0, 1, 1, 1] * 8)
# One step of 13 rows (kDirectBackwardRows = 16): the direct backward's tiles of 8 rows (4
# with AVX2) and rows one by one, strips of 2 and 4 vectors and the scalar columns past them
# (I = 40, H = 70).
TILED_ONE_STEP_SHAPE = (1, 13, 40, 70, 9)
TILED_ONE_STEP_LENGTHS = np.array([1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
ONE_STEP_BATCHES = [
    pytest.param((LARGE_ONE_STEP_SHAPE, LARGE_ONE_STEP_LENGTHS, 0.05), id="B40-large"),
    pytest.param((TILED_ONE_STEP_SHAPE, TILED_ONE_STEP_LENGTHS, 0.4), id="B13"),
]


@pytest.mark.parametrize(("lengths", "reverse"), SCHEDULES)
@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("batch", BATCHES + ONE_STEP_BATCHES)
def test_kernel_matches_reference(
    variant: tuple[str, dict[str, Any]],
    lengths: np.ndarray | None,
    reverse: bool,
    dtype: type,
    batch: tuple[tuple[int, int, int, int, int], np.ndarray, float],
    rng: np.random.Generator,
) -> None:
    check_variant(rnnkit, variant, lengths, reverse, dtype, batch, rng)


def check_variant(
    lib: Any,
    variant: tuple[str, dict[str, Any]],
    lengths: np.ndarray | None,
    reverse: bool,
    dtype: type,
    batch: tuple[tuple[int, int, int, int, int], np.ndarray, float],
    rng: np.random.Generator,
    *,
    second_run: bool = False,
    padding: bool = True,
) -> None:
    """One variant of ``lib``'s sequence functions against the reference (shared with the
    CUDA backend's tests): every output and gradient, inference equal to training bit for
    bit, and (``second_run``) a second run equal to the first; (``padding``) outputs and dx
    zero past each sequence's end."""
    cell, options = variant
    shape, batch_lengths, scale = batch
    inputs, opts, grads = make_problem(cell, options, rng, shape, scale)
    lengths = None if lengths is None else batch_lengths
    opts.update(lengths=lengths, reverse=reverse)
    if dtype == np.float32:
        inputs, opts, grads = (cast(d, np.float32) for d in (inputs, opts, grads))
    actual = run(lib, cell, inputs, opts, grads)
    assert_matches_reference(cell, inputs, opts, grads, actual, dtype)
    # Inference computes the same outputs, bit for bit.
    inference = run(lib, cell, inputs, opts, grads, training=False)
    for name, value in inference.items():
        np.testing.assert_array_equal(value, actual[name], err_msg=f"{name}, inference")
    if second_run:
        again = run(lib, cell, inputs, opts, grads)
        for name, value in again.items():
            np.testing.assert_array_equal(value, actual[name], err_msg=f"{name}, second run")
    # Outputs past each sequence's end are zero, and so is dx there.
    if padding and lengths is not None:
        for b, n in enumerate(lengths):
            assert not actual["y"][n:, b].any()
            assert not actual["dx"][n:, b].any()


@pytest.mark.parametrize(("lengths", "reverse"), SCHEDULES)
@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
def test_kernel_gradients_by_finite_differences(
    variant: tuple[str, dict[str, Any]],
    lengths: np.ndarray | None,
    reverse: bool,
    rng: np.random.Generator,
) -> None:
    """Central differences of the float64 kernel on a tiny problem, for every input."""
    cell, options = variant
    inputs, opts, grads = make_problem(cell, options, rng, TINY_SHAPE, scale=0.8)
    opts.update(lengths=None if lengths is None else TINY_LENGTHS, reverse=reverse)
    analytic = run(rnnkit, cell, inputs, opts, grads)
    arrays = {**inputs, **{k: v for k, v in opts.items() if k in ("w_hr", "peepholes")}}
    grad_of = {
        "x": "dx",
        "h0": "dh0",
        "c0": "dc0",
        "w_ih": "dw_ih",
        "w_hh": "dw_hh",
        "b_ih": "db_ih",
        "b_hh": "db_hh",
        "w_hr": "dw_hr",
        "peepholes": "dpeepholes",
    }

    def loss() -> float:
        out = run(rnnkit, cell, inputs, opts, grads, training=False)
        total = float((out["y"] * grads["dy"]).sum() + (out["h_n"] * grads["dh_n"]).sum())
        if cell == "lstm":
            total += float((out["c_n"] * grads["dc_n"]).sum())
        return total

    # Clip bounds and relu's kink make the loss piecewise smooth: a perturbation that crosses
    # one shows as a large second difference (plus - 2*base + minus ~ eps * jump, against
    # ~eps**2 where the loss is smooth), and such entries are skipped (ggml's rule).
    eps = 1e-6
    base = loss()
    checked = skipped = 0
    for name, a in arrays.items():
        numeric = np.zeros_like(a)
        smooth = np.ones(a.shape, dtype=bool)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + eps
            plus = loss()
            a[idx] = old - eps
            minus = loss()
            a[idx] = old
            numeric[idx] = (plus - minus) / (2 * eps)
            smooth[idx] = abs(plus - 2 * base + minus) < 1e-9 * max(1.0, abs(base))
        got = analytic[grad_of[name]]
        assert got is not None, name
        scale = max(1.0, float(np.abs(numeric).max()))
        np.testing.assert_allclose(
            got[smooth], numeric[smooth], rtol=0, atol=1e-6 * scale, err_msg=name
        )
        checked += int(smooth.sum())
        skipped += int((~smooth).sum())
    assert skipped <= 0.05 * (checked + skipped), f"{skipped} of {checked + skipped} skipped"


def test_lengths_skip_padding_and_sorting_is_invisible(rng: np.random.Generator) -> None:
    """A batch with lengths equals running each sequence alone (any order of lengths)."""
    inputs, _, _ = make_problem("gru", {}, rng)
    lengths = np.array([2, 6, 6, 0, 4])
    inputs["x"] = inputs["x"][:, : len(lengths)]
    batch = rnnkit.gru_forward(
        inputs["x"],
        inputs["h0"],
        inputs["w_ih"],
        inputs["w_hh"],
        inputs["b_ih"],
        inputs["b_hh"],
        lengths=lengths,
        reverse=True,
    )
    for b, n in enumerate(lengths):
        alone = rnnkit.gru_forward(
            inputs["x"][:n, b : b + 1],
            inputs["h0"][b : b + 1],
            inputs["w_ih"],
            inputs["w_hh"],
            inputs["b_ih"],
            inputs["b_hh"],
            reverse=True,
        )
        np.testing.assert_allclose(batch.y[:n, b], alone.y[:, 0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(batch.h_n[b], alone.h_n[0], rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------ bad new arguments
def _lstm_args(rng: np.random.Generator) -> list[np.ndarray]:
    inputs, _, _ = make_problem("lstm", {}, rng)
    return [inputs[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"lengths": np.array([1, 2, 3])},
            ValueError,
            "lengths must have shape (B,) = (5,), got (3,)",
        ),
        (
            {"lengths": np.array([1, 2, 7, 0, 1])},
            ValueError,
            "lengths[2] = 7 is out of range [0, T] = [0, 6]",
        ),
        (
            {"lengths": np.array([1, -1, 2, 0, 1])},
            ValueError,
            "lengths[1] = -1 is out of range [0, T] = [0, 6]",
        ),
        ({"lengths": np.ones(5)}, TypeError, "lengths must have an integer dtype, got float64"),
        ({"lengths": np.ones(5, bool)}, TypeError, "lengths must have an integer dtype, got bool"),
        ({"clip": -1.0}, ValueError, "clip must be a positive finite number or None, got -1.0"),
        (
            {"clip": float("nan")},
            ValueError,
            "clip must be a positive finite number or None, got nan",
        ),
        ({"clip": True}, TypeError, "clip must be a number or None, got bool"),
        ({"clip": "1"}, TypeError, "clip must be a number or None, got str"),
        # an array is no number (its __float__ used to pass, then pybind11's cast failed with
        # a RuntimeError naming nothing), and an int past the doubles is out of range
        ({"clip": np.array([2.0])}, TypeError, "clip must be a number or None, got ndarray"),
        (
            {"clip": 10**400},
            ValueError,
            "clip must be a positive finite number or None, got an int too large for a float",
        ),
        (
            {"peepholes": np.ones((4, H))},
            ValueError,
            f"peepholes must have shape (3, H) = (3, {H}) (H from w_ih), got (4, {H})",
        ),
        (
            {"peepholes": np.ones((3, H), np.float32)},
            TypeError,
            "peepholes must have dtype float64 (the dtype of w_ih), got float32",
        ),
        (  # w_ih and w_hh agree on H: w_hr is the one named (H used to be read from it)
            {"w_hr": np.ones((P, H + 1))},
            ValueError,
            f"w_hr must have shape (P, H) = ({P}, {H}) (H from w_ih), got ({P}, {H + 1})",
        ),
    ],
    ids=lambda v: str(v)[:40] if not isinstance(v, dict) else next(iter(v)),
)
def test_bad_options(
    kwargs: dict[str, Any], error: type, message: str, rng: np.random.Generator
) -> None:
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        rnnkit.lstm_forward(*_lstm_args(rng), **kwargs)


def test_projection_state_shapes_are_checked(rng: np.random.Generator) -> None:
    x, h0, c0, w_ih, _, b_ih, b_hh = _lstm_args(rng)
    w_hr = rng.uniform(-0.3, 0.3, (P, H))
    w_hh = rng.uniform(-0.3, 0.3, (4 * H, P))
    with pytest.raises(ValueError, match=re.escape(f"h0 must have shape (B, P) = (5, {P})")):
        rnnkit.lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr=w_hr)
    out = rnnkit.lstm_forward(x, None, c0, w_ih, w_hh, b_ih, b_hh, w_hr=w_hr)
    with pytest.raises(ValueError, match=re.escape(f"dy must have shape (T, B, P) = (6, 5, {P})")):
        rnnkit.lstm_backward(np.ones((6, 5, H)), None, None, out.cache)
