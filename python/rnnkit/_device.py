"""Device arrays: reading ``__cuda_array_interface__`` and DLPack, and checking them once.

rnnkit's CUDA backend takes the arrays of any CUDA library without copies: torch CUDA tensors
and CuPy arrays (both protocols), Numba device arrays (``__cuda_array_interface__``), and
anything else that exports DLPack on a CUDA device (JAX, ...). This module turns such an
object into a :class:`DeviceArray` (pointer, shape, dtype, device, stream) and refuses,
with the argument's name, what the kernels cannot take: a non-contiguous layout, a dtype
other than float32/float64, read-only outputs, arrays on different devices.

Plain Python (``ctypes`` for DLPack capsules), so it is tested on any machine: NumPy arrays
export DLPack too, on the CPU device.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

# DLPack's device types (dlpack.h, DLDeviceType) and its type codes (DLDataTypeCode).
DLPACK_CPU = 1
DLPACK_CUDA = 2
DLPACK_CUDA_MANAGED = 13
_DLPACK_INT, _DLPACK_UINT, _DLPACK_FLOAT = 0, 1, 2


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int), ("device_id", ctypes.c_int)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _DLDevice),
        ("ndim", ctypes.c_int),
        ("dtype", _DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [
        ("dl_tensor", _DLTensor),
        ("manager_ctx", ctypes.c_void_p),
        ("deleter", ctypes.c_void_p),
    ]


_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


@dataclass(frozen=True)
class DeviceArray:
    """A checked view of another library's device array.

    ``owner`` keeps the memory alive: the caller's object, or the DLPack capsule (whose
    destructor returns the memory to its producer).
    """

    ptr: int
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    strides: tuple[int, ...] | None  # in bytes; None when C-contiguous
    device: int | None  # None: the protocol did not say
    stream: int | None
    readonly: bool
    owner: Any

    @property
    def contiguous(self) -> bool:
        if self.strides is None:
            return True
        expected = _c_strides(self.shape, self.dtype.itemsize)
        # A dimension of extent 1 (or an empty array) may have any stride.
        return all(
            n == 1 or s == e or 0 in self.shape
            for n, s, e in zip(self.shape, self.strides, expected, strict=True)
        )


def _c_strides(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    strides = []
    step = itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _cuda_array_interface(obj: Any) -> dict[str, Any] | None:
    # torch's CPU tensors raise TypeError (not AttributeError) for this attribute.
    try:
        cai = obj.__cuda_array_interface__
    except (AttributeError, TypeError, RuntimeError):
        return None
    return cai if isinstance(cai, dict) else None


def _dlpack_device(obj: Any) -> tuple[int, int] | None:
    method = getattr(obj, "__dlpack_device__", None)
    if method is None or not hasattr(obj, "__dlpack__"):
        return None
    try:
        device_type, device_id = method()
    except (TypeError, ValueError, RuntimeError, BufferError):
        return None
    return int(device_type), int(device_id)


def _torch_tensor(obj: Any) -> bool:
    """Whether obj is a torch tensor (without importing torch where nothing has)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


# torch dtype -> NumPy dtype, filled as met; None for a dtype NumPy cannot name (bfloat16).
_TORCH_DTYPES: dict[Any, np.dtype[Any] | None] = {}


def _torch_numpy_dtype(torch_dtype: Any) -> np.dtype[Any] | None:
    if torch_dtype not in _TORCH_DTYPES:
        try:
            _TORCH_DTYPES[torch_dtype] = np.dtype(str(torch_dtype).removeprefix("torch."))
        except TypeError:
            _TORCH_DTYPES[torch_dtype] = None
    return _TORCH_DTYPES[torch_dtype]


def from_torch(tensor: Any, name: str) -> DeviceArray | None:
    """A torch CUDA tensor read through its own accessors: each a C call, where torch's
    __cuda_array_interface__ is Python code that costs tens of microseconds per array (a
    call reads up to 7). None for a dtype NumPy cannot name (the DLPack path reports it)."""
    if tensor.requires_grad:
        raise TypeError(
            f"{name} requires grad: rnnkit's functional API records no autograd graph; pass "
            f"{name}.detach(), or use the rnnkit.torch modules for gradients through autograd"
        )
    dtype = _torch_numpy_dtype(tensor.dtype)
    if dtype is None or tensor.is_neg() or tensor.is_conj():
        return None  # a lazily negated or conjugated view: not what its memory holds
    contiguous = tensor.is_contiguous()
    return DeviceArray(
        ptr=int(tensor.data_ptr()),
        shape=tuple(tensor.shape),
        dtype=dtype,
        strides=None if contiguous else tuple(s * dtype.itemsize for s in tensor.stride()),
        device=tensor.get_device(),
        stream=None,  # rnnkit.cuda runs torch tensors on torch's current stream
        readonly=False,
        owner=tensor,
    )


