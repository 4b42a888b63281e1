"""The compiled kernels (``rnnkit.*_forward``/``*_backward``) against the NumPy reference.

Every cell (LSTM, GRU, RNN with tanh and relu) in float32 and float64: forward outputs and
every backward gradient on shapes with one and several unit blocks (the kernels pack hidden
units in blocks of 64, so H = 70 and H = 130 have a partial last block), I != H, B in
{1, 3, 17}, biases present, absent or one-sided, initial states and incoming gradients given
or None; long inference runs (the input projection is chunked in inference mode); inference
outputs bit-identical to training outputs; T = 0 and B = 0; a cache reused by several
backward calls; the cell functions against a one-step sequence; and backward refusing an
inference cache. Tolerances are those of ``helpers.assert_close64`` (float64, ~1e-10) and
``helpers.assert_close_to_ref`` (float32, a multiple of the reference's own float32 error).
"""

from __future__ import annotations

import numpy as np
import pytest
import rnnkit
from helpers import (
    CELLS,
    DTYPES,
    GATES,
    assert_all_close,
    assert_all_equal,
    assert_close64,
    assert_close_to_ref,
    backward,
    cast_all,
    cell_backward,
    cell_forward,
    forward,
    grad_names,
    has_cell_state,
    make_inputs,
    make_output_grads,
    make_params,
    output_names,
    run_against_reference,
)
from rnnkit import reference

dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
cells = pytest.mark.parametrize("cell", CELLS)


# ------------------------------------------------------------------- against the reference
# (T, B, I, H, bias, state, grads): shapes across the unit-block boundaries (H = 1, 7 in one
# partial block; 64, 128 in full blocks; 65, 70, 130 with a partial last block), I != H,
# B from 1 to 130, each with a different combination of the optional arguments.
CASES = [
    pytest.param(4, 1, 5, 7, True, True, "all", id="T4-B1-I5-H7"),
    pytest.param(3, 3, 10, 70, False, False, "all", id="T3-B3-I10-H70-nobias-nostate"),
    pytest.param(3, 17, 6, 130, True, False, "y", id="T3-B17-I6-H130-dy-only"),
    pytest.param(5, 3, 130, 64, "ih", True, "final", id="T5-B3-I130-H64-bih-final-only"),
    pytest.param(2, 17, 1, 65, "hh", True, "all", id="T2-B17-I1-H65-bhh"),
    pytest.param(6, 1, 70, 1, True, True, "all", id="T6-B1-I70-H1"),
    pytest.param(7, 3, 3, 128, False, True, "final", id="T7-B3-I3-H128-nobias"),
    # B large next to H (where batch-parallel schedules pay off).
    pytest.param(4, 64, 5, 8, True, True, "all", id="T4-B64-I5-H8"),
    pytest.param(3, 130, 7, 20, "hh", False, "all", id="T3-B130-I7-H20-bhh-nostate"),
    # B >= 32: the LSTM's steps take [x_t | h_prev] in one GEMM; 33 = 4 tiles of 8 + 1 row.
    pytest.param(5, 33, 9, 70, True, True, "all", id="T5-B33-I9-H70"),
    pytest.param(4, 40, 130, 65, "ih", False, "all", id="T4-B40-I130-H65-bih-nostate"),
]


@dtypes
@cells
@pytest.mark.parametrize(("T", "B", "I", "H", "bias", "state", "grads"), CASES)
def test_sequence_matches_reference(cell, dtype, T, B, I, H, bias, state, grads, rng):  # noqa: E741
    run_against_reference(cell, dtype, T, B, I, H, rng, bias=bias, state=state, grads=grads)


# Incoming-gradient selections of helpers.make_output_grads ("c" = dc_n alone, LSTM only).
OPTION_GRADS = [
    (cell, g) for cell in CELLS for g in ("all", "y", "final", "c") if g != "c" or cell == "lstm"
]


