"""Helpers of the CUDA backend's tests (test_cuda_host.py, test_cuda_gpu.py): rnnkit's
functional API called with device arrays, results read back to NumPy."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import rnnkit
from test_kernel_variants import assert_matches_reference

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


__all__ = ["assert_matches_reference", "device_lib"]
