"""The CUDA backend without a GPU: its loops, cell kernels and Python plumbing on the host.

``rnnkit._core._cuda_host`` runs the CUDA backend's code (csrc/cuda: the time loops, the
cell functors, the GEMM calls with cuBLAS's column-major contract, the column sums, the
reversal of variable-length rows) on the host executor. Host arrays dressed as device arrays
(``__cuda_array_interface__`` pointing at host memory) then take the whole device path of the
functional API: argument checks, pointer passing, results handed back as the caller's kind
of array. Everything is compared with the NumPy reference, variant by variant, as the CPU
kernels are in test_kernel_variants.py. What only a GPU can show (kernel launches, cuBLAS,
streams) is in test_cuda_gpu.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import rnnkit
from device_helpers import check_cell_variant, device_lib
from helpers import assert_close64
from rnnkit import _core, _device, reference
from rnnkit import cuda as rcuda
from test_kernel_variants import (
    BATCHES,
    SCHEDULES,
    VARIANTS,
    WIDE_LENGTHS,
    WIDE_SHAPE,
    _variant_id,
    check_variant,
    make_problem,
    run,
)


def _host_interface(a: np.ndarray) -> dict[str, Any]:
    """A __cuda_array_interface__ describing host memory (the host executor reads it)."""
    return {
        "shape": a.shape,
        "typestr": a.dtype.str,
        "data": (a.ctypes.data, False),
        "version": 3,
        "strides": None if a.flags.c_contiguous else a.strides,
        "stream": None,
    }


class FakeDeviceArray:
    """Host memory presented as a CUDA array on device 0 (for the host executor)."""

    def __init__(self, array: np.ndarray, owner: Any = None) -> None:
        self.array = array
        self._owner = owner  # the backend buffer whose memory `array` views

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        return _host_interface(self.array)


class _HostView:
    def __init__(self, buffer: Any) -> None:
        self.__array_interface__ = buffer._host_array_interface
        self.buffer = buffer


def _from_buffer(buffer: Any, like: Any) -> FakeDeviceArray:
    return FakeDeviceArray(np.asarray(_HostView(buffer)), owner=buffer)


rcuda._register_array_type(FakeDeviceArray, _from_buffer)


@pytest.fixture(autouse=True)
def host_backend() -> Iterator[None]:
    with rcuda._use_backend(_core._cuda_host):
        yield


def _to_host(v: Any) -> Any:
    return v.array.copy() if isinstance(v, FakeDeviceArray) else v


DEVICE = device_lib(lambda a: FakeDeviceArray(np.ascontiguousarray(a)), _to_host)


@contextmanager
def persistent_max_batch(batch: int) -> Iterator[None]:
    saved = _core._cuda_host.persistent_max_batch()
    _core._cuda_host.set_persistent_max_batch(batch)
    try:
        yield
    finally:
        _core._cuda_host.set_persistent_max_batch(saved)


# Small batches run both forward loops: the persistent recurrence (on the host in its
# per-block work order: blocks of 16 units, a partial last one) and step by step.
BATCH_LOOPS = [
    pytest.param(batch.values[0], loop, id=f"{batch.id}-{loop}")
    for batch in BATCHES
    for loop in (["persistent", "stepwise"] if batch.values[0][0][1] <= 8 else ["stepwise"])
]


@pytest.mark.parametrize(("lengths", "reverse"), SCHEDULES)
@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("batch", "loop"), BATCH_LOOPS)
def test_cuda_loops_match_reference(
    variant: tuple[str, dict[str, Any]],
    lengths: np.ndarray | None,
    reverse: bool,
    dtype: type,
    batch: tuple[tuple[int, int, int, int, int], np.ndarray, float],
    loop: str,
    rng: np.random.Generator,
) -> None:
    with persistent_max_batch(8 if loop == "persistent" else 0):
        check_variant(DEVICE, variant, lengths, reverse, dtype, batch, rng, second_run=True)


@pytest.mark.parametrize("units", [1, 3, 70])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_persistent_loops_in_blocks_of_any_size(
    cell: str, units: int, rng: np.random.Generator
) -> None:
    """units_per_block sizes the emulated blocks: one unit each, 3 (a partial last block of
    H = 70) or the whole layer in one."""
    saved = rcuda.persistent_layout()
    rcuda.set_persistent_layout(0, units)
    try:
        assert rcuda.persistent_layout() == (0, units)
        with persistent_max_batch(64):
            check_variant(
                DEVICE,
                (cell, {}),
                WIDE_LENGTHS,
                True,
                np.float64,
                (WIDE_SHAPE, WIDE_LENGTHS, 0.4),
                rng,
            )
    finally:
        rcuda.set_persistent_layout(*saved)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"rows_per_warp": 3}, ValueError, "rows_per_warp must be 0, 1, 2 or 4, got 3"),
        ({"rows_per_warp": 2.0}, TypeError, "rows_per_warp must be an int, got float"),
        ({"units_per_block": -1}, ValueError, "units_per_block must be >= 0, got -1"),
        ({"units_per_block": True}, TypeError, "units_per_block must be an int, got bool"),
    ],
)
def test_persistent_layout_is_checked(kwargs: dict[str, Any], error: type, message: str) -> None:
    saved = rcuda.persistent_layout()
    with pytest.raises(error, match=message):
        rcuda.set_persistent_layout(**kwargs)
    assert rcuda.persistent_layout() == saved


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("T,B", [(0, 3), (4, 0), (0, 0)])
def test_empty_sequences_and_batches(cell: str, T: int, B: int, rng: np.random.Generator) -> None:
    inputs, opts, grads = make_problem(cell, {}, rng, (T, B, 3, 5, 5))
    actual = run(DEVICE, cell, inputs, opts, grads)
    expected = run(rnnkit, cell, inputs, opts, grads)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


def test_none_states_and_gradients_are_zeros(rng: np.random.Generator) -> None:
    inputs, _, _ = make_problem("lstm", {}, rng)
    x, w = inputs["x"], (inputs["w_ih"], inputs["w_hh"], inputs["b_ih"], inputs["b_hh"])
    out = DEVICE.lstm_forward(x, None, None, *w)
    ref = reference.lstm_forward(x, None, None, *w)
    for a, b in zip(out[:3], ref[:3], strict=True):
        assert_close64(a, b)
    dc_n = rng.uniform(-1, 1, ref.c_n.shape)
    g = DEVICE.lstm_backward(None, None, dc_n, out.cache)
    rg = reference.lstm_backward(None, None, dc_n, ref.cache)
    for name, a, b in zip(g._fields, g, rg, strict=True):
        assert_close64(a, b, what=name)


# ----------------------------------------------------------------------------- arguments
def _lstm_args(rng: np.random.Generator, dtype: type = np.float32) -> list[Any]:
    inputs, _, _ = make_problem("lstm", {}, rng, (3, 2, 4, 5, 5))
    keys = ["x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"]
    return [FakeDeviceArray(inputs[k].astype(dtype)) for k in keys]


def test_arguments_are_checked_with_their_names(rng: np.random.Generator) -> None:
    args = _lstm_args(rng)
    host_h0 = args[1].array
    with pytest.raises(TypeError, match=r"h0 must be a CUDA array like x .*numpy.ndarray"):
        rnnkit.lstm_forward(args[0], host_h0, *args[2:])
    wrong = FakeDeviceArray(args[1].array.astype(np.float64))
    with pytest.raises(TypeError, match=r"h0 must have dtype float32 \(the dtype of w_ih\)"):
        rnnkit.lstm_forward(args[0], wrong, *args[2:])
    short = FakeDeviceArray(args[1].array[:1])
    message = "h0 must have shape (B, H) = (2, 5) (B from x, H from w_ih), got (1, 5)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        rnnkit.lstm_forward(args[0], short, *args[2:])
    # As on the CPU, w_ih decides I and H: with a hidden unit too many there, w_hh is named.
    tall = FakeDeviceArray(np.zeros((24, 4), np.float32))
    message = "w_hh must have shape (G*H, H) with G = 4 (lstm) = (24, 6) (H from w_ih), got (20, 5)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        rnnkit.lstm_forward(*args[:3], tall, *args[4:])
    odd = FakeDeviceArray(np.zeros((21, 4), np.float32))
    with pytest.raises(ValueError, match=r"^w_ih must have shape \(G\*H, I\) with G = 4 \(lstm\)"):
        rnnkit.lstm_forward(*args[:3], odd, *args[4:])
    message = "x must have shape (T, B, I) = (3, 2, 5) (I from w_ih), got (3, 2, 4)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        rnnkit.lstm_forward(*args[:3], FakeDeviceArray(np.zeros((20, 5), np.float32)), *args[4:])
    message = "w_hr must have shape (P, H) = (3, 5) (H from w_ih), got (3, 6)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        rnnkit.lstm_forward(*args, w_hr=FakeDeviceArray(np.zeros((3, 6), np.float32)))
    strided = FakeDeviceArray(np.zeros((2, 10), np.float32)[:, ::2])
    with pytest.raises(ValueError, match="h0 must be C-contiguous on the GPU"):
        rnnkit.lstm_forward(args[0], strided, *args[2:])
    ints = FakeDeviceArray(np.zeros((20, 4), np.int32))
    with pytest.raises(TypeError, match=r"w_ih must have dtype float32 or float64.*int32"):
        rnnkit.lstm_forward(args[0], *args[1:3], ints, *args[4:])
    with pytest.raises(ValueError, match=r"lengths\[1\] = 9 is out of range \[0, T\] = \[0, 3\]"):
        rnnkit.lstm_forward(*args, lengths=[3, 9])
    with pytest.raises(TypeError, match="lengths must be a host array"):
        rnnkit.lstm_forward(*args, lengths=FakeDeviceArray(np.array([3, 3])))
    with pytest.raises(ValueError, match="clip must be a positive finite number"):
        rnnkit.lstm_forward(*args, clip=-1.0)
    with pytest.raises(TypeError, match=r"^clip must be a number or None, got ndarray$"):
        rnnkit.lstm_forward(*args, clip=np.array([2.0]))
    with pytest.raises(ValueError, match=r"got an int too large for a float$"):
        rnnkit.lstm_forward(*args, clip=10**400)
    with pytest.raises(ValueError, match=r"x must be 3-dimensional \(T, B, I\)"):
        rnnkit.lstm_forward(FakeDeviceArray(args[0].array[0]), *args[1:])


def test_backward_checks_its_cache_and_gradients(rng: np.random.Generator) -> None:
    args = _lstm_args(rng)
    out = rnnkit.lstm_forward(*args)
    with pytest.raises(TypeError, match="cache must be the cache returned by gru_forward"):
        rnnkit.gru_backward(None, None, out.cache)
    with pytest.raises(TypeError, match="dy must be a CUDA array like x"):
        rnnkit.lstm_backward(np.zeros((3, 2, 5), np.float32), None, None, out.cache)
    bad = FakeDeviceArray(np.zeros((3, 2, 4), np.float32))
    # as on the CPU, the message says where the sizes come from: the forward call's arguments
    message = (
        "dy must have shape (T, B, H) = (3, 2, 5) (T, B from lstm_forward's x, H from its "
        "w_ih), got (3, 2, 4)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        rnnkit.lstm_backward(bad, None, None, out.cache)
    message = (
        "dc_n must have shape (B, H) = (2, 5) (B from lstm_forward's x, H from its w_ih), got "
        "(1, 5)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        rnnkit.lstm_backward(None, None, FakeDeviceArray(np.zeros((1, 5), np.float32)), out.cache)
    wrong = FakeDeviceArray(np.zeros((2, 5), np.float64))
    with pytest.raises(TypeError, match=r"dh_n must have dtype float32 \(the dtype of the cache"):
        rnnkit.lstm_backward(None, wrong, None, out.cache)
    inference = rnnkit.lstm_forward(*args, training=False)
    assert inference.cache.nbytes == 0
    with pytest.raises(ValueError, match="training=False"):
        rnnkit.lstm_backward(None, None, None, inference.cache)
    assert out.cache.nbytes > 0
    assert "lstm_forward" in repr(out.cache)


def test_results_are_the_callers_kind_and_keep_their_memory(rng: np.random.Generator) -> None:
    args = _lstm_args(rng, np.float64)
    out = rnnkit.lstm_forward(*args)
    assert all(isinstance(a, FakeDeviceArray) for a in out[:3])
    y = out.y.array.copy()
    del out  # the cache goes; y's memory must stay with y
    again = rnnkit.lstm_forward(*args)
    np.testing.assert_array_equal(again.y.array, y)


def test_without_a_gpu_device_arrays_get_a_clear_error(rng: np.random.Generator) -> None:
    if rnnkit.cuda_available():
        pytest.skip("a GPU is visible: test_cuda_gpu.py runs device arrays on it")
    message = "RNNKIT_CUDA=ON" if not rnnkit.has_cuda() else "needs a CUDA device"
    with rcuda._use_backend(None), pytest.raises(RuntimeError, match=message):
        rnnkit.gru_forward(*_lstm_args(rng)[:2], *_lstm_args(rng)[3:])


def test_cuda_available_matches_the_build() -> None:
    assert rnnkit.cuda_available() == (rnnkit.has_cuda() and rcuda.device_count() > 0)
    if not rnnkit.has_cuda():
        assert rcuda.device_count() == 0


# ----------------------------------------------------------------------------- protocols
@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        np.arange(24, dtype=np.float64).reshape(4, 6)[:, ::2],
        np.zeros((0, 3), np.float32),
        np.arange(5, dtype=np.int32),
    ],
    ids=["f32-3d", "f64-strided", "empty", "int32"],
)
def test_dlpack_capsules_are_read_exactly(array: np.ndarray) -> None:
    """NumPy exports DLPack on the CPU device; the reader must see what NumPy sees."""
    info = _device.from_dlpack(array, "a")
    assert info.shape == array.shape
    assert info.dtype == array.dtype
    if array.size:
        assert info.ptr == array.ctypes.data
    assert info.contiguous == array.flags.c_contiguous
    if info.strides is not None:
        assert info.strides == array.strides


def test_cuda_array_interface_is_read_exactly() -> None:
    base = np.arange(12, dtype=np.float64).reshape(3, 4)
    info = _device.device_array(FakeDeviceArray(base), "x")
    assert (info.ptr, info.shape, info.dtype, info.contiguous) == (
        base.ctypes.data,
        (3, 4),
        np.dtype(np.float64),
        True,
    )
    t = _device.device_array(FakeDeviceArray(base.T), "x")
    assert not t.contiguous
    assert _device.is_device_array(FakeDeviceArray(base))
    assert not _device.is_device_array(base)
    assert not _device.is_device_array(None)
    with pytest.raises(TypeError, match=r"x must be a CUDA array like x, got numpy\.ndarray"):
        _device.device_array(base, "x")


def test_dlpack_types_map_to_numpy() -> None:
    assert _device.dlpack_dtype(2, 32, 1) == np.float32
    assert _device.dlpack_dtype(2, 64, 1) == np.float64
    assert _device.dlpack_dtype(0, 32, 1) == np.int32
    assert _device.dlpack_dtype(2, 32, 4) is None  # vector lanes
    assert _device.dlpack_dtype(4, 16, 1) is None  # bfloat16


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_to_device_and_back(dtype: type) -> None:
    a = np.arange(30).reshape(2, 3, 5).astype(dtype)
    buffer = rcuda.to_device(a[:, :, ::2])  # copied to C order on the way
    assert buffer.shape == (2, 3, 3)
    assert buffer.__cuda_array_interface__["typestr"] == np.dtype(dtype).str
    np.testing.assert_array_equal(rcuda.to_host(buffer), a[:, :, ::2])
    np.testing.assert_array_equal(rcuda.to_host(rcuda.to_device(a[:0])), a[:0])
    with pytest.raises(TypeError, match="array must have dtype float32, float64 or int32"):
        rcuda.to_device(a.astype(np.int64))


def test_device_buffers_run_the_kernels(rng: np.random.Generator) -> None:
    """DeviceBuffer in, DeviceBuffer out: the functional API without any array library."""
    inputs, _, _ = make_problem("gru", {}, rng)
    keys = ["x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"]
    out = rnnkit.gru_forward(*(rcuda.to_device(inputs[k]) for k in keys))
    assert isinstance(out.y, rcuda.DeviceBuffer)
    ref = reference.gru_forward(*(inputs[k] for k in keys))
    assert_close64(rcuda.to_host(out.y), ref.y)
    assert_close64(rcuda.to_host(out.h_n), ref.h_n)


def test_cuda_benchmark_explains_what_it_needs() -> None:
    """Without a GPU the cuDNN benchmark says what it needs and exits with status 2."""
    import subprocess
    import sys

    if rnnkit.cuda_available():
        pytest.skip("a GPU is here: the benchmark would run")
    done = subprocess.run(
        [sys.executable, "-m", "rnnkit.bench.cuda", "--quick"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 2
    assert "needs rnnkit's CUDA backend" in done.stderr


# ------------------------------------------------------------------- rnnkit.nn on a device
class HostCudaArray(np.ndarray):
    """A NumPy array presented as a CUDA array (host memory, for the host executor): NumPy's
    arithmetic keeps the class, so rnnkit.nn's device path runs on it as it runs on CuPy."""

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        return _host_interface(self)


