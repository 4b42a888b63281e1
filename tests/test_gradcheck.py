"""Gradients of the float64 kernels checked by central finite differences.

Independent of the reference: the loss is the random linear functional
``L = sum(dy * y) + sum(dh_n * h_n) (+ sum(dc_n * c_n))`` of the kernel's own forward
outputs, so the kernel's backward with ``(dy, dh_n, dc_n)`` must return ``dL/d(input)`` for
every input: ``x``, ``h0``, ``c0``, ``w_ih``, ``w_hh``, ``b_ih`` and ``b_hh``. Each
coordinate is perturbed by ``+-EPS`` and ``(L(+) - L(-)) / (2 EPS)`` compared with the
analytic value (computed with the default thread count). Tiny shapes check every
coordinate; a two-block shape (H = 66: a block of 64 units and one of 2) checks the
coordinates of the units at both ends of both blocks.

For the relu RNN, problems whose pre-activations come within ``KINK_MARGIN`` of the kink at
0 are redrawn (ggml's test-backend-ops skips such points too): a perturbation crossing it
would make the difference quotient meaningless.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import rnnkit
from helpers import (
    CELLS,
    backward,
    cell_backward,
    cell_forward,
    forward,
    has_cell_state,
    make_inputs,
    make_output_grads,
    make_params,
)
from rnnkit import reference

EPS = 1e-6
RTOL = 1e-6
ATOL = 1e-8  # times max(1, max |analytic gradient of that input|)
KINK_MARGIN = 1e-3

INPUTS = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")


def relu_pre_activations(x, h0, params) -> np.ndarray:
    """Every pre-activation ``x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh`` of a relu RNN run,
    computed from the float64 reference's states, shape ``[T, B, H]``."""
    w_ih, w_hh, b_ih, b_hh = params
    y, _, _ = reference.rnn_forward(x, h0, *params, nonlinearity="relu")
    h_prev = np.concatenate([h0[None], y[:-1]])
    return x @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh


def draw_problem(cell: str, T: int, B: int, I: int, H: int, rng: np.random.Generator):  # noqa: E741
    """Random float64 inputs with states given and both biases, keyed by input name.

    relu problems are redrawn until no pre-activation is within ``KINK_MARGIN`` of 0 and at
    least a fifth of them are active (so the gradients are not trivially zero).
    """
    for _ in range(100):
        params = make_params(cell, I, H, np.float64, rng)
        x, h0, c0 = make_inputs(cell, T, B, I, H, np.float64, rng)
        if cell != "rnn_relu":
            break
        pre = relu_pre_activations(x, h0, params)
        if np.abs(pre).min() > KINK_MARGIN and (pre > 0).mean() > 0.2:
            break
    else:  # pragma: no cover - 100 bad draws in a row is astronomically unlikely
        raise AssertionError("could not draw a relu problem away from the kink")
    inputs = {"x": x, "h0": h0, "c0": c0, "w_ih": params[0], "w_hh": params[1]}
    inputs |= {"b_ih": params[2], "b_hh": params[3]}
    return inputs


