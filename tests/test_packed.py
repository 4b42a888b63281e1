"""Packed inputs (``batch_sizes``, PyTorch's PackedSequence layout) of the sequence kernels.

A packed call must give the numbers of the same batch padded to ``[T, B, *]`` with
``lengths``, bit for bit (the kernels run the same packed rows either way), and so match the
reference: for every variant, both directions, both dtypes and the batch shapes of
test_kernel_variants that exercise the engine's paths (fused steps, backward chunks, one
row, past the micro-kernel's panels). Then the edge cases and the bad arguments.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import rnnkit
from test_kernel_variants import (
    BATCHES,
    VARIANTS,
    _variant_id,
    assert_matches_reference,
    cast,
    make_problem,
    run,
)


def packing(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For lengths [B] sorted longest first, all > 0: PackedSequence's ``batch_sizes`` [T]
    and the row of each packed entry in the padded ``[T*B]`` layout."""
    T = int(lengths.max(initial=0))
    mask = np.arange(T)[:, None] < lengths[None, :]
    return mask.sum(axis=1), np.flatnonzero(mask)


def sorted_problem(
    variant: tuple[str, dict[str, Any]],
    batch: tuple[tuple[int, int, int, int, int], np.ndarray, float],
    rng: np.random.Generator,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], np.ndarray]:
    """A problem of the batch's shape with its sequences of length > 0 sorted longest first
    (the order of a PackedSequence's data) and the padded tail dropped: (inputs, opts,
    grads, lengths)."""
    cell, options = variant
    shape, batch_lengths, scale = batch
    inputs, opts, grads = make_problem(cell, options, rng, shape, scale)
    order = np.argsort(-batch_lengths, kind="stable")
    order = order[batch_lengths[order] > 0]
    lengths = batch_lengths[order]
    T = int(lengths.max(initial=0))
    for d in (inputs, grads):
        for k, v in d.items():
            if k in ("x", "dy"):
                d[k] = np.ascontiguousarray(v[:T, order])
            elif k in ("h0", "c0", "dh_n", "dc_n"):
                d[k] = np.ascontiguousarray(v[order])
    return inputs, opts, grads, lengths


def pack(padded: dict[str, Any], index: np.ndarray) -> dict[str, Any]:
    """The [T, B, *] entries (x, y, dy, dx) as packed [N, *] rows; the others as they are."""
    return {
        k: v.reshape(-1, v.shape[-1])[index] if k in ("x", "y", "dy", "dx") else v
        for k, v in padded.items()
    }