def _host_cuda(a: Any, dtype: Any = None) -> HostCudaArray:
    return np.asarray(a, dtype=dtype).view(HostCudaArray)


class HostCudaModule:
    """The part of CuPy's namespace that rnnkit.nn uses, making HostCudaArrays."""

    @staticmethod
    def asarray(a: Any, dtype: Any = None) -> HostCudaArray:
        if isinstance(a, HostCudaArray) and (dtype is None or a.dtype == dtype):
            return a
        return _host_cuda(np.array(a, dtype=dtype))

    @staticmethod
    def ascontiguousarray(a: Any) -> HostCudaArray:
        return _host_cuda(np.ascontiguousarray(a))

    @staticmethod
    def empty(shape: Any, dtype: Any) -> HostCudaArray:
        return _host_cuda(np.empty(shape, dtype))

    @staticmethod
    def zeros(shape: Any, dtype: Any) -> HostCudaArray:
        return _host_cuda(np.zeros(shape, dtype))

    @staticmethod
    def concatenate(arrays: Any, axis: int) -> HostCudaArray:
        return _host_cuda(np.concatenate([np.asarray(a) for a in arrays], axis=axis))

    @staticmethod
    def where(cond: Any, a: Any, b: Any) -> HostCudaArray:
        return _host_cuda(np.where(cond, a, b))


