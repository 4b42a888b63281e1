"""rnnkit's optional CUDA backend: the recurrent kernels on NVIDIA GPUs.

Built only with ``RNNKIT_CUDA=ON pip install .`` (the default build is CPU-only). The
functional API (:func:`rnnkit.lstm_forward` and the others) and the torch adapter run on the
GPU when ``x`` is a device array: a torch CUDA tensor, a CuPy array, a Numba device array, or
anything exporting ``__cuda_array_interface__`` or DLPack on a CUDA device. The arrays are used
in place (no copies) and the results come back as the same kind of array, on the same device,
allocated by the caller's library (torch's caching allocator, CuPy's pool), with the work
queued on the caller's stream: torch's current stream for torch tensors, the one an array's
``__cuda_array_interface__`` names otherwise (CuPy's current stream), else the legacy default
stream. Every input must be ready on that stream.

* Every array of a call must be on the device of ``x``, C-contiguous, and of the dtype of
  ``w_ih`` (float32 or float64). ``lengths`` stays a host array, as in PyTorch.
* float32 GEMMs do not use TF32 unless :func:`set_allow_tf32` turns it on.
* Results are deterministic: no atomics anywhere (bias and peephole gradients are column
  sums in a fixed order); the same inputs give the same bits on the same GPU.

On a GPU the loops run one cuBLAS GEMM and one fused pointwise kernel per step (see
``csrc/cuda``); cuBLAS is loaded when the backend is first used (``libcublas.so``, from the
CUDA toolkit or the ``nvidia-cublas`` wheel that a CUDA torch brings).
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from . import _core
from ._checks import check_clip
from ._device import DeviceArray, device_array, is_device_array

__all__ = [
    "DeviceBuffer",
    "DeviceRecurrentCache",
    "allow_tf32",
    "cuda_available",
    "device_count",
    "is_device_array",
    "persistent_layout",
    "persistent_max_batch",
    "set_allow_tf32",
    "set_persistent_layout",
    "set_persistent_max_batch",
    "synchronize",
    "to_device",
    "to_host",
]

DeviceBuffer = _core.DeviceBuffer

_CELLS = {"lstm": 0, "gru": 1, "rnn": 2}
_GATES = {"lstm": 4, "gru": 3, "rnn": 1}

# The backend device arrays run on, when not the GPU's: tests swap in the host executor
# (_core._cuda_host), which runs the same loops on the CPU.
_backend_override: Any = None


def cuda_available() -> bool:
    """Whether the CUDA backend was built and a CUDA device is visible."""
    return getattr(_core, "_cuda", None) is not None and device_count() > 0


def device_count() -> int:
    """CUDA devices visible to this process (0 in a build without CUDA)."""
    gpu = getattr(_core, "_cuda", None)
    return int(gpu.device_count()) if gpu is not None else 0


def set_allow_tf32(allow: bool) -> None:
    """Lets float32 GEMMs use TF32 tensor cores (10-bit mantissas; off by default)."""
    if not isinstance(allow, bool):
        raise TypeError(f"allow must be a bool, got {type(allow).__name__}")
    _require_backend("set_allow_tf32").set_allow_tf32(allow)


def allow_tf32() -> bool:
    """Whether float32 GEMMs may use TF32 (see :func:`set_allow_tf32`)."""
    return bool(_require_backend("allow_tf32").allow_tf32())


def set_persistent_max_batch(batch: int) -> None:
    """Batches up to this size run their time loops as one persistent kernel (the recurrent
    weights stay in shared memory for all steps; one grid-wide barrier per step instead of a
    GEMM launch and a pointwise launch). Default 64; 0 turns it off. Applies to the LSTM
    without projection, the GRU with ``linear_before_reset`` and the RNN, when the device's
    shared memory holds each block's part of ``w_hh``, and when a step is under 2**26
    multiply-adds (``B * G * H * R``); backward also needs ``B * G * H`` under 2**16 (every
    block reads all of a step's gate gradients). Past those limits the step loop was faster on
    an H200. Other calls run step by step."""
    if not isinstance(batch, int) or isinstance(batch, bool):
        raise TypeError(f"batch must be an int, got {type(batch).__name__}")
    if batch < 0:
        raise ValueError(f"batch must be >= 0, got {batch}")
    _require_backend("set_persistent_max_batch").set_persistent_max_batch(batch)


def persistent_max_batch() -> int:
    """The largest batch that runs as a persistent kernel (see :func:`set_persistent_max_batch`)."""
    return int(_require_backend("persistent_max_batch").persistent_max_batch())


def set_persistent_layout(rows_per_warp: int = 0, units_per_block: int = 0) -> None:
    """How the persistent forward kernel splits its work, for tuning and tests: rows of
    ``w_hh`` each warp takes at a time (1, 2 or 4; float64 stops at 2) and hidden units per
    block (each block keeps its units' rows of ``w_hh`` in shared memory; one block runs per
    multiprocessor, so a layer needs ``ceil(H / units_per_block)`` of them, or it runs step by
    step). 0 leaves either to rnnkit's rule: 4 rows per warp for blocks of at least 8 units,
    else 1; as few units per block as spread the layer over the device. The
    results are the same to rounding (the sums are reassociated)."""
    for name, value in (("rows_per_warp", rows_per_warp), ("units_per_block", units_per_block)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if rows_per_warp not in (0, 1, 2, 4):
        raise ValueError(f"rows_per_warp must be 0, 1, 2 or 4, got {rows_per_warp}")
    if units_per_block < 0:
        raise ValueError(f"units_per_block must be >= 0, got {units_per_block}")
    _require_backend("set_persistent_layout").set_persistent_layout(rows_per_warp, units_per_block)


def persistent_layout() -> tuple[int, int]:
    """``(rows_per_warp, units_per_block)`` as set by :func:`set_persistent_layout`."""
    rows, units = _require_backend("persistent_layout").persistent_layout()
    return int(rows), int(units)


def synchronize(stream: int = 0) -> None:
    """Waits until the work rnnkit queued on ``stream`` (default: the legacy stream) is done."""
    _require_backend("synchronize").synchronize(stream)


def to_device(array: Any, *, stream: int = 0) -> Any:
    """A copy of a host array in device memory, as a :class:`DeviceBuffer`
    (``__cuda_array_interface__``; ``torch.as_tensor`` and ``cupy.asarray`` take it as is).

    float32, float64 and int32 only (what the kernels take). For users without torch or CuPy,
    and for tests: with either library, their own transfers do the same.
    """
    a = np.asarray(array)
    if a.dtype not in (np.float32, np.float64, np.int32) or a.dtype.byteorder == ">":
        raise TypeError(f"array must have dtype float32, float64 or int32, got {a.dtype}")
    a = np.ascontiguousarray(a)
    backend = _require_backend("to_device")
    buffer = backend.empty(list(a.shape), a.dtype.str, stream)
    if a.size:
        backend.upload(buffer.ptr, a, stream)
    return buffer


def to_host(array: Any) -> np.ndarray:
    """A NumPy copy of a device array (any kind rnnkit takes), once the work queued on its
    stream is done."""
    backend = _require_backend("to_host")
    info = device_array(array, "array")
    if not info.contiguous:
        raise ValueError(f"array must be C-contiguous, got strides {info.strides}")
    out = np.empty(info.shape, info.dtype)
    if out.size:
        with _on_device(backend, info.device):
            backend.download(out, info.ptr, _stream_of(info, array))
    return out


def _require_backend(what: str) -> Any:
    if _backend_override is not None:
        return _backend_override
    gpu = getattr(_core, "_cuda", None)
    if gpu is None:
        raise RuntimeError(
            f"{what} needs rnnkit's CUDA backend, and this rnnkit was built without it: "
            "reinstall with RNNKIT_CUDA=ON pip install ."
        )
    if gpu.device_count() == 0:
        raise RuntimeError(f"{what} needs a CUDA device, and none is visible (no GPU or driver)")
    _preload_cublas()
    return gpu


_cublas_preloaded = False


def _preload_cublas() -> None:
    """Makes the ``nvidia-cublas`` wheel's library findable by the C++ loader.

    The loader ``dlopen``s ``libcublas.so.13`` (or ``.12``) by name, which finds the toolkit's
    copy on the library path, or one already loaded (a CUDA torch loads its wheel's copy at
    import). A wheel's copy that nothing has loaded yet is in ``site-packages/nvidia/...``,
    which the loader does not search: load it here, globally, so that the name resolves.
    """
    global _cublas_preloaded
    if _cublas_preloaded:
        return
    _cublas_preloaded = True
    for soname in ("libcublas.so.13", "libcublas.so.12"):
        try:
            ctypes.CDLL(soname, mode=ctypes.RTLD_GLOBAL)
            return
        except OSError:
            pass
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        return
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        for pattern in ("*/lib/libcublas.so.13", "*/lib/libcublas.so.12"):
            for path in sorted(Path(root).glob(pattern)):
                try:
                    ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
                    return
                except OSError:
                    continue


@contextmanager
def _use_backend(backend: Any) -> Iterator[None]:
    """Runs device arrays on another backend (internal: tests use _core._cuda_host)."""
    global _backend_override
    saved = _backend_override
    _backend_override = backend
    try:
        yield
    finally:
        _backend_override = saved


# --------------------------------------------------------------------- results as the caller's kind
_Converter = Callable[[Any, Any], Any]
_converters: dict[type, _Converter] = {}


def _register_array_type(cls: type, convert: _Converter) -> None:
    """How to hand a DeviceBuffer back as an array of type cls: convert(buffer, like)."""
    _converters[cls] = convert


def _like(buffer: Any, like: Any) -> Any:
    """The backend's buffer as the kind of array `like` is, sharing its memory."""
    if buffer is None:
        return None
    for cls in type(like).__mro__:
        convert = _converters.get(cls)
        if convert is not None:
            return convert(buffer, like)
    module = type(like).__module__.split(".")[0]
    if module == "torch":
        import torch

        return torch.as_tensor(buffer, device=like.device)
    if module == "cupy":
        return importlib.import_module("cupy").asarray(buffer)
    if module == "numba":
        return importlib.import_module("numba.cuda").as_cuda_array(buffer)
    return buffer  # a DeviceBuffer: __cuda_array_interface__, usable by any CUDA library


# --------------------------------------------------------------------------- argument checks
def _shape_str(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


class _Call:
    """The arrays of one call, checked against x and w_ih: same device, same dtype, shapes."""

    def __init__(self, x_obj: Any, w_ih_obj: Any) -> None:
        self.x = device_array(x_obj, "x")
        self.stream = _stream_of(self.x, x_obj)
        if not is_device_array(w_ih_obj):
            raise TypeError(
                "w_ih must be a CUDA array like x (x is on the GPU), got " + _kind_name(w_ih_obj)
            )
        w_ih = device_array(w_ih_obj, "w_ih", self.stream)
        if w_ih.dtype not in (np.float32, np.float64):
            raise TypeError(
                f"w_ih must have dtype float32 or float64 (native byte order), got {w_ih.dtype}"
            )
        self.dtype = w_ih.dtype
        self.device = self.x.device
        self.keep: list[Any] = []
        self.w_ih = self._checked(w_ih, "w_ih")

    def array(self, obj: Any, name: str, ndim: int, dims_doc: str) -> DeviceArray:
        if obj is None:
            raise TypeError(f"{name} must be a CUDA array like x, got None")
        if not is_device_array(obj):
            raise TypeError(
                f"{name} must be a CUDA array like x (x is on the GPU), got " + _kind_name(obj)
            )
        a = self._checked(device_array(obj, name, self.stream), name)
        if len(a.shape) != ndim:
            raise ValueError(
                f"{name} must be {ndim}-dimensional {dims_doc}, got shape {_shape_str(a.shape)}"
            )
        return a

    def optional(
        self, obj: Any, name: str, dims_doc: str, expected: tuple[int | None, ...], source: str = ""
    ) -> DeviceArray | None:
        if obj is None:
            return None
        a = self.array(obj, name, len(expected), dims_doc)
        self.shape(a, name, dims_doc, expected, source)
        return a

    @staticmethod
    def shape(
        a: DeviceArray,
        name: str,
        dims_doc: str,
        expected: tuple[int | None, ...],
        source: str = "",
        note: str = "",
    ) -> None:
        """ValueError unless ``a`` has the shape ``expected`` (None: any size there), with the
        CPU binding's message: ``source`` says where the sizes come from (``"I from w_ih"``),
        ``note`` follows ``dims_doc`` (``" with G = 4 (lstm)"``)."""
        want = tuple(n if e is None else e for e, n in zip(expected, a.shape, strict=True))
        if a.shape != want:
            where = f" ({source})" if source else ""
            raise ValueError(
                f"{name} must have shape {dims_doc}{note} = {_shape_str(want)}{where}, got "
                f"{_shape_str(a.shape)}"
            )

    def _checked(self, a: DeviceArray, name: str) -> DeviceArray:
        if a.dtype != self.dtype:
            raise TypeError(
                f"{name} must have dtype {self.dtype} (the dtype of w_ih), got {a.dtype}"
            )
        if not a.contiguous:
            raise ValueError(
                f"{name} must be C-contiguous on the GPU (rnnkit does not copy device arrays; "
                f"call .contiguous() or cupy.ascontiguousarray), got strides {a.strides} for "
                f"shape {_shape_str(a.shape)}"
            )
        if a.device is not None and self.x.device is not None and a.device != self.x.device:
            raise ValueError(
                f"{name} must be on the device of x (cuda:{self.x.device}), got cuda:{a.device}"
            )
        self.keep.append(a.owner)
        return a


def _kind_name(obj: Any) -> str:
    t = type(obj)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"


def _stream_of(x: DeviceArray, obj: Any = None) -> int:
    """The stream rnnkit queues a call's work on: torch's current stream for a torch tensor
    (torch's __cuda_array_interface__ names none), else the one the array's interface names
    (v3: 1 the legacy default stream, 2 the per-thread default), else the legacy default."""
    if obj is not None and _library_of(obj) == "torch":
        return _torch_stream(obj)
    stream = x.stream
    if stream is None or stream == 1:
        return 0
    return int(stream)


def _torch_stream(tensor: Any) -> int:
    torch = sys.modules["torch"]
    return int(torch.cuda.current_stream(tensor.device).cuda_stream)


def _library_of(obj: Any) -> str:
    return type(obj).__module__.split(".")[0]


@contextmanager
def _on_device(backend: Any, device: int | None) -> Iterator[None]:
    """Makes `device` current for the call and restores the caller's device after it (torch
    and CuPy read the runtime's current device)."""
    if device is None or backend.device() == device:
        yield
        return
    previous = backend.device()
    backend.set_device(device)
    try:
        yield
    finally:
        backend.set_device(previous)


class _Memory:
    """Allocates a call's results and caches where the caller's library would: torch tensors
    with ``torch.empty`` (torch's caching allocator, ordered on the current stream), CuPy
    arrays with ``cupy.empty`` (CuPy's pool); otherwise rnnkit DeviceBuffers (freed in order
    on the stream they were made on). Each allocation is (owner, pointer)."""

    def __init__(self, backend: Any, like: Any, device: int | None, stream: int) -> None:
        self.backend = backend
        self.like = like
        self.library = _library_of(like) if backend.on_device else ""
        self.device = device
        self.stream = stream

    def empty(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> tuple[Any, int]:
        if self.library == "torch":
            torch = sys.modules["torch"]
            t = torch.empty(shape, dtype=getattr(torch, dtype.name), device=self.like.device)
            return t, int(t.data_ptr())
        if self.library == "cupy":
            cupy = importlib.import_module("cupy")
            with cupy.cuda.Device(self.device if self.device is not None else 0):
                a = cupy.empty(shape, dtype=dtype)
            return a, int(a.data.ptr)
        buffer = self.backend.empty(list(shape), dtype.str, self.stream)
        return buffer, int(buffer.ptr)

    def upload(self, array: np.ndarray) -> tuple[Any, int]:
        owner, ptr = self.empty(array.shape, array.dtype)
        if array.size:
            self.backend.upload(ptr, np.ascontiguousarray(array), self.stream)
        return owner, ptr

    def result(self, owner: Any) -> Any:
        """An allocation as the caller's kind of array."""
        return owner if self.library in ("torch", "cupy") else _like(owner, self.like)


def _ptr(a: DeviceArray | None) -> int:
    return 0 if a is None else a.ptr


def _parse_lengths(lengths: Any, T: int, B: int) -> np.ndarray | None:
    if lengths is None:
        return None
    if is_device_array(lengths):
        raise TypeError(
            "lengths must be a host array of shape (B,) (as in PyTorch), got a CUDA array"
        )
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"lengths must have an integer dtype, got {arr.dtype}")
    if arr.shape != (B,):
        raise ValueError(f"lengths must have shape (B,) = ({B},), got {_shape_str(arr.shape)}")
    for b, v in enumerate(arr.tolist()):
        if not 0 <= v <= T:
            raise ValueError(f"lengths[{b}] = {v} is out of range [0, T] = [0, {T}]")
    return arr.astype(np.int32)


# --------------------------------------------------------------------------- the calls
def _producer(kind: str, cell: bool) -> str:
    """The forward function whose caches the backward of (kind, cell) takes."""
    return f"{kind}_cell_forward" if cell else f"{kind}_forward"


class DeviceRecurrentCache:
    """What a forward call on device arrays keeps for its backward call (opaque)."""

    def __init__(
        self, kind: str, core: Any, like: Any, call: _Call, projected: bool, is_cell: bool
    ) -> None:
        self.kind = kind
        self.is_cell = is_cell  # made by the single-step function
        self._core = core
        self._like = like  # results come back as this kind of array
        self._dtype = call.dtype
        self._device = call.device
        self._stream = call.stream
        self._projected = projected

    @property
    def producer(self) -> str:
        return _producer(self.kind, self.is_cell)

    @property
    def training(self) -> bool:
        return bool(self._core.training)

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._dtype

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(T, B, I, H)"""
        T, B, I, H, _ = self._core.dims  # noqa: E741
        return int(T), int(B), int(I), int(H)

    @property
    def nbytes(self) -> int:
        """Bytes of device memory kept for backward (0 when training=False)."""
        return int(self._core.nbytes)

    def __repr__(self) -> str:
        T, B, I, H = self.shape  # noqa: E741
        return (
            f"<DeviceRecurrentCache from {self.producer}, dtype={self._dtype}, "
            f"(T, B, I, H)=({T}, {B}, {I}, {H}), training={self.training}>"
        )


def forward(
    kind: str,
    x_obj: Any,
    h0_obj: Any,
    c0_obj: Any,
    w_ih_obj: Any,
    w_hh_obj: Any,
    b_ih_obj: Any,
    b_hh_obj: Any,
    *,
    training: bool,
    lengths: Any,
    reverse: bool,
    w_hr_obj: Any = None,
    peepholes_obj: Any = None,
    input_forget: bool = False,
    linear_before_reset: bool = True,
    nonlinearity: str = "tanh",
    clip: Any = None,
    cell: bool = False,
) -> tuple[Any, ...]:
    """One layer-direction on the GPU: (y, h_n, c_n or None, cache); see rnnkit.lstm_forward.
    With ``cell=True`` one step of the single-step functions: ``x [B, I]``, states ``h`` and
    ``c``, and y is ``h1 [B, R]``."""
    function = f"{kind}_cell_forward" if cell else f"{kind}_forward"
    backend = _require_backend(f"{function} on a CUDA array")
    if not isinstance(nonlinearity, str):  # the CPU binding's message
        raise TypeError(f"nonlinearity must be 'tanh' or 'relu', got {type(nonlinearity).__name__}")
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got '{nonlinearity}'")
    for flag, value in (
        ("training", training),
        ("reverse", reverse),
        ("input_forget", input_forget),
        ("linear_before_reset", linear_before_reset),
    ):
        if not isinstance(value, bool | np.bool_):
            raise TypeError(f"{flag} must be a bool, got {type(value).__name__}")
    clip_value = check_clip(clip)
    call = _Call(x_obj, w_ih_obj)
    # As the CPU binding: w_ih decides the dtype, I and H; w_hr P; x T and B. The others are
    # compared with them, and a message says where the sizes come from.
    G = _GATES[kind]
    g_note = f" with G = {G} ({kind})"
    w_ih = call.w_ih
    if len(w_ih.shape) != 2:
        raise ValueError(f"w_ih must be 2-dimensional (G*H, I), got shape {_shape_str(w_ih.shape)}")
    GH, I = w_ih.shape  # noqa: E741 (the input size's conventional name)
    if GH == 0 or GH % G:
        rows = f" (a positive multiple of {G} rows)" if G > 1 else ""
        raise ValueError(
            f"w_ih must have shape (G*H, I){g_note} and H > 0{rows}, got {_shape_str(w_ih.shape)}"
        )
    H = R = GH // G
    h_from = r_from = "H from w_ih"
    w_hr = call.optional(w_hr_obj, "w_hr", "(P, H)", (None, H), h_from)
    if w_hr is not None:
        R = w_hr.shape[0]
        if R == 0:
            raise ValueError(
                f"w_hr must have shape (P, H) with P > 0, got {_shape_str(w_hr.shape)}"
            )
        r_from = "H from w_ih, P from w_hr"
    hh_doc = "(G*H, H)" if w_hr is None else "(G*H, P)"
    w_hh = call.array(w_hh_obj, "w_hh", 2, hh_doc)
    call.shape(w_hh, "w_hh", hh_doc, (GH, R), r_from, g_note)
    b_ih = call.optional(b_ih_obj, "b_ih", "(G*H,)", (GH,), h_from)
    b_hh = call.optional(b_hh_obj, "b_hh", "(G*H,)", (GH,), h_from)
    peepholes = call.optional(peepholes_obj, "peepholes", "(3, H)", (3, H), h_from)
    x = call._checked(call.x, "x")
    x_doc, x_ndim = ("(B, I)", 2) if cell else ("(T, B, I)", 3)
    if len(x.shape) != x_ndim:
        raise ValueError(f"x must be {x_ndim}-dimensional {x_doc}, got shape {_shape_str(x.shape)}")
    call.shape(x, "x", x_doc, (None, I) if cell else (None, None, I), "I from w_ih")
    T, B = (1, x.shape[0]) if cell else (x.shape[0], x.shape[1])
    h_doc, h_source = ("(B, H)", "B from x, H from w_ih")
    if w_hr is not None:
        h_doc, h_source = ("(B, P)", "B from x, P from w_hr")
    h0 = call.optional(h0_obj, "h" if cell else "h0", h_doc, (B, R), h_source)
    c0 = None
    if kind == "lstm":
        c0 = call.optional(c0_obj, "c" if cell else "c0", "(B, H)", (B, H), "B from x, H from w_ih")
    host_lengths = _parse_lengths(lengths, T, B)
    ptrs = tuple(_ptr(a) for a in (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, peepholes))
    options = (
        bool(reverse),
        bool(input_forget),
        bool(linear_before_reset),
        nonlinearity == "relu",
        clip_value,
    )
    dims = (T, B, I, H, R)
    memory = _Memory(backend, x_obj, call.device, call.stream)
    with _on_device(backend, call.device):
        keep = list(call.keep)
        lengths_ptr = 0
        if host_lengths is not None:
            owner, lengths_ptr = memory.upload(host_lengths)
            keep.append(owner)
        y, y_ptr = memory.empty((B, R) if cell else (T, B, R), x.dtype)
        h_n, h_n_ptr = memory.empty((B, R), x.dtype)
        c_n, c_n_ptr = memory.empty((B, H), x.dtype) if kind == "lstm" else (None, 0)
        cache_ptrs: tuple[int, ...] = ()
        if training:
            sizes = backend.cache_sizes(_CELLS[kind], dims, w_hr is not None, bool(reverse))
            buffers = [memory.empty((n,), x.dtype) if n else (None, 0) for n in sizes]
            keep.extend(owner for owner, _ in buffers if owner is not None)
            nbytes = sum(int(n) for n in sizes) * x.dtype.itemsize
            cache_ptrs = (*(ptr for _, ptr in buffers), nbytes)
        core = backend.forward(
            _CELLS[kind],
            x.dtype == np.float64,
            dims,
            ptrs,
            lengths_ptr,
            options,
            bool(training),
            (y_ptr, h_n_ptr, c_n_ptr),
            cache_ptrs,
            call.stream,
        )
    # The cache refers to x, the weights, the lengths and its buffers by pointer: their owners
    # stay alive with it.
    core.inputs = tuple(keep)
    cache = DeviceRecurrentCache(kind, core, x_obj, call, w_hr is not None, cell)
    return (
        memory.result(y),
        memory.result(h_n),
        memory.result(c_n) if c_n is not None else None,
        cache,
    )


def backward(
    kind: str,
    dy_obj: Any,
    dh_n_obj: Any,
    dc_n_obj: Any,
    cache: DeviceRecurrentCache,
    cell: bool = False,
) -> tuple[Any, ...]:
    """The backward of :func:`forward`: (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr,
    dpeepholes), None for what forward did not have."""
    want = _producer(kind, cell)
    if cache.kind != kind or cache.is_cell != cell:
        raise TypeError(
            f"cache must be the cache returned by {want}, got a cache from {cache.producer}"
        )
    if not cache.training:
        raise ValueError(
            f"cache was made by {want}(..., training=False), which keeps nothing for backward; "
            "call forward with training=True"
        )
    backend = _require_backend(f"{kind}_backward")
    core = cache._core
    T, B, I, H, R = (int(n) for n in core.dims)  # noqa: E741
    y_doc = "(T, B, P)" if cache._projected else "(T, B, H)"
    h_doc = "(B, P)" if cache._projected else "(B, H)"
    # where the sizes come from: the forward call that made the cache (the CPU's messages)
    h_from = ", H from its w_ih"
    r_from = ", P from its w_hr" if cache._projected else h_from
    b_from = f"B from {want}'s x"
    dy = (
        None if cell else _grad_array(dy_obj, "dy", y_doc, (T, B, R), cache, f"T, {b_from}{r_from}")
    )
    dh_n = _grad_array(dh_n_obj, "dh1" if cell else "dh_n", h_doc, (B, R), cache, b_from + r_from)
    dc_n = (
        _grad_array(dc_n_obj, "dc1" if cell else "dc_n", "(B, H)", (B, H), cache, b_from + h_from)
        if kind == "lstm"
        else None
    )
    # torch runs backward on its current stream (autograd keeps forward's): queue there.
    stream = cache._stream
    if _library_of(cache._like) == "torch" and backend.on_device:
        stream = _torch_stream(cache._like)
    memory = _Memory(backend, cache._like, cache._device, stream)
    G = _GATES[kind]
    has_b_ih, has_b_hh, has_w_hr, has_peepholes = core.has_inputs
    shapes: list[tuple[int, ...] | None] = [
        (B, I) if cell else (T, B, I),
        (B, R),
        (B, H) if kind == "lstm" else None,
        (G * H, I),
        (G * H, R),
        (G * H,) if has_b_ih else None,
        (G * H,) if has_b_hh else None,
        (R, H) if has_w_hr else None,
        (3, H) if has_peepholes else None,
    ]
    with _on_device(backend, cache._device):
        outs = [memory.empty(shape, cache.dtype) if shape else (None, 0) for shape in shapes]
        backend.backward(core, _ptr(dy), _ptr(dh_n), _ptr(dc_n), tuple(p for _, p in outs), stream)
    return tuple(None if owner is None else memory.result(owner) for owner, _ in outs)


def _grad_array(
    obj: Any,
    name: str,
    doc: str,
    shape: tuple[int, ...],
    cache: DeviceRecurrentCache,
    source: str,
) -> DeviceArray | None:
    if obj is None:
        return None
    if not is_device_array(obj):
        raise TypeError(
            f"{name} must be a CUDA array like x (forward ran on the GPU), got " + _kind_name(obj)
        )
    a = device_array(obj, name, cache._stream)
    if a.dtype != cache.dtype:
        raise TypeError(
            f"{name} must have dtype {cache.dtype} (the dtype of the cache), got {a.dtype}"
        )
    if len(a.shape) != len(shape):
        raise ValueError(
            f"{name} must be {len(shape)}-dimensional {doc}, got shape {_shape_str(a.shape)}"
        )
    _Call.shape(a, name, doc, shape, source)
    if not a.contiguous:
        raise ValueError(f"{name} must be C-contiguous on the GPU, got strides {a.strides}")
    if a.device is not None and cache._device is not None and a.device != cache._device:
        raise ValueError(
            f"{name} must be on the device of x (cuda:{cache._device}), got cuda:{a.device}"
        )
    return a