def unit_coords(name: str, shape: tuple[int, ...], H: int, units: list[int], rng):
    """Coordinates of input ``name`` that involve only the hidden units in ``units``: for a
    weight or bias, rows ``g*H + j`` of every gate ``g`` (and, for ``w_hh``, columns ``j``;
    for ``w_ih``, one random column), for a state, columns ``j`` of every batch row; ``x``
    whole. Used to cover every unit block of a large H without checking every coordinate."""
    if name == "x":
        return list(np.ndindex(shape))
    if name in ("h0", "c0"):
        return [(b, j) for b in range(shape[0]) for j in units]
    rows = [g * H + j for g in range(shape[0] // H) for j in units]
    if name in ("b_ih", "b_hh"):
        return [(r,) for r in rows]
    if name == "w_hh":
        return [(r, j) for r in rows for j in units]
    return [(r, int(rng.integers(shape[1]))) for r in rows]


def loss_and_grads(cell: str, sequence: bool, inputs: dict[str, Any], out_grads, *, grads=True):
    """The loss ``L`` of the kernel's forward, and (if ``grads``) the kernel's gradients keyed
    by input name (``x``, ``h0``, ...)."""
    dy, dh_n, dc_n = out_grads
    params = tuple(inputs[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh"))
    # Loss-only evaluations use inference mode (bit-identical outputs, tested elsewhere).
    if sequence:
        out, cache = forward(
            rnnkit, cell, inputs["x"], inputs["h0"], inputs["c0"], params, training=grads
        )
    else:
        x = inputs["x"][0]
        out, cache = cell_forward(
            rnnkit, cell, x, inputs["h0"], inputs["c0"], params, training=grads
        )
    loss = float(np.sum(dh_n * out["h_n"]))
    if sequence:
        loss += float(np.sum(dy * out["y"]))
    if has_cell_state(cell):
        loss += float(np.sum(dc_n * out["c_n"]))
    if not grads:
        return loss, None
    if sequence:
        g = backward(rnnkit, cell, dy, dh_n, dc_n, cache)
    else:
        g = cell_backward(rnnkit, cell, dh_n, dc_n, cache)
        g["dx"] = g["dx"][None]
    return loss, {name: g["d" + name] for name in INPUTS if "d" + name in g}


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the many tiny loss evaluations on one thread: results do not depend on the thread
    count (README), and on a busy machine a per-step barrier between two threads can cost a
    whole scheduler time slice."""
    before = rnnkit.get_num_threads()
    rnnkit.set_num_threads(1)
    try:
        yield
    finally:
        rnnkit.set_num_threads(before)


def check_gradients(
    cell: str,
    sequence: bool,
    T: int,
    B: int,
    I: int,  # noqa: E741
    H: int,
    rng: np.random.Generator,
    units: list[int] | None = None,
) -> None:
    """Check every coordinate of every input (or, with ``units``, those of
    :func:`unit_coords`) of the kernel's gradient against central differences."""
    inputs = draw_problem(cell, T, B, I, H, rng)
    out_grads = make_output_grads(cell, T, B, H, np.float64, rng)
    _, analytic = loss_and_grads(cell, sequence, inputs, out_grads)
    checked = 0
    for name in INPUTS:
        if inputs[name] is None:
            continue
        a = inputs[name]
        ana = analytic[name]
        assert ana.shape == a.shape and ana.dtype == np.float64, name
        if units is None:
            coords = list(np.ndindex(a.shape))
        else:
            coords = unit_coords(name, a.shape, H, units, rng)
        scale = max(1.0, float(np.abs(ana).max()))
        for idx in coords:
            orig = a[idx]
            with one_thread():
                a[idx] = orig + EPS
                plus, _ = loss_and_grads(cell, sequence, inputs, out_grads, grads=False)
                a[idx] = orig - EPS
                minus, _ = loss_and_grads(cell, sequence, inputs, out_grads, grads=False)
                a[idx] = orig
            numeric = (plus - minus) / (2 * EPS)
            tol = ATOL * scale + RTOL * abs(numeric)
            assert abs(numeric - ana[idx]) <= tol, (
                f"{cell} d{name}{list(idx)}: kernel {ana[idx]:.10g}, "
                f"finite difference {numeric:.10g}"
            )
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("cell", CELLS)
def test_sequence_gradients_by_finite_differences(cell, rng):
    check_gradients(cell, True, 3, 2, 3, 4, rng)


@pytest.mark.parametrize("cell", CELLS)
def test_cell_gradients_by_finite_differences(cell, rng):
    check_gradients(cell, False, 1, 3, 2, 5, rng)


@pytest.mark.parametrize("cell", CELLS)
def test_two_block_gradients_by_finite_differences(cell, rng):
    """H = 66 spans two unit blocks (64 + 2): the coordinates of units at the start and the
    end of both blocks."""
    check_gradients(cell, True, 2, 2, 3, 66, rng, units=[0, 1, 63, 64, 65])


def test_gradient_check_catches_a_wrong_gradient(rng):
    """The checker itself can fail: a gradient off by 1e-6 is caught."""
    inputs = draw_problem("gru", 2, 2, 3, 4, rng)
    out_grads = make_output_grads("gru", 2, 2, 4, np.float64, rng)
    _, analytic = loss_and_grads("gru", True, inputs, out_grads)
    w = inputs["w_hh"]
    plus_minus = []
    for sign in (1, -1):
        w[1, 2] += sign * EPS
        plus_minus.append(loss_and_grads("gru", True, inputs, out_grads, grads=False)[0])
        w[1, 2] -= sign * EPS
    numeric = (plus_minus[0] - plus_minus[1]) / (2 * EPS)
    scale = max(1.0, float(np.abs(analytic["w_hh"]).max()))
    tol = ATOL * scale + RTOL * abs(numeric)
    assert abs(numeric - analytic["w_hh"][1, 2]) <= tol
    assert abs(numeric - (analytic["w_hh"][1, 2] + 1e-6)) > tol


def test_relu_problems_avoid_the_kink(rng):
    inputs = draw_problem("rnn_relu", 3, 2, 3, 4, rng)
    params = tuple(inputs[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh"))
    pre = relu_pre_activations(inputs["x"], inputs["h0"], params)
    assert np.abs(pre).min() > KINK_MARGIN
    # and the kernel agrees with the reference on which units are active
    y, _, _ = rnnkit.rnn_forward(inputs["x"], inputs["h0"], *params, nonlinearity="relu")
    np.testing.assert_array_equal(y > 0, pre > 0)
