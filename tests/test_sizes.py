"""Sizes beyond memory or beyond what an index can hold: a MemoryError or ValueError naming
the problem, never a crash or a wrong-size buffer."""

from __future__ import annotations

import numpy as np
import pytest
from rnnkit import _core, nn
from rnnkit.data import sequential_batches
from rnnkit.lm import Embedding, Linear, RNNLanguageModel
from rnnkit.ngram import NgramCounts


@pytest.mark.parametrize(
    "make",
    [
        lambda: Embedding(2**40, 2**10),
        lambda: Linear(2**35, 2**30),
        lambda: nn.LSTM(2**31, 2**31),
        lambda: nn.GRU(8, 2**40),
        lambda: RNNLanguageModel(2**40, 8, 8, 1),
    ],
)
def test_parameters_beyond_memory_raise_memory_error(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises((MemoryError, ValueError)):
        make()


def test_orders_and_counts_beyond_limits() -> None:
    with pytest.raises(ValueError, match="order must be in"):
        NgramCounts(10**9)
    with pytest.raises(ValueError, match="too few"):
        list(sequential_batches(np.arange(10), batch_size=2**62, seq_len=4))
    with pytest.raises(ValueError, match="n must be in"):
        _core._NgramCounts(3).add_ngrams(np.zeros(4, np.int32), 2**31 - 1, np.ones(1, np.uint64))


def test_gemm_dimensions_beyond_the_32_bit_blas() -> None:
    # A zero-stride view has 2^31 rows without the memory; _gemm wants C-contiguous input,
    # so it refuses it before any BLAS call sees the size.
    a = np.broadcast_to(np.float32(1), (2**31, 2))
    with pytest.raises(ValueError, match="C-contiguous"):
        _core._gemm(a, np.ones((2, 2), np.float32), np.zeros((4, 2), np.float32))
