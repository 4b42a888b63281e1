"""The CUDA backend on a GPU: parity with the reference and the CPU kernels, with torch's
cuDNN RNNs, determinism, streams and the torch adapter.

These tests need a build with ``RNNKIT_CUDA=ON`` and a visible CUDA device; elsewhere they are
skipped (the same loops run on the host executor in test_cuda_host.py, and
test_cuda_build.py compiles the CUDA build). The comparisons with cuDNN and the adapter need a
CUDA build of torch; the CuPy test needs CuPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import rnnkit
from device_helpers import check_cell_variant, device_lib
from helpers import assert_close64, torch_cell_step
from rnnkit import cuda as rcuda
from rnnkit import reference
from test_kernel_variants import (
    BATCHES,
    SCHEDULES,
    VARIANTS,
    WIDE_LENGTHS,
    WIDE_SHAPE,
    _variant_id,
    cast,
    check_variant,
    make_problem,
    run,
)

pytestmark = pytest.mark.skipif(
    not rnnkit.cuda_available(),
    reason="needs rnnkit built with RNNKIT_CUDA=ON and a CUDA device",
)

GPU = device_lib(rcuda.to_device, rcuda.to_host)
# One variant of each cell that the persistent kernels run.
PERSISTENT_VARIANTS = [
    ("lstm", {"peepholes": True, "clip": 0.6}),
    ("gru", {}),
    ("rnn", {"nonlinearity": "relu"}),
]


def _torch_cuda() -> Any:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch was built without CUDA (or sees no device)")
    return torch


@pytest.mark.parametrize(("lengths", "reverse"), SCHEDULES)
@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("batch", BATCHES)
def test_gpu_matches_reference(
    variant: tuple[str, dict[str, Any]],
    lengths: np.ndarray | None,
    reverse: bool,
    dtype: type,
    batch: tuple[tuple[int, int, int, int, int], np.ndarray, float],
    rng: np.random.Generator,
) -> None:
    check_variant(GPU, variant, lengths, reverse, dtype, batch, rng, padding=False)


@pytest.mark.parametrize("variant", PERSISTENT_VARIANTS, ids=_variant_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_persistent_kernel_in_batch_chunks(
    variant: tuple[str, dict[str, Any]], dtype: type, rng: np.random.Generator
) -> None:
    """The persistent kernel reads h_t in chunks of 8 rows: a batch of 37 takes four full
    chunks and one of 5, with the kernel's batch limit at 64 whatever the default is."""
    saved = rcuda.persistent_max_batch()
    rcuda.set_persistent_max_batch(64)
    try:
        check_variant(GPU, variant, WIDE_LENGTHS, True, dtype, (WIDE_SHAPE, WIDE_LENGTHS, 0.4), rng)
    finally:
        rcuda.set_persistent_max_batch(saved)