@dtypes
@pytest.mark.parametrize(("cell", "grads"), OPTION_GRADS)
@pytest.mark.parametrize("bias", [True, False, "ih", "hh"])
@pytest.mark.parametrize("state", [True, False], ids=["state", "nostate"])
def test_optional_arguments_match_reference(cell, dtype, bias, state, grads, rng):
    """Every combination of biases / initial state / incoming gradients, on a small shape."""
    run_against_reference(cell, dtype, 3, 2, 4, 5, rng, bias=bias, state=state, grads=grads)


@dtypes
@cells
def test_no_incoming_gradient_gives_zero_gradients(cell, dtype, rng):
    """dy, dh_n (and dc_n) all None mean zeros: every gradient is exactly 0."""
    T, B, I, H = 3, 3, 4, 70  # noqa: E741
    params = make_params(cell, I, H, dtype, rng)
    x, h0, c0 = make_inputs(cell, T, B, I, H, dtype, rng)
    _, cache = forward(rnnkit, cell, x, h0, c0, params)
    g = backward(rnnkit, cell, None, None, None, cache)
    for name, a in g.items():
        assert a is not None and a.dtype == dtype, name
        assert not a.any(), f"{name} is not zero"


@cells
@pytest.mark.parametrize(
    ("dtype", "T", "B"),
    [
        pytest.param(np.float32, 300, 1, id="float32-T300-B1"),
        pytest.param(np.float64, 300, 1, id="float64-T300-B1"),
        pytest.param(np.float32, 300, 2, id="float32-T300-B2"),
        pytest.param(np.float64, 300, 2, id="float64-T300-B2"),
        pytest.param(np.float64, 1100, 1, id="float64-T1100-B1"),
    ],
)
def test_long_inference_run_matches_reference(cell, dtype, T, B, rng):
    """Long sequences in inference mode, where the input projection runs in chunks of about
    512 rows of T*B (T=300, B=1 fits in one chunk; B=2 takes two, T=1100 three with a
    remainder), against the reference."""
    run_against_reference(cell, dtype, T, B, 4, 70, rng, backward_too=False, training=False)


@dtypes
@cells
def test_long_training_run_matches_reference(cell, dtype, rng):
    run_against_reference(cell, dtype, 300, 1, 3, 70, rng)


@dtypes
@cells
@pytest.mark.parametrize(
    ("T", "B", "I", "H", "state"),
    [
        pytest.param(1, 1, 3, 5, False, id="T1-B1-H5-nostate"),
        pytest.param(5, 3, 7, 70, True, id="T5-B3-H70"),
        pytest.param(9, 17, 5, 130, False, id="T9-B17-H130-nostate"),
        pytest.param(300, 2, 3, 65, True, id="T300-B2-I3-H65-chunked"),
        # T * B > 512: the input projection runs in chunks of steps in both modes, and a
        # BLAS call's rounding depends on its shape (I = 3 is too short to show a difference).
        pytest.param(40, 17, 8, 16, False, id="T40-B17-I8-H16-chunked"),
        pytest.param(600, 1, 17, 70, True, id="T600-B1-I17-H70-chunked"),
        pytest.param(20, 33, 9, 70, True, id="T20-B33-I9-H70-fused"),
    ],
)
def test_inference_forward_is_bit_identical_to_training(cell, dtype, T, B, I, H, state, rng):  # noqa: E741
    """README: "the outputs are bit-identical to training mode", including when T * B > 512
    and inference computes the input projection in chunks of ceil(512 / B) steps."""
    params = make_params(cell, I, H, dtype, rng)
    x, h0, c0 = make_inputs(cell, T, B, I, H, dtype, rng, state=state)
    train, train_cache = forward(rnnkit, cell, x, h0, c0, params, training=True)
    infer, infer_cache = forward(rnnkit, cell, x, h0, c0, params, training=False)
    assert_all_equal(infer, train, context=f"{cell} inference vs training")
    assert train_cache.training and not infer_cache.training
    assert infer_cache.nbytes == 0 < train_cache.nbytes


