"""The exact sum behind nltk_compat's entropy (csrc/common/exact_sum.hpp) against math.fsum:
the same correctly rounded number for any values, in any number of merged parts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rnnkit import _core

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
# values at widely spread binary exponents with small mantissas: sums full of cancellation
# and exact half-way cases, which random floats rarely give
spread = st.builds(
    lambda mantissa, exponent: math.ldexp(mantissa, exponent),
    st.integers(-(2**20), 2**20),
    st.integers(-1074, 960),
)
values = st.lists(st.one_of(finite, spread), max_size=80).filter(
    lambda v: all(math.isfinite(x) for x in v)
)


def fsum_or_overflow(vals: list[float]) -> float | None:
    try:
        return math.fsum(vals)
    except OverflowError:
        return None


@settings(max_examples=400, deadline=None)
@given(values, st.integers(1, 6))
def test_equals_math_fsum(vals: list[float], parts: int) -> None:
    expected = fsum_or_overflow(vals)
    if expected is None:
        with pytest.raises(OverflowError, match="intermediate overflow"):
            _core._exact_sum(np.array(vals, dtype=np.float64), parts)
        return
    got = _core._exact_sum(np.array(vals, dtype=np.float64), parts)
    assert got == expected, (vals, parts, got, expected)


@pytest.mark.parametrize(
    "vals",
    [
        [1.0, 2.0**-53, 2.0**-106],  # just past half-way: rounds up
        [1.0, 2.0**-53, -(2.0**-106)],  # just short of it: stays
        [1.0, 2.0**-53],  # exactly half-way: to even
        [1.0 + 2.0**-52, 2.0**-53],  # exactly half-way from an odd last bit: to even (up)
        [1e100, 1.0, -1e100, 1e-100, 1e50, -1.0, -1e50],  # math.fsum's documented kind of case
        [0.1] * 10,
        [2.0**1023, -(2.0**1023), 2.0**-1074],
    ],
)
def test_known_hard_cases(vals: list[float]) -> None:
    for parts in (1, 2, 3):
        assert _core._exact_sum(np.array(vals), parts) == math.fsum(vals)


def test_special_values_and_zeros() -> None:
    assert _core._exact_sum(np.array([1.0, -math.inf, 2.0])) == -math.inf
    assert _core._exact_sum(np.array([math.inf, 1.0]), 2) == math.inf
    assert math.isnan(_core._exact_sum(np.array([1.0, math.nan])))
    assert math.isnan(_core._exact_sum(np.array([math.inf, -math.inf])))
    assert _core._exact_sum(np.array([], dtype=np.float64)) == 0.0
    assert _core._exact_sum(np.array([-0.0, 0.0, -0.0])) == 0.0


def test_arguments() -> None:
    with pytest.raises(TypeError, match="values must have dtype float64, got float32"):
        _core._exact_sum(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="parts must be at least 1, got 0"):
        _core._exact_sum(np.zeros(3), 0)