@pytest.mark.parametrize(
    "layout",
    [(1, 0), (2, 0), (4, 0), (4, 9), (2, 5), (1, 16), (4, 70)],
    ids=lambda layout: f"rows{layout[0]}-units{layout[1]}",
)
@pytest.mark.parametrize("variant", PERSISTENT_VARIANTS, ids=_variant_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_persistent_kernel_layouts(
    layout: tuple[int, int],
    variant: tuple[str, dict[str, Any]],
    dtype: type,
    rng: np.random.Generator,
) -> None:
    """Every tile of rows of w_hh per warp, on blocks of several units: with 9 units per block
    (H = 70) each gate has two tiles of 4 rows and a short one of 1, and the last block 7
    units; 70 units is one block (its barrier a __syncthreads). The batch of 37 takes every
    chunk size of h."""
    saved_batch, saved_layout = rcuda.persistent_max_batch(), rcuda.persistent_layout()
    rcuda.set_persistent_max_batch(64)
    rcuda.set_persistent_layout(*layout)
    try:
        assert rcuda.persistent_layout() == layout
        check_variant(GPU, variant, WIDE_LENGTHS, True, dtype, (WIDE_SHAPE, WIDE_LENGTHS, 0.4), rng)
    finally:
        rcuda.set_persistent_max_batch(saved_batch)
        rcuda.set_persistent_layout(*saved_layout)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_persistent_backward_in_chunks_of_the_batch(dtype: type, rng: np.random.Generator) -> None:
    """LSTM, B=62, H=256: the gate gradients of a step (62 x 1024) do not fit in a block's shared
    memory beside its columns of w_hh, so the persistent backward takes them 31 (float32) or 16
    (float64) rows of the batch at a time (B * 4H stays under its limit of 2**16)."""
    lengths = rng.integers(0, 7, 62)
    check_variant(GPU, ("lstm", {}), lengths, True, dtype, ((6, 62, 16, 256, 9), lengths, 0.3), rng)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_gpu_is_deterministic(cell: str, rng: np.random.Generator) -> None:
    """Same inputs, same bits: no atomics in any reduction (cuDNN's RNN backward has them)."""
    lengths = rng.integers(1, 51, 64)
    inputs, opts, grads = make_problem(cell, {}, rng, (50, 64, 128, 256, 256), 0.1)
    inputs, grads = cast(inputs, np.float32), cast(grads, np.float32)
    opts.update(lengths=lengths)
    first = run(GPU, cell, inputs, opts, grads)
    for _ in range(3):
        again = run(GPU, cell, inputs, opts, grads)
        for name, value in again.items():
            np.testing.assert_array_equal(value, first[name], err_msg=name)


def test_tf32_is_off_by_default_and_can_be_turned_on(rng: np.random.Generator) -> None:
    assert not rcuda.allow_tf32()
    inputs, opts, grads = make_problem("lstm", {}, rng, (20, 32, 256, 256, 256), 0.1)
    inputs, grads = cast(inputs, np.float32), cast(grads, np.float32)
    ref64 = run(reference, "lstm", *(cast(d, np.float64) for d in (inputs, opts, grads)))
    try:
        rcuda.set_allow_tf32(True)
        assert rcuda.allow_tf32()
        tf32 = run(GPU, "lstm", inputs, opts, grads)
    finally:
        rcuda.set_allow_tf32(False)
    # TF32 keeps 10 mantissa bits: close to the truth, not to float32 accuracy.
    np.testing.assert_allclose(tf32["y"], ref64["y"], atol=2e-2)


# ------------------------------------------------------------------------------- torch
def _torch_pair(torch: Any, mode: str, dtype: Any, **kwargs: Any) -> tuple[Any, Any]:
    import rnnkit.torch as rt

    cls = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "RNN": torch.nn.RNN}[mode]
    torch.manual_seed(0)
    peer = cls(**kwargs).to(device="cuda", dtype=dtype)
    ours = rt.from_torch(cls(**kwargs)).to(device="cuda", dtype=dtype)
    ours.load_state_dict(peer.state_dict())
    return ours, peer


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_layers": 1},
        {"num_layers": 2, "bidirectional": True},
        {"num_layers": 2, "batch_first": True},
    ],
    ids=["1-layer", "2-layer-bidirectional", "batch-first"],
)
def test_parity_with_cudnn(mode: str, dtype_name: str, kwargs: dict[str, Any]) -> None:
    """rnnkit.torch modules on CUDA tensors against torch.nn (cuDNN) on the same weights:
    outputs, final states and every gradient."""
    torch = _torch_cuda()
    dtype = getattr(torch, dtype_name)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    ours, peer = _torch_pair(torch, mode, dtype, input_size=48, hidden_size=64, **kwargs)
    shape = (8, 30, 48) if kwargs.get("batch_first") else (30, 8, 48)
    x = torch.randn(*shape, device="cuda", dtype=dtype)
    outputs = []
    for module in (ours, peer):
        xi = x.clone().requires_grad_(True)
        y, state = module(xi)
        h = state[0] if mode == "LSTM" else state
        (y.square().sum() + h.sum()).backward()
        grads = [xi.grad] + [p.grad for p in module.parameters()]
        outputs.append([y, h, *grads])
        assert y.is_cuda
    for a, b in zip(*outputs, strict=True):
        if dtype_name == "float64":
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
        else:
            # Relative to the tensor's scale: the weight gradients sum T*B = 240 rows in
            # float32, cuDNN in its own order, so entries near zero differ by more than any
            # element-wise rtol (seen on an H200: 2e-6 to 3e-6 of the scale).
            torch.testing.assert_close(a, b, rtol=0, atol=2e-5 * float(b.detach().abs().max()))