def unpack(packed: dict[str, Any], index: np.ndarray, T: int, B: int) -> dict[str, Any]:
    """The inverse of :func:`pack`: packed rows back to zero-padded [T, B, *]."""
    out = dict(packed)
    for k in ("x", "y", "dy", "dx"):
        if k in packed and packed[k] is not None:
            v = packed[k]
            padded = np.zeros((T * B, v.shape[-1]), v.dtype)
            padded[index] = v
            out[k] = padded.reshape(T, B, v.shape[-1])
    return out


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("batch", BATCHES)
def test_packed_equals_padded_and_matches_reference(
    variant: tuple[str, dict[str, Any]],
    reverse: bool,
    dtype: type,
    batch: tuple[tuple[int, int, int, int, int], np.ndarray, float],
    rng: np.random.Generator,
) -> None:
    cell = variant[0]
    inputs, opts, grads, lengths = sorted_problem(variant, batch, rng)
    if dtype == np.float32:
        inputs, opts, grads = (cast(d, np.float32) for d in (inputs, opts, grads))
    batch_sizes, index = packing(lengths)
    T, B = len(batch_sizes), len(lengths)

    padded = run(rnnkit, cell, inputs, {**opts, "lengths": lengths, "reverse": reverse}, grads)
    packed_opts = {**opts, "batch_sizes": batch_sizes, "reverse": reverse}
    packed = run(rnnkit, cell, pack(inputs, index), packed_opts, pack(grads, index))
    assert packed["y"].shape == (index.size, padded["y"].shape[-1])
    assert packed["dx"].shape == (index.size, inputs["x"].shape[-1])
    expected = pack(padded, index)
    assert packed.keys() == expected.keys()
    for name, value in packed.items():
        if value is None:
            assert expected[name] is None, name
        else:
            np.testing.assert_array_equal(value, expected[name], err_msg=name)

    # And directly against the reference (which takes the padded batch with lengths).
    ref_opts = {**opts, "lengths": lengths, "reverse": reverse}
    assert_matches_reference(cell, inputs, ref_opts, grads, unpack(packed, index, T, B), dtype)
    # Inference gives the training outputs, bit for bit.
    inference = run(rnnkit, cell, pack(inputs, index), packed_opts, grads, training=False)
    for name, value in inference.items():
        np.testing.assert_array_equal(value, packed[name], err_msg=f"{name}, inference")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_packed_edge_cases(cell: str, rng: np.random.Generator) -> None:
    """No steps at all (empty batch_sizes), one sequence, and equal lengths (packed rows then
    coincide with the padded [T, B] rows)."""
    inputs, _, _ = make_problem(cell, {}, rng)
    fn = getattr(rnnkit, f"{cell}_forward")
    states = [inputs["h0"]] + ([inputs["c0"]] if cell == "lstm" else [])
    weights = [inputs[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
    T, B, I = inputs["x"].shape  # noqa: E741

    empty = fn(
        inputs["x"][:0, 0], *[s[:0] for s in states], *weights, batch_sizes=np.zeros(0, np.int64)
    )
    assert empty.y.shape == (0, inputs["h0"].shape[1]) and empty.h_n.shape[0] == 0
    # an empty list (which NumPy makes float64) is taken as empty, as lengths=[] for B = 0
    from_list = fn(inputs["x"][:0, 0], *[s[:0] for s in states], *weights, batch_sizes=[])
    assert from_list.y.shape == empty.y.shape

    one = fn(inputs["x"][:, 0], *[s[:1] for s in states], *weights, batch_sizes=[1] * T)
    alone = fn(inputs["x"][:, :1], *[s[:1] for s in states], *weights)
    np.testing.assert_array_equal(one.y, alone.y[:, 0])
    np.testing.assert_array_equal(one.h_n, alone.h_n)

    full = fn(inputs["x"].reshape(T * B, I), *states, *weights, batch_sizes=np.full(T, B))
    whole = fn(inputs["x"], *states, *weights)
    np.testing.assert_array_equal(full.y, whole.y.reshape(T * B, -1))
    for packed_value, value in zip(full[1:-1], whole[1:-1], strict=True):
        np.testing.assert_array_equal(packed_value, value)


def _lstm_packed_args(rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    inputs, _, _ = make_problem("lstm", {}, rng)
    batch_sizes = np.array([5, 4, 2, 2, 1, 1])  # N = 15, B = 5
    x = inputs["x"].reshape(-1, inputs["x"].shape[-1])[:15]
    args = [x] + [inputs[k] for k in ("h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")]
    return args, batch_sizes


BAD_BATCH_SIZES = [
    (
        {"lengths": np.array([1, 2, 3, 4, 5])},
        ValueError,
        "pass lengths (padded x [T, B, I]) or batch_sizes (packed x [N, I]), not both",
    ),
    (
        {"batch_sizes": np.array([5, 4, 2, 2, 1])},
        ValueError,
        "batch_sizes must sum to x.shape[0] = 15 (the packed rows), got a sum of 14",
    ),
    (
        {"batch_sizes": np.array([4, 5, 2, 2, 1, 1])},
        ValueError,
        "batch_sizes must be non-increasing (a PackedSequence's order: longest sequence "
        "first), got batch_sizes[1] = 5 after batch_sizes[0] = 4",
    ),
    (
        {"batch_sizes": np.array([5, 4, 2, 2, -1, 3])},
        ValueError,
        "batch_sizes[4] = -1 is out of range [0, N] = [0, 15] (N = x.shape[0], the packed rows)",
    ),
    (
        {"batch_sizes": np.array([2**63 + 1], np.uint64)},
        ValueError,
        f"batch_sizes[0] = {2**63 + 1} is out of range [0, N] = [0, 15] (N = x.shape[0], the "
        "packed rows)",
    ),
    (
        {"batch_sizes": np.array([5.0, 4, 2, 2, 1, 1])},
        TypeError,
        "batch_sizes must have an integer dtype, got float64",
    ),
    (
        {"batch_sizes": np.ones(15, bool)},
        TypeError,
        "batch_sizes must have an integer dtype, got bool",
    ),
    (
        {"batch_sizes": np.ones((3, 5), np.int64)},
        ValueError,
        "batch_sizes must have shape (T,), got (3, 5)",
    ),
    ({"batch_sizes": "5"}, TypeError, "batch_sizes must have an integer dtype, got <U1"),
    (
        {"batch_sizes": np.array([5, 4, 2, 2, 1, 1]), "x3d": True},
        ValueError,
        "x must be 2-dimensional (N, I), got shape (15, 1, 7)",
    ),
]


@pytest.mark.parametrize(("change", "error", "message"), BAD_BATCH_SIZES, ids=lambda v: str(v)[:40])
def test_bad_batch_sizes(
    change: dict[str, Any], error: type, message: str, rng: np.random.Generator
) -> None:
    args, batch_sizes = _lstm_packed_args(rng)
    change = dict(change)
    if change.pop("x3d", False):
        args[0] = args[0][:, None, :]
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        rnnkit.lstm_forward(*args, **{"batch_sizes": batch_sizes, **change})


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_packed_backward_checks_dy(cell: str, rng: np.random.Generator) -> None:
    inputs, _, _ = make_problem(cell, {}, rng)
    x = inputs["x"].reshape(-1, inputs["x"].shape[-1])[:15]
    states = [inputs["h0"]] + ([inputs["c0"]] if cell == "lstm" else [])
    weights = [inputs[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
    out = getattr(rnnkit, f"{cell}_forward")(
        x, *states, *weights, batch_sizes=np.array([5, 4, 2, 2, 1, 1])
    )
    H = inputs["h0"].shape[1]
    backward = getattr(rnnkit, f"{cell}_backward")
    finals = [None] * (2 if cell == "lstm" else 1)
    with pytest.raises(
        ValueError, match=re.escape(f"dy must be 2-dimensional (N, H), got shape (6, 5, {H})")
    ):
        backward(np.ones((6, 5, H)), *finals, out.cache)
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"dy must have shape (N, H) = (15, {H}) (N from {cell}_forward's x, H from its "
            f"w_ih), got (14, {H})"
        ),
    ):
        backward(np.ones((14, H)), *finals, out.cache)
    # B comes from the forward call's batch_sizes[0], and the message says so
    message = (
        f"dh_n must have shape (B, H) = (5, {H}) (B from {cell}_forward's batch_sizes[0], H "
        f"from its w_ih), got (4, {H})"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        backward(None, np.ones((4, H)), *finals[1:], out.cache)
    grads = backward(np.ones((15, H)), *finals, out.cache)
    assert grads.dx.shape == x.shape
