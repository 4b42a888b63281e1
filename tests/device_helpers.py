"""Helpers of the CUDA backend's tests (test_cuda_host.py, test_cuda_gpu.py): rnnkit's
functional API called with device arrays, results read back to NumPy."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import rnnkit
from helpers import assert_close64, assert_close_to_ref
from rnnkit import reference
from test_kernel_variants import cast, run

NAMES = [f"{c}_{d}" for c in ("lstm", "gru", "rnn") for d in ("forward", "backward")]


def device_lib(to_device: Callable[[np.ndarray], Any], to_host: Callable[[Any], Any]) -> Any:
    """A namespace with rnnkit's sequence functions whose array arguments go through
    ``to_device`` (``lengths`` stays a host array) and whose array results through
    ``to_host``; other values pass as they are."""

    def wrap(name: str) -> Callable[..., Any]:
        fn = getattr(rnnkit, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            dev = [to_device(a) if isinstance(a, np.ndarray) else a for a in args]
            kw = {
                k: to_device(v) if isinstance(v, np.ndarray) and k != "lengths" else v
                for k, v in kwargs.items()
            }
            out = fn(*dev, **kw)
            return type(out)(*(v if v is None or _is_cache(v) else to_host(v) for v in out))

        return call

    return SimpleNamespace(**{n: wrap(n) for n in NAMES})


def _is_cache(v: Any) -> bool:
    return isinstance(v, rnnkit.cuda.DeviceRecurrentCache)


def assert_matches_reference(
    cell: str,
    inputs: dict[str, Any],
    opts: dict[str, Any],
    grads: dict[str, Any],
    actual: dict[str, Any],
    dtype: type,
) -> None:
    """Every output and gradient as close to the reference as test_kernel_variants asks.

    One allowance, for float32 with clip: a gate whose pre-activation lies within float32
    rounding of +-clip is clipped or not depending on the last bit of its sum, and the
    gradient jumps there. The result must then be the reference's answer for a clip moved by
    one part in a million one way or the other (the same problem within float32 rounding).
    """
    ref64 = run(reference, cell, *(cast(d, np.float64) for d in (inputs, opts, grads)))
    assert actual.keys() == ref64.keys()
    if dtype == np.float64:
        for name in actual:
            assert_close64(actual[name], ref64[name], what=name)
        return
    ref32 = run(reference, cell, inputs, opts, grads)
    try:
        for name in actual:
            assert_close_to_ref(actual[name], ref64[name], ref32[name], what=name)
    except AssertionError:
        if opts.get("clip") is None:
            raise
        for shift in (1e-6, -1e-6):
            moved = {**opts, "clip": float(opts["clip"]) * (1 + shift)}
            ref = run(reference, cell, *(cast(d, np.float64) for d in (inputs, moved, grads)))
            try:
                for name in actual:
                    assert_close_to_ref(actual[name], ref[name], ref32[name], what=name)
                return
            except AssertionError:
                continue
        raise