def _buffer_as_host_cuda(buffer: Any, like: Any) -> HostCudaArray:
    out = np.asarray(_HostView(buffer)).view(HostCudaArray)
    out._owner = buffer  # type: ignore[attr-defined]  # the memory lives as long as the view
    return out


rcuda._register_array_type(HostCudaArray, _buffer_as_host_cuda)


def _on_host_device(module: Any) -> Any:
    module._to_array_module(HostCudaModule, 0)
    return module


def _plain(a: Any) -> Any:
    if a is None:
        return None
    if isinstance(a, tuple):
        return tuple(_plain(v) for v in a)
    return np.array(a)  # a copy as a base ndarray


NN_CONFIGS = [
    pytest.param("LSTM", {}, id="lstm"),
    pytest.param(
        "LSTM",
        {"num_layers": 2, "bidirectional": True, "dropout": 0.3, "proj_size": 3},
        id="lstm-2-bi-dropout-proj",
    ),
    pytest.param("LSTM", {"peepholes": True, "batch_first": True, "clip": 0.8}, id="lstm-peep-bf"),
    pytest.param(
        "GRU",
        {"num_layers": 3, "bidirectional": True, "merge_mode": "max", "residual": True},
        id="gru-3-bi-max-residual",
    ),
    pytest.param("GRU", {"bidirectional": True, "merge_mode": None}, id="gru-bi-none"),
    pytest.param(
        "RNN",
        {"num_layers": 2, "bidirectional": True, "merge_mode": "mul", "nonlinearity": "relu"},
        id="rnn-2-bi-mul-relu",
    ),
    pytest.param(
        "RNN",
        {"bidirectional": True, "merge_mode": "mean", "batch_first": True},
        id="rnn-bi-mean-bf",
    ),
]


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize(("cls", "options"), NN_CONFIGS)
def test_nn_modules_on_a_device_match_the_cpu(
    cls: str, options: dict[str, Any], with_lengths: bool, rng: np.random.Generator
) -> None:
    """rnnkit.nn modules with their parameters on a (host-emulated) device: forward and
    backward give what the same module gives on the CPU (same seed: same weights, same
    dropout masks), as device arrays."""
    import rnnkit.nn as nn

    T, B, I, H = 6, 4, 5, 7  # noqa: E741
    make = getattr(nn, cls)
    cpu = make(I, H, dtype=np.float64, seed=3, **options)
    dev = _on_host_device(make(I, H, dtype=np.float64, seed=3, **options))
    assert dev.device == "cuda:0" and cpu.device == "cpu"
    x = rng.uniform(-1, 1, (B, T, I) if options.get("batch_first") else (T, B, I))
    lengths = np.array([6, 0, 3, 5]) if with_lengths else None
    LD = cpu.num_layers * cpu.num_directions
    h0 = rng.uniform(-1, 1, (LD, B, cpu.state_size))
    c0 = rng.uniform(-1, 1, (LD, B, H))
    state = (h0, c0) if cls == "LSTM" else h0
    dev_state = tuple(_host_cuda(s) for s in state) if cls == "LSTM" else _host_cuda(state)
    y, s_n = cpu(x, state, lengths)
    y_dev, s_dev = dev(_host_cuda(x), dev_state, lengths)
    assert dev._tape is not None  # the device kernels ran (their caches), not the CPU's
    assert all(
        isinstance(c, rcuda.DeviceRecurrentCache) for rec in dev._tape.layers for c in rec.caches
    )
    split = isinstance(y, tuple)
    for a, b in zip(y if split else (y,), y_dev if split else (y_dev,), strict=True):
        assert isinstance(b, HostCudaArray)
        assert_close64(np.asarray(b), a, what="y")
    for a, b in zip(
        s_n if cls == "LSTM" else (s_n,), s_dev if cls == "LSTM" else (s_dev,), strict=True
    ):
        assert_close64(np.asarray(b), a, what="state_n")
    dy = (
        tuple(rng.uniform(-1, 1, part.shape) for part in y)
        if split
        else rng.uniform(-1, 1, y.shape)
    )
    dy_dev = tuple(_host_cuda(d) for d in dy) if split else _host_cuda(dy)
    dx = cpu.backward(dy)
    dx_dev = dev.backward(dy_dev)
    assert isinstance(dx_dev, HostCudaArray)
    assert_close64(np.asarray(dx_dev), dx, what="dx")
    for key, g in cpu.grads.items():
        assert isinstance(dev.grads[key], HostCudaArray)
        assert_close64(np.asarray(dev.grads[key]), g, what=key)
    for a, b in zip(
        _plain(dev.dstate0) if cls == "LSTM" else (_plain(dev.dstate0),),
        cpu.dstate0 if cls == "LSTM" else (cpu.dstate0,),
        strict=True,
    ):
        assert_close64(a, b, what="dstate0")


