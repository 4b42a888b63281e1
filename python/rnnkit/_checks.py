"""Argument checks shared by the Python modules (flags, numbers, file paths, random seeds), with
the project's messages: ``<argument> must be <expected>, got <actual>``."""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np

__all__ = ["check_bool", "check_finite", "check_path", "check_real", "make_rng"]


# The largest size the kernels take: their BLAS is called with 32-bit sizes
# (csrc/common/blas.cpp checks every call).
MAX_KERNEL_SIZE = 2**31 - 1


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a bool: Python's ``bool`` or ``numpy.bool_``, else TypeError. ``bool(x)``
    would take None, 2 or ``"no"`` as a flag by truth value."""
    if value is True or value is False:  # the common case, 10x cheaper than isinstance
        return value
    if not isinstance(value, np.bool_):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def check_real(value: Any, name: str) -> float:
    """``value`` as a float: a real number (int, float, NumPy integer or floating), else
    TypeError. A bool is refused (True is a mistake, not 1.0), and so is a str (no parsing)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def check_finite(value: Any, name: str) -> float:
    """:func:`check_real`, and ValueError for NaN or an infinity."""
    number = check_real(value, name)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def check_path(path: Any, name: str = "path") -> str:
    """``path`` as a str (``os.fspath``): a str or an ``os.PathLike`` of str, else TypeError."""
    try:
        text = os.fspath(path)
    except TypeError:
        text = None
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str or an os.PathLike, got {type(path).__name__}")
    return text


def check_usable_path(path: Any, name: str = "path") -> str:
    """``path`` as a str (:func:`check_path`) that can name a file: not empty and without NUL
    characters, else ValueError (the OS would answer "no such file" or an unrelated error)."""
    text = check_path(path, name)
    if not text or "\0" in text:
        raise ValueError(f"{name} must be a non-empty path without NUL characters, got {text!r}")
    return text


def check_input_file(path: Any, what: str, name: str = "path") -> str:
    """``path`` (:func:`check_usable_path`) of an existing file: FileNotFoundError ("no
    {what} at ...") or IsADirectoryError otherwise."""
    text = check_usable_path(path, name)
    if os.path.isdir(text):
        raise IsADirectoryError(f"{text} is a directory, not the {what} expected")
    if not os.path.isfile(text):
        raise FileNotFoundError(f"no {what} at {text}")
    return text


def make_rng(seed: Any, name: str = "seed") -> np.random.Generator:
    """A NumPy generator: ``seed`` itself when it is one, else ``default_rng(seed)`` for an
    int >= 0 or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None:
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
            raise TypeError(
                f"{name} must be an int, a numpy.random.Generator or None, got "
                f"{type(seed).__name__}"
            )
        if seed < 0:
            raise ValueError(f"{name} must be >= 0, got {seed}")
    return np.random.default_rng(seed)


def check_clip(clip: Any) -> float:
    """``clip`` as the kernels take it: None is no clipping (inf), else a positive finite real
    number (numbers.Real: not a bool, a str or an array, even of one element), with the CPU
    binding's messages."""
    if clip is None:
        return math.inf
    if isinstance(clip, bool) or not isinstance(clip, numbers.Real):
        raise TypeError(f"clip must be a number or None, got {type(clip).__name__}")
    try:
        value = float(clip)
    except OverflowError:  # (its repr could run to thousands of digits)
        raise ValueError(
            "clip must be a positive finite number or None, got an int too large for a float"
        ) from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"clip must be a positive finite number or None, got {value!r}")
    return value
