"""Fixtures shared by the test suite.

``tests/`` has no ``__init__.py``; this file puts it on ``sys.path`` so that every test
module (and the ones in subdirectories) can ``from helpers import ...`` whatever pytest's
import mode.
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rnnkit

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A NumPy generator seeded from the test's node id: different for every test (and every
    parametrisation), the same from run to run, so a failure reproduces.

    Set ``RNNKIT_TEST_SEED`` to an integer to draw a different set of problems everywhere
    (it is mixed into every test's seed).
    """
    base = int(os.environ.get("RNNKIT_TEST_SEED", "0"))
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng([seed, base])


@pytest.fixture
def restore_threads() -> Iterator[int]:
    """Restores rnnkit's thread count after the test; yields the count it found."""
    saved = rnnkit.get_num_threads()
    try:
        yield saved
    finally:
        rnnkit.set_num_threads(saved)
