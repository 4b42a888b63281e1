"""The bad-argument cases run in a child pytest process, so that a crash is reported as this
test's failure instead of ending the whole run:

* ``bad_arguments_cases.py``: every public kernel function given wrong ndims, shapes, dtypes,
  byte orders, strides, overlapping or read-only outputs, zero sizes, None, lists, object
  arrays, NaN/Inf options, caches from another call or cell...;
* ``bad_arguments_api_cases.py``: the Python APIs (``rnnkit.ngram`` and its ``nltk_compat``,
  ``rnnkit.text``, ``rnnkit.data``, ``rnnkit.lm``) given wrong types, None, bad arrays, zero,
  negative, NaN/Inf and bool sizes and options, unknown names, ids out of range, bad paths...

Every case must raise a clear TypeError/ValueError naming the argument (or, for the cases that
check propagation and aliasing, behave as documented)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent


@pytest.mark.parametrize(
    ("cases", "minimum"),
    [("bad_arguments_cases.py", 300), ("bad_arguments_api_cases.py", 300)],
)
def test_bad_argument_cases_in_a_child_process(cases: str, minimum: int) -> None:
    path = TESTS / cases
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=TESTS.parent,
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, (
        f"the child pytest ended with status {done.returncode} (a negative status is a "
        f"crash: signal {-done.returncode})\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    passed = int(re.search(r"(\d+) passed", summary).group(1))  # type: ignore[union-attr]
    assert passed >= minimum and "failed" not in summary, summary
