"""Two independent kernel calls at once, each on part of the threads.

The two directions of a bidirectional layer do not depend on each other. Run one after the
other, each splits every time step between the threads, which meet at a barrier per step;
run side by side, each direction takes its share of the threads (one each on two cores) and
its steps need no barrier at all. The kernels release the GIL, so a helper thread gives real
parallelism. Results are bit-identical either way: no kernel's arithmetic depends on its
thread count.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from . import _core

R = TypeVar("R")

_helper: ThreadPoolExecutor | None = None


def _forget_helper() -> None:
    # A forked child has none of the parent's threads: it starts its own helper when needed.
    global _helper
    _helper = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helper)


def _limited(fn: Callable[[], R], threads: int) -> R:
    _core._set_thread_limit(threads)
    try:
        return fn()
    finally:
        _core._set_thread_limit(0)


def side_by_side(first: Callable[[], R], second: Callable[[], R]) -> tuple[R, R]:
    """``(first(), second())``, run concurrently when rnnkit has two threads or more
    (``first`` in a helper thread with half of them, ``second`` in this one with the rest);
    an exception from either is raised once both have finished."""
    global _helper
    threads = _core.get_num_threads()
    if threads < 2:
        return first(), second()
    if _helper is None:
        _helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnkit-side-by-side")
    future = _helper.submit(_limited, first, threads // 2)
    try:
        second_result = _limited(second, threads - threads // 2)
    except BaseException:
        future.exception()  # wait for it; this error is the one raised
        raise
    return future.result(), second_result
