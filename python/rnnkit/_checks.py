"""Argument checks shared by the Python modules (file paths, random seeds), with the project's
messages: ``<argument> must be <expected>, got <actual>``."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["check_path", "make_rng"]


def check_path(path: Any, name: str = "path") -> str:
    """``path`` as a str (``os.fspath``): a str or an ``os.PathLike`` of str, else TypeError."""
    try:
        text = os.fspath(path)
    except TypeError:
        text = None
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str or an os.PathLike, got {type(path).__name__}")
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