def test_nn_module_moves_between_host_and_device(rng: np.random.Generator) -> None:
    import rnnkit.nn as nn

    m = nn.GRU(3, 4, num_layers=2, dtype=np.float64, seed=1)
    before = {k: v.copy() for k, v in m.params.items()}
    _on_host_device(m)
    assert all(isinstance(v, HostCudaArray) for v in m.params.values())
    assert all(isinstance(v, HostCudaArray) for v in m.grads.values())
    sd = m.state_dict()
    m.reset_parameters(seed=9)
    assert all(isinstance(v, HostCudaArray) for v in m.params.values())
    m.load_state_dict(sd)  # device arrays in, copied into the device parameters
    m.cpu()
    assert m.device == "cpu"
    for k, v in m.params.items():
        assert type(v) is np.ndarray
        np.testing.assert_array_equal(v, before[k])
    m.load_state_dict({k: v.astype(np.float32) for k, v in before.items()})  # cast, as torch


def test_nn_module_refuses_arrays_on_the_wrong_side(rng: np.random.Generator) -> None:
    import rnnkit.nn as nn

    x = rng.uniform(-1, 1, (3, 2, 4)).astype(np.float32)
    cpu = nn.LSTM(4, 5)
    with pytest.raises(
        TypeError, match=r"x is a CUDA array but the parameters of this LSTM are on the CPU"
    ):
        cpu(_host_cuda(x))
    dev = _on_host_device(nn.LSTM(4, 5))
    with pytest.raises(
        TypeError,
        match=r"x must be a CUDA array \(the parameters of this LSTM are on cuda:0\), got numpy",
    ):
        dev(x)
    with pytest.raises(TypeError, match=r"state\[0\] \(h\) must be a CUDA array"):
        dev(_host_cuda(x), (np.zeros((1, 2, 5), np.float32), None))
    with pytest.raises(TypeError, match="must have dtype float32"):
        dev(_host_cuda(x.astype(np.float64)))