def is_device_array(obj: Any) -> bool:
    """Whether obj is an array in CUDA device memory (by either protocol)."""
    if obj is None or type(obj) is np.ndarray:  # a subclass may present device memory
        return False
    if _torch_tensor(obj):
        return bool(obj.is_cuda)
    if _cuda_array_interface(obj) is not None:
        return True
    device = _dlpack_device(obj)
    return device is not None and device[0] in (DLPACK_CUDA, DLPACK_CUDA_MANAGED)


def from_cuda_array_interface(obj: Any, cai: dict[str, Any], name: str) -> DeviceArray:
    try:
        shape = tuple(int(n) for n in cai["shape"])
        dtype = np.dtype(cai["typestr"])
        ptr, readonly = cai["data"]
    except (KeyError, TypeError, ValueError) as err:
        raise TypeError(f"{name} has a malformed __cuda_array_interface__: {err}") from None
    strides = cai.get("strides")
    if cai.get("mask") is not None:
        raise ValueError(f"{name} must not be a masked array (its interface has a mask)")
    device = _dlpack_device(obj)
    return DeviceArray(
        ptr=int(ptr or 0),
        shape=shape,
        dtype=dtype,
        strides=None if strides is None else tuple(int(s) for s in strides),
        device=None if device is None else device[1],
        stream=cai.get("stream"),
        readonly=bool(readonly),
        owner=obj,
    )


def dlpack_dtype(code: int, bits: int, lanes: int) -> np.dtype[Any] | None:
    """The NumPy dtype of a DLPack type, or None for one NumPy cannot name."""
    if lanes != 1:
        return None
    kind = {_DLPACK_INT: "i", _DLPACK_UINT: "u", _DLPACK_FLOAT: "f"}.get(code)
    if kind is None or bits % 8:
        return None
    try:
        return np.dtype(f"<{kind}{bits // 8}")
    except TypeError:
        return None


def from_dlpack(obj: Any, name: str, stream: int | None = None) -> DeviceArray:
    """Reads obj.__dlpack__() (legacy, unversioned capsule). The capsule stays unconsumed and
    is kept as the owner: its destructor hands the memory back once rnnkit lets it go."""
    # DLPack spells the legacy default stream 1 (0 is reserved); rnnkit's 0 means it.
    if stream == 0:
        stream = 1
    capsule = obj.__dlpack__() if stream is None else obj.__dlpack__(stream=stream)
    address = _capsule_pointer(capsule, b"dltensor")
    managed = _DLManagedTensor.from_address(address)
    t = managed.dl_tensor
    ndim = int(t.ndim)
    shape = tuple(int(t.shape[i]) for i in range(ndim))
    dtype = dlpack_dtype(t.dtype.code, t.dtype.bits, t.dtype.lanes)
    if dtype is None:
        raise TypeError(
            f"{name} must have a float32 or float64 dtype, got the DLPack type (code "
            f"{t.dtype.code}, {t.dtype.bits} bits, {t.dtype.lanes} lanes)"
        )
    strides = None
    if t.strides:
        strides = tuple(int(t.strides[i]) * dtype.itemsize for i in range(ndim))
    return DeviceArray(
        ptr=int(t.data or 0) + int(t.byte_offset),
        shape=shape,
        dtype=dtype,
        strides=strides,
        device=int(t.device.device_id),
        stream=None if stream is None or stream == 1 else stream,
        readonly=False,
        owner=capsule,
    )


def device_array(obj: Any, name: str, stream: int | None = None) -> DeviceArray:
    """The checked DeviceArray of a CUDA array: __cuda_array_interface__ first (it carries the
    producer's stream), DLPack otherwise; torch's CUDA tensors through their accessors."""
    if _torch_tensor(obj) and obj.is_cuda:
        array = from_torch(obj, name)
        if array is not None:
            return array
    cai = _cuda_array_interface(obj)
    if cai is not None:
        return from_cuda_array_interface(obj, cai, name)
    device = _dlpack_device(obj)
    if device is not None and device[0] in (DLPACK_CUDA, DLPACK_CUDA_MANAGED):
        return from_dlpack(obj, name, stream)
    raise TypeError(f"{name} must be a CUDA array like x, got {_type_name(obj)}")


def _type_name(obj: Any) -> str:
    t = type(obj)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"
