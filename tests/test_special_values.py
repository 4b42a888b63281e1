"""Special values in the data (±Inf, huge, denormal, NaN) go through the kernels as IEEE
arithmetic says, the same as the float64 reference computes them, forward and backward, and
never crash: a special value in one batch row leaves the other rows untouched."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import rnnkit
from rnnkit import reference as ref

SPECIALS = [np.inf, -np.inf, 1e30, -1e30, 1e-40, np.nan]
T, B, I, H = 5, 3, 4, 6  # noqa: E741 (the shape letters)


def run(
    module: Any, cell: str, x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray
) -> tuple[Any, Any]:
    if cell == "lstm":
        out = module.lstm_forward(x, None, None, w_ih, w_hh, training=True)
        grads = module.lstm_backward(np.ones_like(out.y), None, None, out.cache)
    elif cell == "gru":
        out = module.gru_forward(x, None, w_ih, w_hh, training=True)
        grads = module.gru_backward(np.ones_like(out.y), None, out.cache)
    else:
        out = module.rnn_forward(x, None, w_ih, w_hh, training=True)
        grads = module.rnn_backward(np.ones_like(out.y), None, out.cache)
    return out.y, grads


@pytest.mark.parametrize("special", SPECIALS)
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_special_values_follow_ieee_like_the_reference(cell: str, special: float) -> None:
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    x[1, 0, 2] = special
    w_ih = (rng.standard_normal((G * H, I)) * 0.3).astype(np.float32)
    w_hh = (rng.standard_normal((G * H, H)) * 0.3).astype(np.float32)
    y, grads = run(rnnkit, cell, x, w_ih, w_hh)
    with np.errstate(all="ignore"):  # the reference computes the same overflows in NumPy
        y_ref, grads_ref = run(
            ref, cell, x.astype(np.float64), w_ih.astype(np.float64), w_hh.astype(np.float64)
        )
    for name, got, expected in [("y", y, y_ref), ("dx", grads.dx, grads_ref.dx)]:
        assert np.array_equal(np.isnan(got), np.isnan(expected)), name
        assert np.array_equal(np.isinf(got), np.isinf(expected)), name
        finite = np.isfinite(expected)
        np.testing.assert_allclose(
            got[finite], expected[finite], rtol=2e-3, atol=2e-4, err_msg=name
        )
    # the other batch rows never see the special value
    x_clean = x.copy()
    x_clean[1, 0, 2] = 0.5
    y_clean, grads_clean = run(rnnkit, cell, x_clean, w_ih, w_hh)
    np.testing.assert_array_equal(y[:, 1:], y_clean[:, 1:])
    np.testing.assert_array_equal(grads.dx[:, 1:], grads_clean.dx[:, 1:])


@pytest.mark.parametrize(
    ("cell", "where"),
    [(c, w) for c in ("lstm", "lstm_peepholes") for w in ("h0", "c0")]
    + [("gru", "h0"), ("rnn", "h0")],
)
def test_infinite_state_gives_the_references_nans_in_float32(cell: str, where: str) -> None:
    """An infinite entry of h0 (or c0) makes gate pre-activations infinite: float32's sigmoid
    of -inf must be exactly 0, as the math and float64 say (it was 6e-39, its exp saturating
    at e^88, and 0 * inf came out finite where float64, the reference and torch give NaN)."""
    G = {"gru": 3, "rnn": 1}.get(cell, 4)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, I))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    (h0 if where == "h0" else c0)[0, 1] = np.inf
    w_ih, w_hh = rng.standard_normal((G * H, I)) * 0.3, rng.standard_normal((G * H, H)) * 0.3
    peepholes = rng.standard_normal((3, H)) * 0.3 if cell == "lstm_peepholes" else None

    def forward(module: Any, dtype: type) -> np.ndarray:
        args = [a.astype(dtype) for a in (x, h0, c0, w_ih, w_hh)]
        if cell.startswith("lstm"):
            p = None if peepholes is None else peepholes.astype(dtype)
            return module.lstm_forward(*args, peepholes=p).y
        if cell == "gru":
            return module.gru_forward(args[0], args[1], args[3], args[4]).y
        return module.rnn_forward(args[0], args[1], args[3], args[4]).y

    with np.errstate(all="ignore"):
        expected = forward(ref, np.float64)
    if cell == "gru":
        assert np.isnan(expected).any()  # (a case where NaN arises: z = 0 times h0's inf)
    for dtype in (np.float32, np.float64):
        got = forward(rnnkit, dtype)
        assert np.array_equal(np.isnan(got), np.isnan(expected)), dtype
        assert np.array_equal(np.isinf(got), np.isinf(expected)), dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cifg_gradient_of_an_infinite_cell_gradient_is_the_references(dtype: type) -> None:
    """With f = 1 - i the gradient of i is the sum of the path through i and the one through
    f: an infinite gradient reaching c' gives inf - inf = NaN there, as the reference (and
    autograd) computes it, not the +-inf of c_grad * (g - c_prev)."""
    x, h, c = np.array([[0.5]]), np.array([[0.2]]), np.array([[0.8]])
    w_ih, w_hh = np.full((4, 1), 0.7), np.full((4, 1), 0.3)
    grads = {}
    for module, dt in ((rnnkit, dtype), (ref, np.float64)):
        out = module.lstm_cell_forward(
            *(a.astype(dt) for a in (x, h, c, w_ih, w_hh)), input_forget=True
        )
        with np.errstate(all="ignore"):
            grads[module] = module.lstm_cell_backward(np.array([[np.inf]], dt), None, out[-1])
    got, expected = grads[rnnkit].dw_ih.ravel(), grads[ref].dw_ih.ravel()
    assert np.isnan(expected[0])
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.array_equal(got[~np.isnan(got)], expected[~np.isnan(expected)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_nan_pre_activation_passes_no_gradient_when_clipping(cell: str, dtype: type) -> None:
    """With ``clip``, the gradient passes only where -clip < a < clip, which a NaN is not: dx
    is the reference's (finite, NaN-free), as torch's clamp gives it; it was NaN."""
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    x[0, 0, 0] = np.nan
    w_ih = (rng.standard_normal((G * H, I)) * 0.3).astype(dtype)
    w_hh = (rng.standard_normal((G * H, H)) * 0.3).astype(dtype)

    def grads(module: Any, args: list[np.ndarray]) -> Any:
        forward = getattr(module, f"{cell}_forward")
        backward = getattr(module, f"{cell}_backward")
        xs, wi, wh = args
        if cell == "lstm":
            out = forward(xs, None, None, wi, wh, clip=0.5)
            return backward(np.ones_like(out.y), None, None, out.cache)
        out = forward(xs, None, wi, wh, clip=0.5)
        return backward(np.ones_like(out.y), None, out.cache)

    with np.errstate(all="ignore"):
        expected = grads(ref, [a.astype(np.float64) for a in (x, w_ih, w_hh)])
        got = grads(rnnkit, [x, w_ih, w_hh])
    for name in ("dx", "dw_ih", "dw_hh"):
        e, g = getattr(expected, name), getattr(got, name)
        assert np.array_equal(np.isnan(g), np.isnan(e)), name
        finite = np.isfinite(e)
        np.testing.assert_allclose(g[finite], e[finite], rtol=2e-3, atol=2e-4, err_msg=name)
    assert not np.isnan(got.dx).any()
