"""Helpers of the CUDA backend's tests (test_cuda_host.py, test_cuda_gpu.py): rnnkit's
functional API called with device arrays, results read back to NumPy."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import rnnkit
from test_kernel_variants import assert_matches_reference

NAMES = [
    f"{c}_{level}{d}"
    for c in ("lstm", "gru", "rnn")
    for level in ("", "cell_")
    for d in ("forward", "backward")
]


def device_lib(to_device: Callable[[np.ndarray], Any], to_host: Callable[[Any], Any]) -> Any:
    """A namespace with rnnkit's sequence and single-step functions whose array arguments go
    through ``to_device`` (``lengths`` stays a host array) and whose array results through
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


def check_cell_variant(
    lib: Any, variant: tuple[str, dict[str, Any]], dtype: type, rng: np.random.Generator
) -> None:
    """One step of ``lib``'s single-step functions (device arrays) against rnnkit's CPU cell
    kernels: h1 (and c1), then every gradient of the cell backward, to float64 or float32
    accuracy; and the cache refused by the sequence backward."""
    from helpers import assert_close64
    from test_kernel_variants import cast, make_problem

    cell, options = variant
    inputs, opts, grads = make_problem(cell, options, rng, (1, 5, 3, 6, 4))
    if dtype == np.float32:
        inputs, opts, grads = (cast(d, np.float32) for d in (inputs, opts, grads))
    weights = [inputs[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
    states = [inputs["x"][0], inputs["h0"]] + ([inputs["c0"]] if cell == "lstm" else [])
    incoming = [grads["dh_n"]] + ([grads["dc_n"]] if cell == "lstm" else [])
    forward, backward = f"{cell}_cell_forward", f"{cell}_cell_backward"
    expected = getattr(rnnkit, forward)(*states, *weights, **opts)
    actual = getattr(lib, forward)(*states, *weights, **opts)
    expected_grads = getattr(rnnkit, backward)(*incoming, expected.cache)
    actual_grads = getattr(lib, backward)(*incoming, actual.cache)
    pairs = [*zip(expected._fields[:-1], expected[:-1], actual[:-1], strict=True)]
    pairs += zip(expected_grads._fields, expected_grads, actual_grads, strict=True)
    for name, want, got in pairs:
        if dtype == np.float64:
            assert_close64(got, want, what=name)
        elif want is None:
            assert got is None, name
        else:
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=name)
    sequence_backward = getattr(lib, f"{cell}_backward")
    with pytest.raises(
        TypeError, match=f"cache returned by {cell}_forward, got a cache from {forward}"
    ):
        sequence_backward(None, *incoming, actual.cache)


__all__ = ["assert_matches_reference", "check_cell_variant", "device_lib"]