# --------------------------------------------------------------------------- T = 0, B = 0
@dtypes
@cells
@pytest.mark.parametrize("state", [True, False], ids=["state", "nostate"])
def test_zero_steps_is_the_identity(cell, dtype, state, rng):
    B, I, H = 3, 5, 70  # noqa: E741
    params = make_params(cell, I, H, dtype, rng)
    x, h0, c0 = make_inputs(cell, 0, B, I, H, dtype, rng, state=state)
    out, cache = forward(rnnkit, cell, x, h0, c0, params)
    assert out["y"].shape == (0, B, H) and out["y"].dtype == dtype
    zeros = np.zeros((B, H), dtype)
    np.testing.assert_array_equal(out["h_n"], zeros if h0 is None else h0)
    assert out["h_n"].dtype == dtype
    if has_cell_state(cell):
        np.testing.assert_array_equal(out["c_n"], zeros if c0 is None else c0)
        assert out["c_n"].dtype == dtype

    _, dh_n, dc_n = make_output_grads(cell, 0, B, H, dtype, rng)
    g = backward(rnnkit, cell, np.empty((0, B, H), dtype), dh_n, dc_n, cache)
    assert g["dx"].shape == (0, B, I) and g["dx"].dtype == dtype
    np.testing.assert_array_equal(g["dh0"], dh_n)
    if has_cell_state(cell):
        np.testing.assert_array_equal(g["dc0"], dc_n)
    gh = GATES[cell] * H
    expected_shapes = {"dw_ih": (gh, I), "dw_hh": (gh, H), "db_ih": (gh,), "db_hh": (gh,)}
    for name, shape in expected_shapes.items():
        assert g[name].shape == shape and g[name].dtype == dtype, name
        assert not g[name].any(), f"{name} is not zero for T=0"

    # None incoming gradients: zeros through.
    g0 = backward(rnnkit, cell, None, None, None, cache)
    assert not g0["dh0"].any() and g0["dh0"].shape == (B, H)


@dtypes
@cells
@pytest.mark.parametrize("T", [0, 4])
def test_empty_batch(cell, dtype, T, rng):
    I, H = 3, 70  # noqa: E741
    params = make_params(cell, I, H, dtype, rng)
    x, h0, c0 = make_inputs(cell, T, 0, I, H, dtype, rng)
    out, cache = forward(rnnkit, cell, x, h0, c0, params)
    for name in output_names(cell):
        expected = (T, 0, H) if name == "y" else (0, H)
        assert out[name].shape == expected and out[name].dtype == dtype, name
    dy, dh_n, dc_n = make_output_grads(cell, T, 0, H, dtype, rng)
    g = backward(rnnkit, cell, dy, dh_n, dc_n, cache)
    gh = GATES[cell] * H
    shapes = {"dx": (T, 0, I), "dh0": (0, H), "dc0": (0, H), "dw_ih": (gh, I), "dw_hh": (gh, H)}
    shapes |= {"db_ih": (gh,), "db_hh": (gh,)}
    for name in grad_names(cell):
        assert g[name].shape == shapes[name] and g[name].dtype == dtype, name
        assert not g[name].any(), name


# ---------------------------------------------------------------------------------- caches
@dtypes
@cells
def test_backward_twice_on_one_cache(cell, dtype, rng):
    """A cache can be used by several backward calls: a call with other gradients in between
    does not change the result (nothing accumulates in the cache)."""
    T, B, I, H = 5, 3, 4, 70  # noqa: E741
    params = make_params(cell, I, H, dtype, rng)
    x, h0, c0 = make_inputs(cell, T, B, I, H, dtype, rng)
    _, cache = forward(rnnkit, cell, x, h0, c0, params)
    dy, dh_n, dc_n = make_output_grads(cell, T, B, H, dtype, rng)
    first = backward(rnnkit, cell, dy, dh_n, dc_n, cache)
    second = backward(rnnkit, cell, dy, dh_n, dc_n, cache)
    assert_all_equal(second, first, context="second backward")
    other = backward(rnnkit, cell, *make_output_grads(cell, T, B, H, dtype, rng), cache)
    assert not np.array_equal(other["dw_hh"], first["dw_hh"])
    third = backward(rnnkit, cell, dy, dh_n, dc_n, cache)
    assert_all_equal(third, first, context="backward after another backward")


