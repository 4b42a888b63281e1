"""The exact sum behind nltk_compat's entropy (csrc/common/exact_sum.hpp) against math.fsum:
the same correctly rounded number for any values, in any number of merged parts."""

from __future__ import annotations

import math
import sys
from fractions import Fraction

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


def exact_sum_or_overflow(vals: list[float], parts: int) -> float | None:
    try:
        return float(_core._exact_sum(np.array(vals, dtype=np.float64), parts))
    except OverflowError as e:
        assert "intermediate overflow" in str(e)
        return None


@settings(max_examples=400, deadline=None)
@given(values, st.integers(1, 6))
def test_equals_math_fsum(vals: list[float], parts: int) -> None:
    """The same number as math.fsum, and the same OverflowError where a partial sum overflows.
    Which partial sums overflow depends on the order of the additions (math.fsum's is the
    list's, ours that of the merged parts), so the two may differ there, and only there: where
    the positive or the negative values add up past the largest float."""
    expected = fsum_or_overflow(vals)
    got = exact_sum_or_overflow(vals, parts)
    if (expected is None) != (got is None):
        positives = sum(Fraction(v) for v in vals if v > 0)
        negatives = sum(Fraction(-v) for v in vals if v < 0)
        assert max(positives, negatives) > Fraction(sys.float_info.max), (vals, parts, got)
        return
    assert got == expected, (vals, parts, got, expected)


def test_overflow_depends_only_on_the_order_near_the_top_of_the_range() -> None:
    """Hypothesis's find: math.fsum overflows on the first order and not on the second."""
    top = [-8.988465674311579e307, -8.98846567431158e307]
    assert fsum_or_overflow([*top, 4.9896007738368e291]) is None
    assert fsum_or_overflow([4.9896007738368e291, *top]) is not None
    for order in ([*top, 4.9896007738368e291], [4.9896007738368e291, *top]):
        for parts in (1, 2, 3):
            got = exact_sum_or_overflow(order, parts)
            assert got is None or got == math.fsum([4.9896007738368e291, *top])


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
