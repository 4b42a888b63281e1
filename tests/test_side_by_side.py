"""The two directions of a bidirectional layer run side by side (rnnkit._side_by_side), each
on part of the threads: results must not change with it, errors must surface, and the
per-thread limit it uses must stay with the thread that set it."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import rnnkit
from rnnkit import _core, nn
from rnnkit._side_by_side import side_by_side


def _train_step(m: nn.RNNBase, x: np.ndarray, dy: np.ndarray, lengths: np.ndarray) -> dict:
    m.zero_grad()
    y, state = m.forward(x, None, lengths)
    dx = m.backward(dy)
    h = state[0] if isinstance(state, tuple) else state
    return {"y": y, "h_n": h, "dx": dx, **{k: v.copy() for k, v in m.grads.items()}}


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("threads", [2, 3, 4])
def test_bidirectional_results_do_not_depend_on_threads(
    cell: str, threads: int, restore_threads: int, rng: np.random.Generator
) -> None:
    """Serial directions (1 thread) and side-by-side ones (2, 3, 4 threads: 1+1, 1+2, 2+2)
    give bit-identical outputs and gradients; B = 40 takes the LSTM's fused steps."""
    cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
    m = cls(6, 70, num_layers=2, bidirectional=True, dtype=np.float32, seed=3)
    m.train()
    T, B = 7, 40
    x = rng.standard_normal((T, B, 6)).astype(np.float32)
    dy = rng.standard_normal((T, B, 140)).astype(np.float32)
    lengths = rng.integers(0, T + 1, B)
    rnnkit.set_num_threads(1)
    serial = _train_step(m, x, dy, lengths)
    rnnkit.set_num_threads(threads)
    for _ in range(3):
        concurrent = _train_step(m, x, dy, lengths)
        assert concurrent.keys() == serial.keys()
        for name, value in serial.items():
            np.testing.assert_array_equal(concurrent[name], value, err_msg=name)


def test_side_by_side_returns_both_results_in_order(restore_threads: int) -> None:
    rnnkit.set_num_threads(2)
    seen: list[str] = []

    def first() -> str:
        seen.append(threading.current_thread().name)
        return "first"

    def second() -> str:
        return "second"

    assert side_by_side(first, second) == ("first", "second")
    assert seen and seen[0].startswith("rnnkit-side-by-side")
    rnnkit.set_num_threads(1)
    seen.clear()
    assert side_by_side(first, second) == ("first", "second")
    assert seen == [threading.current_thread().name]  # one thread: both run here


@pytest.mark.parametrize("failing", ["first", "second", "both"])
def test_side_by_side_raises_after_both_finish(failing: str, restore_threads: int) -> None:
    """An error from either call is raised, and only once the other one has finished (no
    kernel is left running on arrays the caller may free)."""
    rnnkit.set_num_threads(2)
    first_done = threading.Event()

    def first() -> None:
        first_done.wait(0.05)  # finishes after `second` has raised
        first_done.set()
        if failing in ("first", "both"):
            raise KeyError("first")

    def second() -> None:
        if failing in ("second", "both"):
            raise ValueError("second")

    expected = KeyError if failing == "first" else ValueError
    with pytest.raises(expected):
        side_by_side(first, second)
    assert first_done.is_set()


def test_thread_limit_is_per_thread(restore_threads: int) -> None:
    rnnkit.set_num_threads(4)
    _core._set_thread_limit(1)
    try:
        assert rnnkit.get_num_threads() == 1
        other: list[int] = []
        t = threading.Thread(target=lambda: other.append(rnnkit.get_num_threads()))
        t.start()
        t.join()
        assert other == [4]
        _core._set_thread_limit(8)  # a limit above the global count changes nothing
        assert rnnkit.get_num_threads() == 4
    finally:
        _core._set_thread_limit(0)
    assert rnnkit.get_num_threads() == 4
    with pytest.raises(ValueError, match=r"n must be an integer in \[0, 1024\], got -1"):
        _core._set_thread_limit(-1)


def test_limit_is_cleared_after_side_by_side(restore_threads: int) -> None:
    rnnkit.set_num_threads(3)
    inside = side_by_side(rnnkit.get_num_threads, rnnkit.get_num_threads)
    assert inside == (1, 2)
    assert rnnkit.get_num_threads() == 3