def test_nn_cuda_without_a_gpu_is_a_clear_error() -> None:
    import rnnkit.nn as nn

    if rcuda.cuda_available():
        pytest.skip("a GPU is visible: test_cuda_gpu.py covers .cuda()")
    with pytest.raises(RuntimeError, match=r"LSTM.cuda\(\) needs rnnkit built with RNNKIT_CUDA=ON"):
        nn.LSTM(2, 3).cuda()


@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_cell_functions_on_device_arrays(
    variant: tuple[str, dict[str, Any]], dtype: type, rng: np.random.Generator
) -> None:
    """The single-step functions take device arrays too (one step of the sequence loops)."""
    check_cell_variant(DEVICE, variant, dtype, rng)


def test_cell_backward_refuses_a_sequence_cache(rng: np.random.Generator) -> None:
    inputs, _, grads = make_problem("gru", {}, rng)
    w = [inputs[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
    out = DEVICE.gru_forward(inputs["x"], inputs["h0"], *w)
    with pytest.raises(
        TypeError, match="cache returned by gru_cell_forward, got a cache from gru_forward"
    ):
        DEVICE.gru_cell_backward(grads["dh_n"], out.cache)
    with pytest.raises(ValueError, match=r"x must be 2-dimensional \(B, I\), got shape"):
        DEVICE.gru_cell_forward(inputs["x"], None, *w)


def test_exporters_read_a_module_on_a_device(rng: np.random.Generator) -> None:
    """to_onnx_weights and to_keras_weights give the same arrays for a module whose
    parameters are on a (host-emulated) device as for the module on the CPU."""
    import rnnkit.nn as nn
    from rnnkit import convert

    cpu = nn.LSTM(3, 4, bidirectional=True, dtype=np.float64, seed=2)
    dev = _on_host_device(nn.LSTM(3, 4, bidirectional=True, dtype=np.float64, seed=2))
    for a, b in zip(convert.to_onnx_weights(cpu), convert.to_onnx_weights(dev), strict=True):
        if isinstance(a, np.ndarray):
            assert type(b) is np.ndarray
            np.testing.assert_array_equal(b, a)
    keras_cpu = convert.to_keras_weights(cpu, reverse=True)
    keras_dev = convert.to_keras_weights(dev, reverse=True)
    for a, b in zip(keras_cpu, keras_dev, strict=True):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(b, a)