@dtypes
@cells
@pytest.mark.parametrize("sequence", [True, False], ids=["sequence", "cell"])
def test_backward_of_inference_cache_raises(cell, dtype, sequence, rng):
    T, B, I, H = 3, 2, 4, 5  # noqa: E741
    params = make_params(cell, I, H, dtype, rng)
    x, h0, c0 = make_inputs(cell, T, B, I, H, dtype, rng)
    name = cell.split("_")[0]
    if sequence:
        _, cache = forward(rnnkit, cell, x, h0, c0, params, training=False)
        producer = f"{name}_forward"
        call = lambda: backward(rnnkit, cell, None, np.ones((B, H), dtype), None, cache)  # noqa: E731
    else:
        _, cache = cell_forward(rnnkit, cell, x[0], h0, c0, params, training=False)
        producer = f"{name}_cell_forward"
        call = lambda: cell_backward(rnnkit, cell, np.ones((B, H), dtype), None, cache)  # noqa: E731
    message = (
        rf"cache was made by {producer}\(\.\.\., training=False\), which keeps nothing for "
        r"backward; call forward with training=True"
    )
    with pytest.raises(ValueError, match=message):
        call()


# ------------------------------------------------------------------------------ cells
@dtypes
@cells
@pytest.mark.parametrize(("B", "I", "H"), [(1, 3, 5), (3, 10, 70), (17, 4, 130)])
@pytest.mark.parametrize("state", [True, False], ids=["state", "nostate"])
def test_cell_equals_one_step_sequence(cell, dtype, B, I, H, state, rng):  # noqa: E741
    """A cell call is bit-identical to a T=1 sequence call, forward and backward, and both
    match the reference cell."""
    params = make_params(cell, I, H, dtype, rng)
    x, h, c = make_inputs(cell, 1, B, I, H, dtype, rng, state=state)
    _, dh1, dc1 = make_output_grads(cell, 1, B, H, dtype, rng)

    step, step_cache = cell_forward(rnnkit, cell, x[0], h, c, params)
    seq, seq_cache = forward(rnnkit, cell, x, h, c, params)
    assert_all_equal(step, {k: v for k, v in seq.items() if k != "y"}, context="cell forward")
    np.testing.assert_array_equal(step["h_n"], seq["y"][0])

    g_step = cell_backward(rnnkit, cell, dh1, dc1, step_cache)
    g_seq = backward(rnnkit, cell, None, dh1, dc1, seq_cache)
    assert g_step["dx"].shape == (B, I)
    g_seq["dx"] = g_seq["dx"][0]
    assert_all_equal(g_step, g_seq, context="cell backward")

    # The same step through the reference cell.
    p64 = cast_all(params, np.float64)
    s64 = cast_all((x[0], h, c, dh1, dc1), np.float64)
    ref_out, ref_cache = cell_forward(reference, cell, *s64[:3], p64)
    ref_g = cell_backward(reference, cell, s64[3], s64[4], ref_cache)
    ref32 = ref32_g = None
    if dtype == np.float32:
        ref32, cache32 = cell_forward(reference, cell, x[0], h, c, params)
        ref32_g = cell_backward(reference, cell, dh1, dc1, cache32)
    assert_all_close(step, ref_out, ref32, context=f"{cell} cell forward")
    assert_all_close(g_step, ref_g, ref32_g, context=f"{cell} cell backward")


@dtypes
@cells
def test_inference_cell_is_bit_identical_to_training_cell(cell, dtype, rng):
    B, I, H = 3, 6, 70  # noqa: E741
    params = make_params(cell, I, H, dtype, rng)
    x, h, c = make_inputs(cell, 1, B, I, H, dtype, rng)
    train, _ = cell_forward(rnnkit, cell, x[0], h, c, params)
    infer, _ = cell_forward(rnnkit, cell, x[0], h, c, params, training=False)
    assert_all_equal(infer, train, context="inference cell")


