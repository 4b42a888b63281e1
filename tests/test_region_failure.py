"""A thread that throws inside a parallel region must not leave the others waiting for it at a
barrier: they stop waiting, and its exception comes out of the call. Each case runs in a
subprocess with a timeout, so that a hang fails the test instead of stopping the run."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import sys
from rnnkit import _core
threads, failing = int(sys.argv[1]), int(sys.argv[2])
try:
    _core._failing_region(threads, failing)
except RuntimeError as error:
    print(error)
else:
    print("no error")
_core._failing_region(threads, -1)  # the region still works afterwards
print("again")
"""


@pytest.mark.parametrize(("threads", "failing"), [(2, 0), (2, 1), (3, 2), (4, 1)])
def test_a_failing_thread_never_leaves_the_others_waiting(threads: int, failing: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(threads), str(failing)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == [f"thread {failing} failed", "again"]


def test_one_thread_raises_too() -> None:
    from rnnkit import _core

    with pytest.raises(RuntimeError, match="thread 0 failed"):
        _core._failing_region(1, 0)
    with pytest.raises(ValueError, match=r"threads must be in \[1, 1024\], got 0"):
        _core._failing_region(0, 0)