def test_packed_sequences_on_cuda() -> None:
    torch = _torch_cuda()
    from torch.nn.utils.rnn import pack_padded_sequence

    ours, peer = _torch_pair(torch, "GRU", torch.float64, input_size=16, hidden_size=24)
    x = torch.randn(12, 5, 16, device="cuda", dtype=torch.float64)
    lengths = torch.tensor([12, 3, 7, 1, 12])
    results = []
    for module in (ours, peer):
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        y, h = module(packed)
        results.append((y.data, h))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["batched", "unbatched", "no_hx"])
@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell", "RNNCell_tanh", "RNNCell_relu"])
def test_torch_cells_on_cuda_match_torch(name: str, mode: str, dtype_name: str) -> None:
    """rnnkit.torch's cells on CUDA tensors (one step of the CUDA sequence loops) against
    torch.nn's cells on the same parameters: outputs, and the gradients of the input, the
    states and every parameter; the results stay on the GPU."""
    torch = _torch_cuda()
    import rnnkit.torch as rt

    dtype = getattr(torch, dtype_name)
    torch.backends.cuda.matmul.allow_tf32 = False
    cls, _, act = name.partition("_")
    kwargs = {"nonlinearity": act} if act else {}
    torch.manual_seed(len(name) + len(mode))
    peer = getattr(torch.nn, cls)(24, 40, **kwargs).to(device="cuda", dtype=dtype)
    ours = rt.from_torch(peer)  # shares peer's parameters
    batch = () if mode == "unbatched" else (8,)
    x = torch.randn((*batch, 24), device="cuda", dtype=dtype)
    states = [torch.randn((*batch, 40), device="cuda", dtype=dtype) for _ in range(2)]
    results = []
    for module in (ours, peer):
        outs, grads = torch_cell_step(module, x, states, mode, cls == "LSTMCell")
        assert all(o.is_cuda for o in outs)
        results.append([*outs, *grads])
    assert len(results[0]) == len(results[1])
    for a, b in zip(*results, strict=True):
        if dtype_name == "float64":
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
        else:
            torch.testing.assert_close(a, b, rtol=0, atol=2e-5 * float(b.detach().abs().max()))


