"""The pool of large blocks behind rnnkit's arrays (common/pool.hpp): freed blocks wait for
reuse, are bounded, can be released, and never hand out memory that is still in use."""

from __future__ import annotations

import gc

import numpy as np
import rnnkit


def _lstm(T: int = 50, B: int = 16, H: int = 64, seed: int = 0) -> rnnkit.LSTMOutput:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (T, B, H)).astype(np.float32)
    w = rng.uniform(-0.1, 0.1, (4 * H, H)).astype(np.float32)
    return rnnkit.lstm_forward(x, None, None, w, w)


def test_freed_blocks_wait_and_release_memory_frees_them() -> None:
    rnnkit.release_memory()
    assert rnnkit.pooled_bytes() == 0
    out = _lstm()
    assert out.y.base is not None and not out.y.flags.owndata and out.y.flags.writeable
    del out
    gc.collect()
    waiting = rnnkit.pooled_bytes()
    assert waiting >= 256 * 1024  # the cache's gate buffer at least
    out = _lstm()  # reuses them
    assert rnnkit.pooled_bytes() < waiting
    del out
    gc.collect()
    rnnkit.release_memory()
    assert rnnkit.pooled_bytes() == 0


def test_reused_blocks_do_not_alias_live_arrays() -> None:
    """Arrays alive at the same time never share memory, and results do not depend on
    whether the memory was reused."""
    first = _lstm(seed=1)
    expected = first.y.copy()
    del first
    gc.collect()
    outs = [_lstm(seed=s) for s in (1, 2, 3)]
    np.testing.assert_array_equal(outs[0].y, expected)
    for i, a in enumerate(outs):
        for b in outs[i + 1 :]:
            assert not np.shares_memory(a.y, b.y)
            assert not np.shares_memory(a.h_n, b.h_n)
    g = [rnnkit.lstm_backward(np.ones_like(o.y), None, None, o.cache) for o in outs]
    assert not np.shares_memory(g[0].dw_ih, g[1].dw_ih)
    np.testing.assert_array_equal(outs[0].y, expected)  # untouched by later calls


def test_a_smaller_request_takes_the_best_fitting_idle_block() -> None:
    """A request is served by the smallest idle block that fits when it is under 4x the
    request (its pages are mapped already); a block 4x larger or more stays idle."""
    from rnnkit import _core

    rnnkit.release_memory()
    mib = 1 << 18  # float32 elements in 1 MiB
    blocks = [_core._pooled_empty(n, mib, 1, False) for n in (3, 8)]
    del blocks
    gc.collect()
    assert rnnkit.pooled_bytes() == 11 << 20
    two = _core._pooled_empty(2, mib, 1, False)  # takes the 3 MiB block, not the 8 MiB one
    assert rnnkit.pooled_bytes() == 8 << 20
    one = _core._pooled_empty(1, mib, 1, False)  # 8 MiB is 8x too large: a new block
    assert rnnkit.pooled_bytes() == 8 << 20
    two[:] = 1.0
    one[:] = 2.0
    assert not np.shares_memory(one, two)
    del one, two
    gc.collect()
    # Each block goes back under its own capacity, whatever size it was handed out for.
    assert rnnkit.pooled_bytes() == (8 + 3 + 1) << 20
    rnnkit.release_memory()
    assert rnnkit.pooled_bytes() == 0
