"""The kenlm module, for the tests that compare with it (imported by those test files only,
so that the rest of the suite runs without it, as scripts/sanitize.sh does)."""

from __future__ import annotations

import sys

import pytest

try:
    import kenlm
except ImportError:  # the pinned kenlm 0.3.0 does not build on Python >= 3.13 (test extra)
    if sys.version_info < (3, 13):
        raise
    kenlm = None

# Skipped where the test extra has no kenlm.
needs_kenlm = pytest.mark.skipif(
    kenlm is None, reason="no kenlm: 0.3.0 fails to build on Python >= 3.13"
)