# -------------------------------------------------------------------------- conventions
@dtypes
def test_relu_derivative_at_zero_is_zero(dtype, rng):
    """With no biases, a zero input row and a zero initial state give a pre-activation of
    exactly 0; its derivative is taken as 0 (PyTorch's and the reference's convention)."""
    T, B, I, H = 3, 3, 4, 70  # noqa: E741
    params = make_params("rnn_relu", I, H, dtype, rng, bias=False)
    x, _, _ = make_inputs("rnn_relu", T, B, I, H, dtype, rng)
    x[:, 1] = 0  # batch row 1 stays exactly 0 at every step
    out, cache = forward(rnnkit, "rnn_relu", x, None, None, params)
    assert not out["y"][:, 1].any()
    dy, dh_n, _ = make_output_grads("rnn_relu", T, B, H, dtype, rng)
    g = backward(rnnkit, "rnn_relu", dy, dh_n, None, cache)
    assert not g["dx"][:, 1].any() and not g["dh0"][1].any()
    p64 = cast_all(params, np.float64)
    _, cache64 = forward(reference, "rnn_relu", x.astype(np.float64), None, None, p64)
    g64 = backward(reference, "rnn_relu", *cast_all((dy, dh_n), np.float64), None, cache64)
    if dtype == np.float64:
        assert_all_close(g, g64, context="relu at 0")
    else:
        _, cache32 = forward(reference, "rnn_relu", x, None, None, params)
        g32 = backward(reference, "rnn_relu", dy, dh_n, None, cache32)
        assert_all_close(g, g64, g32, context="relu at 0")


@dtypes
@cells
def test_non_contiguous_inputs_give_the_same_results(cell, dtype, rng):
    """Strided and Fortran-ordered arguments are copied, not misread."""
    T, B, I, H = 4, 3, 5, 70  # noqa: E741
    params = make_params(cell, I, H, dtype, rng)
    x, h0, c0 = make_inputs(cell, T, B, I, H, dtype, rng)
    dy, dh_n, dc_n = make_output_grads(cell, T, B, H, dtype, rng)
    out, cache = forward(rnnkit, cell, x, h0, c0, params)
    g = backward(rnnkit, cell, dy, dh_n, dc_n, cache)

    def strided(a):
        if a is None:
            return None
        big = np.zeros((*a.shape[:-1], 2 * a.shape[-1]), a.dtype)
        big[..., ::2] = a
        view = big[..., ::2]
        assert not view.flags.c_contiguous
        return view

    def fortran(a):
        return None if a is None else np.asfortranarray(a) if a.ndim > 1 else strided(a)

    nc_params = tuple(fortran(p) for p in params)
    out_nc, cache_nc = forward(rnnkit, cell, strided(x), fortran(h0), strided(c0), nc_params)
    g_nc = backward(rnnkit, cell, strided(dy), fortran(dh_n), strided(dc_n), cache_nc)
    assert_all_equal(out_nc, out, context="non-contiguous forward")
    assert_all_equal(g_nc, g, context="non-contiguous backward")


# ------------------------------------------------------------- the comparisons can fail
def test_comparisons_catch_errors(rng):
    """The tolerances of helpers are tight enough to catch a small real error."""
    ref64 = rng.uniform(-1, 1, (50, 7))
    assert_close64(ref64 * (1 + 1e-12), ref64)
    with pytest.raises(AssertionError):
        assert_close64(ref64 * (1 + 1e-8), ref64)
    with pytest.raises(AssertionError):
        assert_close64(ref64.T.copy(), ref64.T.copy()[:, :-1])
    with pytest.raises(AssertionError):
        assert_close64(None, ref64)

    # A float32 "kernel" with the reference's rounding passes; one off by 1e-5 does not.
    ref32 = ref64.astype(np.float32)
    assert_close_to_ref(ref32.copy(), ref64, ref32)
    with pytest.raises(AssertionError):
        assert_close_to_ref((ref64 + 1e-5).astype(np.float32), ref64, ref32)
    with pytest.raises(AssertionError):
        assert_close_to_ref(ref64.copy(), ref64, ref32)  # wrong dtype
    assert_close_to_ref(None, None, None)