def test_work_runs_on_torchs_current_stream() -> None:
    """On a side stream, rnnkit queues its kernels there: results are ready once that
    stream is, without any other synchronization."""
    torch = _torch_cuda()
    ours, peer = _torch_pair(torch, "LSTM", torch.float32, input_size=32, hidden_size=32)
    x = torch.randn(40, 16, 32, device="cuda")
    expected, _ = peer(x)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        y, _ = ours(x)
        y2 = y * 1.0
    side.synchronize()
    torch.testing.assert_close(y2, expected, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_nn_modules_on_the_gpu_match_the_cpu(dtype: type, rng: np.random.Generator) -> None:
    """rnnkit.nn.LSTM moved with .cuda(): CuPy arrays in and out, the same results as the
    module on the CPU (same seed: same weights and dropout masks), gradients included."""
    cupy = pytest.importorskip("cupy")
    from rnnkit import nn

    options = {"num_layers": 2, "bidirectional": True, "dropout": 0.3, "batch_first": True}
    cpu = nn.LSTM(5, 7, dtype=dtype, seed=4, **options)
    gpu = nn.LSTM(5, 7, dtype=dtype, seed=4, **options).cuda()
    assert gpu.device == "cuda:0"
    assert all(isinstance(p, cupy.ndarray) for p in gpu.parameters())
    x = rng.uniform(-1, 1, (4, 6, 5)).astype(dtype)
    lengths = [6, 0, 3, 5]
    y, (h, c) = cpu(x, lengths=lengths)
    y_gpu, (h_gpu, c_gpu) = gpu(cupy.asarray(x), lengths=lengths)
    assert isinstance(y_gpu, cupy.ndarray)
    tol = {"rtol": 1e-9, "atol": 1e-12} if dtype == np.float64 else {"rtol": 1e-4, "atol": 1e-5}
    for a, b in ((y, y_gpu), (h, h_gpu), (c, c_gpu)):
        np.testing.assert_allclose(cupy.asnumpy(b), a, **tol)
    dy = rng.uniform(-1, 1, y.shape).astype(dtype)
    dx = cpu.backward(dy)
    dx_gpu = gpu.backward(cupy.asarray(dy))
    np.testing.assert_allclose(cupy.asnumpy(dx_gpu), dx, **tol)
    for key, g in cpu.grads.items():
        np.testing.assert_allclose(cupy.asnumpy(gpu.grads[key]), g, err_msg=key, **tol)
    gpu.cpu()
    for key, p in cpu.params.items():
        np.testing.assert_array_equal(gpu.params[key], p)


def test_cupy_arrays_come_back_as_cupy_arrays(rng: np.random.Generator) -> None:
    cupy = pytest.importorskip("cupy")
    inputs, _, _ = make_problem("rnn", {}, rng)
    keys = ["x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"]
    out = rnnkit.rnn_forward(*(cupy.asarray(inputs[k]) for k in keys))
    assert isinstance(out.y, cupy.ndarray)
    assert_close64(cupy.asnumpy(out.y), reference.rnn_forward(*(inputs[k] for k in keys)).y)


def test_torch_tensors_are_checked_like_other_device_arrays() -> None:
    """torch tensors are read through their own accessors (faster than their
    __cuda_array_interface__), with the same checks and clear errors."""
    torch = _torch_cuda()
    x = torch.randn(5, 3, 4, device="cuda")
    w_ih, w_hh = torch.randn(6, 4, device="cuda"), torch.randn(6, 6, device="cuda")
    with pytest.raises(TypeError, match=r"x requires grad: .*x\.detach\(\)"):
        rnnkit.rnn_forward(x.clone().requires_grad_(True), None, w_ih, w_hh)
    with pytest.raises(ValueError, match="w_hh must be C-contiguous"):
        rnnkit.rnn_forward(x, None, w_ih, w_hh.t())
    with pytest.raises(TypeError, match=r"w_hh must have dtype float32 .* got float16"):
        rnnkit.rnn_forward(x, None, w_ih, w_hh.half())
    # NumPy names bfloat16 once ml_dtypes (JAX) has registered it; else DLPack reports it.
    with pytest.raises(TypeError, match=r"w_hh must have (dtype float32 .*|a float32 or float64)"):
        rnnkit.rnn_forward(x, None, w_ih, w_hh.bfloat16())
    # An offset view: its data pointer includes the offset.
    big = torch.randn(2, 5, 3, 4, device="cuda")
    out = rnnkit.rnn_forward(big[1], None, w_ih, w_hh)
    expected = rnnkit.rnn_forward(big[1].clone(), None, w_ih, w_hh)
    torch.testing.assert_close(out.y, expected.y, rtol=0, atol=0)
    assert isinstance(out.y, torch.Tensor) and out.y.is_cuda


@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_cell_functions_on_device_arrays(
    variant: tuple[str, dict[str, Any]], dtype: type, rng: np.random.Generator
) -> None:
    """The single-step functions take device arrays too (one step of the sequence loops)."""
    check_cell_variant(GPU, variant, dtype, rng)


def test_nn_cuda_refuses_a_device_it_cannot_see() -> None:
    pytest.importorskip("cupy")
    from rnnkit import nn

    count = rcuda.device_count()
    with pytest.raises(ValueError, match=rf"device must be in \[0, {count - 1}\].*got {count}"):
        nn.LSTM(2, 3).cuda(device=count)
