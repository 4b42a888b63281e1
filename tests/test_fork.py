"""rnnkit in a child process forked after the parent ran kernels on OpenMP threads: GNU
OpenMP's first parallel region in such a child waits forever for threads that the fork did
not copy. rnnkit detects the fork and runs the child's kernels on one thread. Each case runs
in a subprocess with a timeout, so that a hang fails the test instead of stopping the run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import multiprocessing as mp, sys
    import numpy as np, rnnkit

    def work(_):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((40, 64, 128), dtype=np.float32)
        w = (rng.standard_normal((512, 128)) * 0.05).astype(np.float32)
        out = rnnkit.lstm_forward(x, None, None, w, w, training=True)
        g = rnnkit.lstm_backward(out.y, None, None, out.cache)
        return out.y.tobytes() + g.dw_hh.tobytes(), rnnkit.get_num_threads()

    if __name__ == "__main__":
        rnnkit.set_num_threads(2)
        used_first = sys.argv[1] == "used"
        if used_first:
            expected, _ = work(0)
        with mp.get_context("fork").Pool(2) as pool:
            results = pool.map_async(work, [1, 2]).get(timeout=40)
        if not used_first:
            expected, _ = work(0)
        assert all(r == expected for r, _ in results), "the children's results differ"
        print(" ".join(str(n) for _, n in results))
    """
)


@pytest.mark.parametrize(("parent", "child_threads"), [("used", "1 1"), ("unused", "2 2")])
def test_forked_children_never_hang_and_agree(parent: str, child_threads: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, parent],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # after the parent ran threads, a child runs on one (bit-identical results either way)
    assert done.stdout.split() == child_threads.split()
