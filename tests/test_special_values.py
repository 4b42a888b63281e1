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
