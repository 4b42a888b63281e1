"""Hypothesis properties of the kernels (float64, every cell, random shapes and splits).

* Chunking: running ``x[:s]`` and then ``x[s:]`` from the carried state equals one call on
  ``x``, forward; backward through the chunks in reverse (the second chunk's ``dh0``/``dc0``
  fed in as the first chunk's ``dh_n``/``dc_n``, weight gradients summed) equals the
  whole-sequence backward. Split points include 0 and T (a T = 0 chunk).
* Batch permutation: permuting the batch of ``x``, ``h0``, ``c0`` and of the incoming
  gradients permutes ``y``, ``h_n``, ``c_n``, ``dx``, ``dh0``, ``dc0`` and leaves the
  weight and bias gradients equal up to rounding.

Problems are drawn with NumPy from a seed that hypothesis picks (so shrinking works on the
shape and the seed, and the tests stay fast); the comparisons are
``helpers.assert_close64``.
"""

from __future__ import annotations

import numpy as np
import rnnkit
from helpers import (
    CELLS,
    assert_close64,
    backward,
    forward,
    has_cell_state,
    make_inputs,
    make_output_grads,
    make_params,
)
from hypothesis import given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=60, deadline=None)

# Hidden sizes around the 64-unit block boundary as well as small ones.
hidden_sizes = st.one_of(st.integers(1, 9), st.sampled_from([63, 64, 65, 70, 130]))


@st.composite
def problems(draw, max_steps=8, max_batch=6):
    """(cell, T, B, I, H, bias, seed) of a random problem."""
    cell = draw(st.sampled_from(CELLS))
    T = draw(st.integers(0, max_steps))
    B = draw(st.integers(1, max_batch))
    I = draw(st.integers(1, 9))  # noqa: E741
    H = draw(hidden_sizes)
    bias = draw(st.sampled_from([True, False, "ih", "hh"]))
    seed = draw(st.integers(0, 2**32 - 1))
    return cell, T, B, I, H, bias, seed


def draw_arrays(cell, T, B, I, H, bias, seed):  # noqa: E741
    rng = np.random.default_rng(seed)
    params = make_params(cell, I, H, np.float64, rng, bias=bias)
    x, h0, c0 = make_inputs(cell, T, B, I, H, np.float64, rng)
    dy, dh_n, dc_n = make_output_grads(cell, T, B, H, np.float64, rng)
    return params, x, h0, c0, dy, dh_n, dc_n


@SETTINGS
@given(problem=problems(), split=st.floats(0, 1))
def test_two_chunks_with_carried_state_equal_one_call(problem, split):
    cell, T = problem[:2]
    params, x, h0, c0, dy, dh_n, dc_n = draw_arrays(*problem)
    s = round(split * T)
    lstm = has_cell_state(cell)

    whole, cache = forward(rnnkit, cell, x, h0, c0, params)
    first, cache1 = forward(rnnkit, cell, x[:s], h0, c0, params)
    second, cache2 = forward(rnnkit, cell, x[s:], first["h_n"], first.get("c_n"), params)
    assert_close64(np.concatenate([first["y"], second["y"]]), whole["y"], what="y")
    assert_close64(second["h_n"], whole["h_n"], what="h_n")
    if lstm:
        assert_close64(second["c_n"], whole["c_n"], what="c_n")

    g = backward(rnnkit, cell, dy, dh_n, dc_n, cache)
    g2 = backward(rnnkit, cell, dy[s:], dh_n, dc_n, cache2)
    g1 = backward(rnnkit, cell, dy[:s], g2["dh0"], g2.get("dc0"), cache1)
    assert_close64(np.concatenate([g1["dx"], g2["dx"]]), g["dx"], what="dx")
    assert_close64(g1["dh0"], g["dh0"], what="dh0")
    if lstm:
        assert_close64(g1["dc0"], g["dc0"], what="dc0")
    for name in ("dw_ih", "dw_hh", "db_ih", "db_hh"):
        if g[name] is None:
            assert g1[name] is None and g2[name] is None, name
        else:
            assert_close64(g1[name] + g2[name], g[name], what=name)


@SETTINGS
@given(problem=problems(max_batch=9), data=st.data())
def test_permuting_the_batch_permutes_the_results(problem, data):
    cell, B = problem[0], problem[2]
    params, x, h0, c0, dy, dh_n, dc_n = draw_arrays(*problem)
    perm = np.array(data.draw(st.permutations(range(B)), label="perm"), dtype=np.intp)
    lstm = has_cell_state(cell)

    out, cache = forward(rnnkit, cell, x, h0, c0, params)
    c0_p = c0[perm] if lstm else None
    out_p, cache_p = forward(rnnkit, cell, x[:, perm], h0[perm], c0_p, params)
    assert_close64(out_p["y"], out["y"][:, perm], what="y")
    assert_close64(out_p["h_n"], out["h_n"][perm], what="h_n")
    if lstm:
        assert_close64(out_p["c_n"], out["c_n"][perm], what="c_n")

    g = backward(rnnkit, cell, dy, dh_n, dc_n, cache)
    dc_n_p = dc_n[perm] if lstm else None
    g_p = backward(rnnkit, cell, dy[:, perm], dh_n[perm], dc_n_p, cache_p)
    assert_close64(g_p["dx"], g["dx"][:, perm], what="dx")
    assert_close64(g_p["dh0"], g["dh0"][perm], what="dh0")
    if lstm:
        assert_close64(g_p["dc0"], g["dc0"][perm], what="dc0")
    for name in ("dw_ih", "dw_hh", "db_ih", "db_hh"):
        assert_close64(g_p[name], g[name], what=name)
