"""Every kind of bad argument gives a clear error, checked before any work.

The messages are the binding's (csrc/bindings/arrays.hpp, bind_rnn.cpp): they name the
argument and give the expected and the actual value, and for the forward functions where each
expected size comes from (w_ih decides I and H, w_hr P, x T and B), e.g.
``h0 must have shape (B, H) = (2, 5) (B from x, H from w_ih), got (2, 6)``. Kinds and dtypes
raise ``TypeError``; shapes and values ``ValueError``. A wrong array is refused before any
copy, even when it is a broadcast view whose C-order copy could never be allocated. Also
here: what is accepted although unusual (non-contiguous and aliased arrays, explicit native
byte order, ``None`` states) and gives the same bits as the plain call, NaN propagation, and
the thread-count setter.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import rnnkit

T, B, IN, H = 3, 2, 4, 5  # all different, so that every message is unambiguous
CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
KINDS = ("lstm", "gru", "rnn")  # as the binding names them
LEVELS = ("seq", "cell")

Args = dict[str, Any]


# --------------------------------------------------------------------------- helpers
def _kind(cell: str) -> str:
    return cell.split("_")[0]


def _producer(kind: str, level: str) -> str:
    return f"{kind}_forward" if level == "seq" else f"{kind}_cell_forward"


def _forward_fn(kind: str, level: str) -> Callable[..., Any]:
    return getattr(rnnkit, _producer(kind, level))


def _backward_fn(kind: str, level: str) -> Callable[..., Any]:
    return getattr(rnnkit, f"{kind}_backward" if level == "seq" else f"{kind}_cell_backward")


def state_names(level: str) -> tuple[str, str]:
    return ("h0", "c0") if level == "seq" else ("h", "c")


def forward_args(cell: str, level: str, dtype: type = np.float64, seed: int = 0) -> Args:
    """Valid random non-zero keyword arguments of the forward function."""
    rng = np.random.default_rng(seed)
    g = GATES[cell]

    def draw(*dims: int) -> np.ndarray:
        return (0.5 * rng.standard_normal(dims)).astype(dtype)

    h, c = state_names(level)
    args: Args = {"x": draw(T, B, IN) if level == "seq" else draw(B, IN), h: draw(B, H)}
    if cell == "lstm":
        args[c] = draw(B, H)
    args.update(w_ih=draw(g * H, IN), w_hh=draw(g * H, H), b_ih=draw(g * H), b_hh=draw(g * H))
    if cell.startswith("rnn_"):
        args["nonlinearity"] = cell.removeprefix("rnn_")
    return args


def call_forward(cell: str, level: str, args: Args):
    return _forward_fn(_kind(cell), level)(**args)


def backward_arg_names(cell: str, level: str) -> tuple[str, ...]:
    names = ("dy", "dh_n", "dc_n") if level == "seq" else ("dh1", "dc1")
    if cell != "lstm":
        names = tuple(n for n in names if n not in ("dc_n", "dc1"))
    return names


def backward_args(cell: str, level: str, dtype: type = np.float64, seed: int = 1) -> Args:
    rng = np.random.default_rng(seed)
    shapes = {"dy": (T, B, H), "dh_n": (B, H), "dc_n": (B, H), "dh1": (B, H), "dc1": (B, H)}
    return {
        n: rng.standard_normal(shapes[n]).astype(dtype) for n in backward_arg_names(cell, level)
    }


def call_backward(cell: str, level: str, grads: Args, cache):
    return _backward_fn(_kind(cell), level)(**grads, cache=cache)


def _cache(cell: str, level: str, *, training: bool = True, dtype: type = np.float64):
    return call_forward(cell, level, {**forward_args(cell, level, dtype), "training": training})[-1]


def _arrays(result) -> list[np.ndarray | None]:
    return [v for v in result if not isinstance(v, rnnkit.RecurrentCache)]


def assert_same_bits(a, b) -> None:
    a, b = _arrays(a), _arrays(b)
    assert len(a) == len(b)
    for k, (u, v) in enumerate(zip(a, b, strict=True)):
        if u is None or v is None:
            assert u is None and v is None, k
        else:
            assert u.dtype == v.dtype and u.shape == v.shape, k
            assert np.array_equal(u, v), f"output {k} differs"


def _shape_str(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _dims_doc(name: str, cell: str, level: str) -> str:
    """How the binding names the dimensions of each argument."""
    g = GATES[cell]
    if name == "x":
        return "(T, B, I)" if level == "seq" else "(B, I)"
    if name == "w_ih":
        return f"(G*H, I) with G = {g} ({_kind(cell)})"
    if name == "w_hh":
        return f"(G*H, H) with G = {g} ({_kind(cell)})"
    if name in ("b_ih", "b_hh"):
        return "(G*H,)"
    if name == "dy":
        return "(T, B, H)"
    return "(B, H)"


def _source(name: str) -> str:
    """What the forward checks say the expected sizes of ``name`` come from."""
    if name == "x":
        return " (I from w_ih)"
    if name in ("w_hh", "b_ih", "b_hh"):
        return " (H from w_ih)"
    return " (B from x, H from w_ih)"  # the states


def _backward_source(name: str, cell: str, level: str) -> str:
    """What the backward checks say the expected sizes of gradient ``name`` come from: the
    arguments of the forward call that made the cache."""
    producer = _producer(_kind(cell), level)
    if name == "dy":
        return f" (T, B from {producer}'s x, H from its w_ih)"
    return f" (B from {producer}'s x, H from its w_ih)"


def _ndim_doc(name: str, level: str) -> str:
    """The dimension names in the wrong-ndim message (no gate count there)."""
    return {
        "x": "(T, B, I)" if level == "seq" else "(B, I)",
        "w_ih": "(G*H, I)",
        "w_hh": "(G*H, H)",
        "b_ih": "(G*H,)",
        "b_hh": "(G*H,)",
        "dy": "(T, B, H)",
    }.get(name, "(B, H)")


def _array_names(cell: str, level: str) -> list[str]:
    return [n for n, v in forward_args(cell, level).items() if isinstance(v, np.ndarray)]


def _forward_cases() -> Iterator[Any]:
    for cell in CELLS:
        for level in LEVELS:
            for name in _array_names(cell, level):
                yield pytest.param(cell, level, name, id=f"{cell}-{level}-{name}")


FORWARD_CASES = list(_forward_cases())
# w_ih decides I and H: the others are compared with it (test_w_ih_decides_the_sizes).
NOT_W_IH_CASES = [case for case in FORWARD_CASES if case.values[2] != "w_ih"]
LAYOUTS = ("contiguous", "broadcast")


def _laid_out(a: np.ndarray, layout: str) -> np.ndarray:
    """``a``, or a zero-stride view of its shape (not C-contiguous: the binding checks it
    before it would copy it)."""
    if layout == "contiguous":
        return a
    view = np.broadcast_to(a.reshape(-1)[:1], a.shape)
    assert not view.flags.c_contiguous
    return view


SEQ_AND_CELL = [pytest.param(c, lv, id=f"{c}-{lv}") for c in CELLS for lv in LEVELS]


# ----------------------------------------------------------------- forward: shapes
@pytest.mark.parametrize(("cell", "level", "name"), NOT_W_IH_CASES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_forward_wrong_shape(cell: str, level: str, name: str, layout: str) -> None:
    """One more along the dimension the argument itself cannot decide: the message says
    which array the expected size comes from, whatever the layout of the wrong array."""
    args = forward_args(cell, level)
    good = args[name]
    axis = 0 if name == "w_hh" else good.ndim - 1
    bad_shape = tuple(n + 1 if k == axis else n for k, n in enumerate(good.shape))
    args[name] = _laid_out(np.ones(bad_shape), layout)
    message = (
        f"{name} must have shape {_dims_doc(name, cell, level)} = "
        f"{_shape_str(good.shape)}{_source(name)}, got {_shape_str(bad_shape)}"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call_forward(cell, level, args)


@pytest.mark.parametrize(("cell", "level"), SEQ_AND_CELL)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_w_ih_decides_the_sizes(cell: str, level: str, layout: str) -> None:
    """I and H are read from w_ih: with a column or a hidden unit too many there, x or w_hh
    is named, with the size w_ih implies and where it comes from."""
    args = forward_args(cell, level)
    g = GATES[cell]
    x_shape = args["x"].shape
    wide = {**args, "w_ih": _laid_out(np.ones((g * H, IN + 1)), layout)}
    x_want = _shape_str((*x_shape[:-1], IN + 1))
    message = (
        f"x must have shape {_dims_doc('x', cell, level)} = {x_want} (I from w_ih), "
        f"got {_shape_str(x_shape)}"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call_forward(cell, level, wide)
    tall = {**args, "w_ih": _laid_out(np.ones((g * (H + 1), IN)), layout)}
    message = (
        f"w_hh must have shape {_dims_doc('w_hh', cell, level)} = ({g * (H + 1)}, {H + 1}) "
        f"(H from w_ih), got ({g * H}, {H})"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call_forward(cell, level, tall)
    if g > 1:  # a row count that is no multiple of G names w_ih itself
        odd = {**args, "w_ih": _laid_out(np.ones((g * H + 1, IN)), layout)}
        message = (
            f"w_ih must have shape (G*H, I) with G = {g} ({_kind(cell)}) and H > 0 (a "
            f"positive multiple of {g} rows), got ({g * H + 1}, {IN})"
        )
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            call_forward(cell, level, odd)


@pytest.mark.parametrize(("cell", "level", "name"), FORWARD_CASES)
def test_forward_wrong_ndim(cell: str, level: str, name: str) -> None:
    args = forward_args(cell, level)
    good = args[name]
    args[name] = good[None]
    message = (
        f"{name} must be {good.ndim}-dimensional {_ndim_doc(name, level)}, "
        f"got shape {_shape_str((1, *good.shape))}"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call_forward(cell, level, args)


@pytest.mark.parametrize(("cell", "level"), SEQ_AND_CELL)
def test_state_with_another_batch_size(cell: str, level: str) -> None:
    """B comes from x: a state of another batch size names both shapes."""
    args = forward_args(cell, level)
    h, c = state_names(level)
    for name in (h, c) if cell == "lstm" else (h,):
        bad = {**args, name: np.ones((B + 1, H))}
        message = (
            f"{name} must have shape (B, H) = ({B}, {H}) (B from x, H from w_ih), "
            f"got ({B + 1}, {H})"
        )
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            call_forward(cell, level, bad)


@pytest.mark.parametrize("cell", CELLS)
def test_w_hh_not_square_per_gate(cell: str) -> None:
    """H is read from w_ih's rows, so a w_hh with a column too many is named with the shape
    that w_ih implies (it was compared with the rows its own columns would need)."""
    args = forward_args(cell, "seq")
    g = GATES[cell]
    args["w_hh"] = np.ones((g * H, H + 1))
    message = (
        f"w_hh must have shape (G*H, H) with G = {g} ({_kind(cell)}) = ({g * H}, {H}) "
        f"(H from w_ih), got ({g * H}, {H + 1})"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call_forward(cell, "seq", args)


@pytest.mark.parametrize(("cell", "level"), SEQ_AND_CELL)
def test_empty_hidden_size(cell: str, level: str) -> None:
    args = forward_args(cell, level)
    args["w_ih"] = np.ones((0, IN))
    args["w_hh"] = np.ones((0, 0))
    message = f"w_ih must have shape (G*H, I) with G = {GATES[cell]} ({_kind(cell)}) and H > 0"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        call_forward(cell, level, args)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("lstm", "gru"), ("gru", "lstm"), ("rnn_tanh", "lstm"), ("lstm", "rnn_relu")],
)
def test_weights_of_another_cell(ours: str, theirs: str) -> None:
    args = forward_args(ours, "seq")
    other = forward_args(theirs, "seq")
    for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
        args[name] = other[name]
    g, rows = GATES[ours], GATES[theirs] * H
    if rows % g:  # no whole number of our gates in w_ih: w_ih is named
        message = (
            f"w_ih must have shape (G*H, I) with G = {g} ({_kind(ours)}) and H > 0 (a "
            f"positive multiple of {g} rows), got ({rows}, {IN})"
        )
    else:  # w_ih's rows give another H, which w_hh's columns do not have
        message = (
            f"w_hh must have shape (G*H, H) with G = {g} ({_kind(ours)}) = ({rows}, "
            f"{rows // g}) (H from w_ih), got ({rows}, {H})"
        )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call_forward(ours, "seq", args)


def test_sizes_beyond_32_bit_blas() -> None:
    """T*B over the 32-bit BLAS limit (empty arrays: I = 0, no memory needed)."""
    x = np.empty((2**17, 2**15, 0))
    with pytest.raises(ValueError, match=re.escape("T*B = 4294967296 exceeds the 32-bit BLAS")):
        rnnkit.lstm_forward(x, None, None, np.empty((4 * H, 0)), np.ones((4 * H, H)))


def _huge(ndim: int) -> np.ndarray:
    """A broadcast view whose C-order copy would need 2 to 8 PiB, more than any address
    space: a wrong one must be refused from its shape (the binding used to copy a
    non-contiguous array before comparing its shape, and raised MemoryError instead)."""
    dims = {1: (2**50,), 2: (2**24, 2**24), 3: (2**16, 2**16, 2**16)}[ndim]
    return np.broadcast_to(np.ones(1), dims)


@pytest.mark.parametrize(("cell", "level", "name"), NOT_W_IH_CASES)
def test_wrong_shape_refused_before_copying(cell: str, level: str, name: str) -> None:
    args = forward_args(cell, level)
    args[name] = _huge(args[name].ndim)
    with pytest.raises(ValueError, match=f"^{re.escape(name)} must have shape "):
        call_forward(cell, level, args)


@pytest.mark.parametrize("level", LEVELS)
def test_sizes_beyond_32_bit_blas_refused_before_copying(level: str) -> None:
    """The 32-bit limits are checked from the shapes too, before x (petabytes as a C-order
    copy) is copied."""
    wide = 2**17
    w_ih = np.broadcast_to(np.ones(1), (4 * H, wide))
    if level == "seq":
        x = np.broadcast_to(np.ones(1), (2**16, 2**16, wide))
        message = "T*B = 4294967296 exceeds the 32-bit BLAS limit of 2147483647"
    else:
        x = np.broadcast_to(np.ones(1), (2**31, wide))
        message = "B = 2147483648 exceeds the 32-bit BLAS limit of 2147483647"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        _forward_fn("lstm", level)(x, None, None, w_ih, np.ones((4 * H, H)))


# ----------------------------------------------------------------- forward: dtypes
@pytest.mark.parametrize(("cell", "level", "name"), FORWARD_CASES)
@pytest.mark.parametrize("w_dtype", [np.float64, np.float32], ids=["w64", "w32"])
def test_forward_mixed_float_dtypes(cell: str, level: str, name: str, w_dtype: type) -> None:
    """One argument in the other float dtype: TypeError naming it, never a silent cast."""
    other = np.float32 if w_dtype == np.float64 else np.float64
    args = forward_args(cell, level, w_dtype)
    args[name] = args[name].astype(other)
    want, got = np.dtype(w_dtype).name, np.dtype(other).name
    if name == "w_ih":  # w_ih decides: then w_hh (checked first) is the odd one out
        message = f"w_hh must have dtype {got} (the dtype of w_ih), got {want}"
    else:
        message = f"{name} must have dtype {want} (the dtype of w_ih), got {got}"
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        call_forward(cell, level, args)


BAD_DTYPES = [np.int64, np.int32, np.float16, np.complex128, np.bool_, np.object_]


@pytest.mark.parametrize(("cell", "level", "name"), FORWARD_CASES)
@pytest.mark.parametrize("bad", BAD_DTYPES, ids=lambda d: np.dtype(d).name)
def test_forward_non_float_dtypes(cell: str, level: str, name: str, bad: type) -> None:
    args = forward_args(cell, level)
    args[name] = args[name].astype(bad)
    got = np.dtype(bad).name
    if name == "w_ih":
        message = f"w_ih must have dtype float32 or float64 (native byte order), got {got}"
    else:
        message = f"{name} must have dtype float64 (the dtype of w_ih), got {got}"
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        call_forward(cell, level, args)


@pytest.mark.parametrize(("cell", "level", "name"), FORWARD_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_forward_big_endian_rejected(cell: str, level: str, name: str, dtype: type) -> None:
    """Non-native byte order is refused (TypeError saying so), not silently misread."""
    args = forward_args(cell, level, dtype)
    swapped = args[name].astype(np.dtype(dtype).newbyteorder(">"))
    np.testing.assert_array_equal(swapped, args[name])  # same values, other layout
    args[name] = swapped
    code = f">f{np.dtype(dtype).itemsize}"
    if name == "w_ih":
        message = f"w_ih must have dtype float32 or float64 (native byte order), got {code}"
    else:
        message = (
            f"{name} must have dtype {np.dtype(dtype).name} (the dtype of w_ih), "
            f"got {code} (non-native byte order)"
        )
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        call_forward(cell, level, args)


@pytest.mark.parametrize(("cell", "level"), SEQ_AND_CELL)
def test_explicit_native_byte_order_accepted(cell: str, level: str) -> None:
    args = forward_args(cell, level)
    native = {
        k: v.astype(v.dtype.newbyteorder("=")) if isinstance(v, np.ndarray) else v
        for k, v in args.items()
    }
    little = {
        k: v.astype(v.dtype.newbyteorder("<")) if isinstance(v, np.ndarray) else v
        for k, v in args.items()
    }
    assert_same_bits(call_forward(cell, level, little), call_forward(cell, level, native))


# ------------------------------------------------------------- forward: not arrays
@pytest.mark.parametrize(("cell", "level", "name"), FORWARD_CASES)
@pytest.mark.parametrize("container", [list, tuple])
def test_forward_non_ndarray(cell: str, level: str, name: str, container: type) -> None:
    args = forward_args(cell, level)
    args[name] = container(args[name].tolist())
    message = f"{name} must be a numpy.ndarray, got {container.__name__}"
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        call_forward(cell, level, args)


@pytest.mark.parametrize(("cell", "level"), SEQ_AND_CELL)
@pytest.mark.parametrize("name", ["x", "w_ih", "w_hh"])
def test_forward_required_none(cell: str, level: str, name: str) -> None:
    args = forward_args(cell, level)
    args[name] = None
    # w_ih is read first, for its dtype, and (for now) says "NoneType" where the others say
    # "None"; either names the argument and what it got.
    pattern = f"^{re.escape(name)} must be a numpy\\.ndarray, got None(Type)?$"
    with pytest.raises(TypeError, match=pattern):
        call_forward(cell, level, args)


@pytest.mark.parametrize(("cell", "level"), SEQ_AND_CELL)
def test_forward_scalar_arguments(cell: str, level: str) -> None:
    args = forward_args(cell, level)
    with pytest.raises(TypeError, match=r"^x must be a numpy\.ndarray, got float$"):
        call_forward(cell, level, {**args, "x": 1.0})
    with pytest.raises(
        ValueError, match=re.escape("w_ih must be 2-dimensional (G*H, I), got shape ()")
    ):
        call_forward(cell, level, {**args, "w_ih": np.array(1.0)})


# ------------------------------------------------------------------- nonlinearity
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("bad", ["sigmoid", "Tanh", "RELU", "", "tanh "])
def test_bad_nonlinearity(level: str, bad: str) -> None:
    args = {**forward_args("rnn_tanh", level), "nonlinearity": bad}
    message = f"nonlinearity must be 'tanh' or 'relu', got '{bad}'"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call_forward("rnn_tanh", level, args)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(("bad", "kind"), [(None, "NoneType"), (1, "int")])
def test_nonlinearity_not_a_string(level: str, bad: object, kind: str) -> None:
    args = {**forward_args("rnn_tanh", level), "nonlinearity": bad}
    message = f"nonlinearity must be 'tanh' or 'relu', got {kind}"
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        call_forward("rnn_tanh", level, args)


def _flag_cases() -> Iterator[Any]:
    for cell in CELLS:
        for level in LEVELS:
            flags = ["training"]
            if level == "seq":
                flags.append("reverse")
            if cell == "lstm":
                flags.append("input_forget")
            if cell == "gru":
                flags.append("linear_before_reset")
            for flag in flags:
                yield pytest.param(cell, level, flag, id=f"{cell}-{level}-{flag}")


@pytest.mark.parametrize(("cell", "level", "flag"), list(_flag_cases()))
@pytest.mark.parametrize(
    ("bad", "kind"),
    [("no", "str"), (None, "NoneType"), (2, "int"), (0, "int"), (1.0, "float"), ([], "list")],
)
def test_flag_not_a_bool(cell: str, level: str, flag: str, bad: object, kind: str) -> None:
    """A flag is a bool: None, 0/1/2 or a str used to be taken by truth value (or refused
    with pybind11's generic message that printed every array)."""
    args = {**forward_args(cell, level), flag: bad}
    with pytest.raises(TypeError, match=f"^{flag} must be a bool, got {kind}$"):
        call_forward(cell, level, args)


@pytest.mark.parametrize(("cell", "level", "flag"), list(_flag_cases()))
def test_flag_numpy_bool_accepted(cell: str, level: str, flag: str) -> None:
    args = forward_args(cell, level)
    default = {"training": True, "reverse": False}.get(flag, flag == "linear_before_reset")
    for value in (True, False):
        expected = call_forward(cell, level, {**args, flag: value})
        assert_same_bits(call_forward(cell, level, {**args, flag: np.bool_(value)}), expected)
    assert_same_bits(
        call_forward(cell, level, {**args, flag: default}), call_forward(cell, level, args)
    )


def test_nonlinearity_is_keyword_only() -> None:
    a = forward_args("rnn_relu", "seq")
    with pytest.raises(TypeError, match="takes from 4 to 6 positional arguments but 7 were"):
        rnnkit.rnn_forward(a["x"], a["h0"], a["w_ih"], a["w_hh"], None, None, "relu")


# ------------------------------------------------------------------------ backward
def _backward_cases() -> Iterator[Any]:
    for cell in CELLS:
        for level in LEVELS:
            for name in backward_arg_names(cell, level):
                yield pytest.param(cell, level, name, id=f"{cell}-{level}-{name}")


BACKWARD_CASES = list(_backward_cases())


@pytest.mark.parametrize(("cell", "level", "name"), BACKWARD_CASES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_backward_wrong_shape(cell: str, level: str, name: str, layout: str) -> None:
    cache = _cache(cell, level)
    grads = backward_args(cell, level)
    good = grads[name].shape
    for axis in range(len(good)):
        bad_shape = tuple(n + 1 if k == axis else n for k, n in enumerate(good))
        message = (
            f"{name} must have shape {_dims_doc(name, cell, level)} = {_shape_str(good)}"
            f"{_backward_source(name, cell, level)}, got {_shape_str(bad_shape)}"
        )
        bad = _laid_out(np.ones(bad_shape), layout)
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            call_backward(cell, level, {**grads, name: bad}, cache)


@pytest.mark.parametrize(("cell", "level", "name"), BACKWARD_CASES)
def test_backward_wrong_shape_refused_before_copying(cell: str, level: str, name: str) -> None:
    cache = _cache(cell, level)
    grads = backward_args(cell, level)
    grads[name] = _huge(grads[name].ndim)
    with pytest.raises(ValueError, match=f"^{re.escape(name)} must have shape "):
        call_backward(cell, level, grads, cache)


@pytest.mark.parametrize(
    ("how", "dy_doc", "dh_doc"),
    [
        (
            "projected",
            "(T, B, P) = (3, 2, 3) (T, B from lstm_forward's x, P from its w_hr)",
            "(B, P) = (2, 3) (B from lstm_forward's x, P from its w_hr)",
        ),
        (
            "packed",
            "(N, H) = (5, 5) (N from lstm_forward's x, H from its w_ih)",
            "(B, H) = (2, 5) (B from lstm_forward's batch_sizes[0], H from its w_ih)",
        ),
        (
            "projected-packed",
            "(N, P) = (5, 3) (N from lstm_forward's x, P from its w_hr)",
            "(B, P) = (2, 3) (B from lstm_forward's batch_sizes[0], P from its w_hr)",
        ),
        ("projected-cell", None, "(B, P) = (2, 3) (B from lstm_cell_forward's x, P from its w_hr)"),
    ],
)
def test_backward_of_projected_and_packed_caches(how: str, dy_doc: str | None, dh_doc: str) -> None:
    """The caches whose shape does not tell R (= P) or N: a wrong broadcast gradient gets
    the binding's message before any copy, a right one gives the bits of its copy."""
    P = 3
    rng = np.random.default_rng(5)
    cell = how.endswith("cell")
    packed = "packed" in how
    level = "cell" if cell else "seq"
    x = rng.standard_normal((5, IN) if packed else (B, IN) if cell else (T, B, IN))
    kw: Args = {"batch_sizes": np.array([2, 2, 1])} if packed else {}
    R = H
    if how.startswith("projected"):
        kw["w_hr"] = rng.standard_normal((P, H))
        R = P
    w = [rng.standard_normal((4 * H, IN)), rng.standard_normal((4 * H, R))]
    cache = _forward_fn("lstm", level)(x, None, None, *w, **kw)[-1]
    y_shape = (5, R) if packed else (T, B, R)
    grads: Args = {"dy": rng.standard_normal(y_shape)} if not cell else {}
    h_name, c_name = ("dh1", "dc1") if cell else ("dh_n", "dc_n")
    grads[h_name] = rng.standard_normal((B, R))
    grads[c_name] = rng.standard_normal((B, H))
    expected = call_backward("lstm", level, grads, cache)
    for name, doc in (("dy", dy_doc), (h_name, dh_doc)):
        if doc is None:
            continue
        bad = {**grads, name: _huge(grads[name].ndim)}
        message = f"{name} must have shape {doc}, got {_shape_str(bad[name].shape)}"
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            call_backward("lstm", level, bad, cache)
        view = np.broadcast_to(grads[name][..., :1], grads[name].shape)
        same = {**grads, name: view}
        assert_same_bits(
            call_backward("lstm", level, same, cache),
            call_backward("lstm", level, {**grads, name: np.ascontiguousarray(view)}, cache),
        )
    assert expected.dx.shape == x.shape


@pytest.mark.parametrize(("cell", "level", "name"), BACKWARD_CASES)
def test_backward_wrong_ndim(cell: str, level: str, name: str) -> None:
    cache = _cache(cell, level)
    grads = backward_args(cell, level)
    good = grads[name]
    for bad in (good[None], good[0]):
        message = (
            f"{name} must be {good.ndim}-dimensional {_ndim_doc(name, level)}, "
            f"got shape {_shape_str(bad.shape)}"
        )
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            call_backward(cell, level, {**grads, name: bad}, cache)


@pytest.mark.parametrize(("cell", "level", "name"), BACKWARD_CASES)
@pytest.mark.parametrize("cache_dtype", [np.float64, np.float32], ids=["c64", "c32"])
def test_backward_wrong_dtype(cell: str, level: str, name: str, cache_dtype: type) -> None:
    cache = _cache(cell, level, dtype=cache_dtype)
    assert cache.dtype == cache_dtype
    grads = backward_args(cell, level, cache_dtype)
    want = np.dtype(cache_dtype).name
    other = np.float32 if cache_dtype == np.float64 else np.float64
    for bad, got in [
        (grads[name].astype(other), np.dtype(other).name),
        (grads[name].astype(np.int64), "int64"),
        (grads[name].astype(np.float16), "float16"),
        (
            grads[name].astype(np.dtype(cache_dtype).newbyteorder(">")),
            f">f{np.dtype(cache_dtype).itemsize} (non-native byte order)",
        ),
    ]:
        message = f"{name} must have dtype {want} (the dtype of the cache), got {got}"
        with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
            call_backward(cell, level, {**grads, name: bad}, cache)


@pytest.mark.parametrize(("cell", "level", "name"), BACKWARD_CASES)
def test_backward_non_ndarray(cell: str, level: str, name: str) -> None:
    cache = _cache(cell, level)
    grads = backward_args(cell, level)
    message = f"{name} must be a numpy.ndarray, got list"
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        call_backward(cell, level, {**grads, name: grads[name].tolist()}, cache)


def _cache_pairs() -> Iterator[Any]:
    for kind in KINDS:
        for level in LEVELS:
            for other_kind in KINDS:
                for other_level in LEVELS:
                    if (kind, level) != (other_kind, other_level):
                        yield pytest.param(
                            kind,
                            level,
                            other_kind,
                            other_level,
                            id=f"{_producer(other_kind, other_level)}-to-{kind}-{level}-backward",
                        )


@pytest.mark.parametrize(("kind", "level", "other_kind", "other_level"), list(_cache_pairs()))
def test_cache_of_another_function(
    kind: str, level: str, other_kind: str, other_level: str
) -> None:
    """An LSTM cache to gru_backward, a cell's cache to a sequence backward, and so on."""
    other_cell = other_kind if other_kind != "rnn" else "rnn_tanh"
    cache = _cache(other_cell, other_level)
    assert cache.producer == _producer(other_kind, other_level)
    cell = kind if kind != "rnn" else "rnn_tanh"
    message = (
        f"cache must be the cache returned by {_producer(kind, level)}, "
        f"got a cache from {_producer(other_kind, other_level)}"
    )
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        call_backward(cell, level, backward_args(cell, level), cache)


@pytest.mark.parametrize(("cell", "level"), SEQ_AND_CELL)
@pytest.mark.parametrize("bad", [None, {}, np.zeros(3), "cache"], ids=lambda v: type(v).__name__)
def test_cache_not_a_cache(cell: str, level: str, bad: object) -> None:
    message = (
        f"cache must be the cache returned by {_producer(_kind(cell), level)}, "
        f"got {type(bad).__name__}"
    )
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        call_backward(cell, level, backward_args(cell, level), bad)


@pytest.mark.parametrize(("cell", "level"), SEQ_AND_CELL)
def test_inference_cache_refused(cell: str, level: str) -> None:
    cache = _cache(cell, level, training=False)
    assert cache.training is False
    assert cache.nbytes == 0
    message = (
        f"cache was made by {_producer(_kind(cell), level)}(..., training=False), which keeps "
        "nothing for backward; call forward with training=True"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call_backward(cell, level, backward_args(cell, level), cache)
    with pytest.raises(ValueError, match=re.escape("training=False")):  # also with None grads
        call_backward(cell, level, dict.fromkeys(backward_arg_names(cell, level)), cache)


def test_cache_cannot_be_constructed() -> None:
    with pytest.raises(TypeError, match="No constructor defined"):
        rnnkit.RecurrentCache()


# ------------------------------------------------------------------------- threads
@pytest.mark.parametrize("n", [0, -1, -7, -(2**31), 1025, 100000, 2**31, 2**70])
def test_set_num_threads_out_of_range(n: int, restore_threads: int) -> None:
    rnnkit.set_num_threads(1)
    match = rf"^n must be an integer in \[1, 1024\], got {n}$"
    with pytest.raises(ValueError, match=match):
        rnnkit.set_num_threads(n)
    assert rnnkit.get_num_threads() == 1  # unchanged by the failed call


@pytest.mark.parametrize(
    ("n", "kind"),
    [(1.5, "float"), ("2", "str"), (None, "NoneType"), (True, "bool")],
    ids=["float", "str", "None", "bool"],
)
def test_set_num_threads_not_an_int(n: object, kind: str, restore_threads: int) -> None:
    rnnkit.set_num_threads(1)
    with pytest.raises(TypeError, match=f"^n must be an int, got {kind}$"):
        rnnkit.set_num_threads(n)
    assert rnnkit.get_num_threads() == 1


@pytest.mark.parametrize("cast", [np.int64, np.int32, np.uint8], ids=lambda c: c.__name__)
def test_set_num_threads_numpy_integers(cast: type, restore_threads: int) -> None:
    """NumPy's integers are ints (__index__), in range or not; its bool and floats are not."""
    rnnkit.set_num_threads(cast(2))
    assert rnnkit.get_num_threads() == 2
    with pytest.raises(ValueError, match=r"^n must be an integer in \[1, 1024\], got 0$"):
        rnnkit.set_num_threads(cast(0))
    for bad, kind in [(np.bool_(True), np.bool_.__name__), (np.float64(2.0), "float64")]:
        with pytest.raises(TypeError, match=f"^n must be an int, got {kind}$"):
            rnnkit.set_num_threads(bad)
    assert rnnkit.get_num_threads() == 2


# ------------------------------------------- accepted: non-contiguous and aliased arrays
def _non_contiguous(a: np.ndarray, how: str) -> np.ndarray:
    """The same values as ``a`` in a non-C-contiguous layout."""
    if how == "strided":  # every other element of a twice-as-long last axis
        wide = np.zeros((*a.shape[:-1], 2 * a.shape[-1]), a.dtype)
        wide[..., ::2] = a
        out = wide[..., ::2]
    elif how == "reversed":  # negative strides
        out = a[tuple(slice(None, None, -1) for _ in a.shape)].copy()[
            tuple(slice(None, None, -1) for _ in a.shape)
        ]
    else:  # Fortran order (1-D arrays are always contiguous there: use strided instead)
        out = np.asfortranarray(a) if a.ndim > 1 else _non_contiguous(a, "strided")
    assert not out.flags.c_contiguous
    np.testing.assert_array_equal(out, a)
    return out


@pytest.mark.parametrize(("cell", "level"), SEQ_AND_CELL)
@pytest.mark.parametrize("how", ["strided", "reversed", "fortran"])
def test_non_contiguous_inputs_give_the_same_bits(cell: str, level: str, how: str) -> None:
    """Every array argument of forward and backward non-contiguous at once, and each one
    alone: the results equal those of the contiguous arrays, and nothing is modified."""
    args = forward_args(cell, level, seed=3)
    grads = backward_args(cell, level, seed=4)
    expected_fwd = call_forward(cell, level, args)
    expected_bwd = call_backward(cell, level, grads, expected_fwd[-1])

    def check(fwd_args: Args, bwd_args: Args) -> None:
        before = {k: v.copy() for k, v in {**fwd_args, **bwd_args}.items() if hasattr(v, "copy")}
        out = call_forward(cell, level, fwd_args)
        assert_same_bits(out, expected_fwd)
        assert_same_bits(call_backward(cell, level, bwd_args, out[-1]), expected_bwd)
        for k, v in {**fwd_args, **bwd_args}.items():
            if isinstance(v, np.ndarray):
                np.testing.assert_array_equal(v, before[k], err_msg=f"{k} was modified")

    def nc(d: Args) -> Args:
        return {
            k: _non_contiguous(v, how) if isinstance(v, np.ndarray) else v for k, v in d.items()
        }

    check(nc(args), nc(grads))
    for name in _array_names(cell, level):
        check({**args, name: _non_contiguous(args[name], how)}, grads)


@pytest.mark.parametrize("cell", CELLS)
def test_broadcast_and_unaligned_inputs(cell: str) -> None:
    """Zero strides (np.broadcast_to) and a misaligned buffer are read correctly."""
    args = forward_args(cell, "seq")
    x = np.broadcast_to(args["x"][:1], args["x"].shape)  # every step the same input
    expected = call_forward(cell, "seq", {**args, "x": np.ascontiguousarray(x)})
    assert_same_bits(call_forward(cell, "seq", {**args, "x": x}), expected)
    raw = np.zeros(x.size * 8 + 1, np.uint8)
    misaligned = np.frombuffer(raw[1:].data, np.float64).reshape(x.shape)
    misaligned[...] = x
    assert not misaligned.flags.aligned
    assert_same_bits(call_forward(cell, "seq", {**args, "x": misaligned}), expected)


@pytest.mark.parametrize("level", LEVELS)
def test_aliased_arguments(level: str) -> None:
    """The same array passed as several arguments (inputs are only read)."""
    args = forward_args("lstm", level)
    h, c = state_names(level)
    shared = args[h]
    expected = call_forward("lstm", level, {**args, c: shared.copy()})
    out = call_forward("lstm", level, {**args, c: shared})
    assert_same_bits(out, expected)
    grads = backward_args("lstm", level)
    names = backward_arg_names("lstm", level)
    g_expected = call_backward(
        "lstm", level, {**grads, names[-1]: grads[names[-2]].copy()}, out[-1]
    )
    g_aliased = call_backward("lstm", level, {**grads, names[-1]: grads[names[-2]]}, out[-1])
    assert_same_bits(g_aliased, g_expected)


def test_failed_call_leaves_no_trace() -> None:
    """An error is raised before any work: arguments untouched, the next call unaffected."""
    args = forward_args("lstm", "seq")
    expected = rnnkit.lstm_forward(**args)
    before = {k: v.copy() for k, v in args.items()}
    with pytest.raises(ValueError, match="c0 must have shape"):
        rnnkit.lstm_forward(**{**args, "c0": np.ones((B, H + 1))})
    for k, v in args.items():
        np.testing.assert_array_equal(v, before[k])
    assert_same_bits(rnnkit.lstm_forward(**args), expected)


# ----------------------------------------------------------------------------- NaN
@pytest.mark.parametrize("cell", CELLS)
def test_nan_input_propagates(cell: str) -> None:
    """A NaN in x[1, 0] makes y[1:, 0] NaN and leaves the other batch rows (independent)
    finite, forward and backward; nothing crashes."""
    args = forward_args(cell, "seq")
    args["x"][1, 0, 2] = np.nan
    out = call_forward(cell, "seq", args)
    y, h_n = out[0], out[1]
    assert np.isfinite(y[0]).all()
    assert np.isnan(y[1:, 0]).all()
    assert np.isfinite(y[:, 1:]).all()
    assert np.isnan(h_n[0]).all() and np.isfinite(h_n[1:]).all()
    if cell == "lstm":
        assert np.isnan(out[2][0]).all() and np.isfinite(out[2][1:]).all()

    grads = call_backward(cell, "seq", backward_args(cell, "seq"), out[-1])._asdict()
    assert np.isfinite(grads["dx"][:, 1:]).all()
    assert np.isfinite(grads["dh0"][1:]).all()
    # Every gradient of w_hh sums over h_prev, which is NaN for batch row 0.
    assert np.isnan(grads["dw_hh"]).any()
    if cell != "rnn_relu":  # relu' is taken as 0 at a NaN output, so the NaN stops there
        assert np.isnan(grads["dx"][:2, 0]).all()
        assert np.isnan(grads["db_ih"]).all()


@pytest.mark.parametrize(("cell", "level"), SEQ_AND_CELL)
def test_nan_weight_propagates(cell: str, level: str) -> None:
    args = forward_args(cell, level)
    args["w_ih"][0, 0] = np.nan
    out = call_forward(cell, level, args)
    assert np.isnan(out[0]).any()
    grads = call_backward(cell, level, backward_args(cell, level), out[-1])
    assert np.isnan(grads.dx).any() or cell == "rnn_relu"


# ------------------------------------------------------------ uncopyable input
def test_uncopyable_non_contiguous_input_raises_memory_error() -> None:
    """A non-contiguous input whose C-order copy cannot be allocated raises MemoryError
    (pybind11's ensure() returns a null handle then; dereferencing it used to segfault).
    Run in a subprocess so that a regression fails this test, not the whole session."""
    code = textwrap.dedent(
        """
        import numpy as np, rnnkit
        x = np.broadcast_to(np.zeros(1), (2**20, 2**10, 2**20))  # 8 PiB as a C-order copy
        try:
            rnnkit.lstm_forward(x, None, None, np.ones((20, 2**20)), np.ones((20, 5)))
        except MemoryError as e:
            print("MemoryError:", e)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, f"exit status {proc.returncode}: {proc.stderr[-500:]}"
    assert proc.stdout.startswith("MemoryError:"), proc.stdout
    assert re.search(r"\bx\b", proc.stdout.removeprefix("MemoryError:")), proc.stdout  # names x


@pytest.mark.parametrize("layout", LAYOUTS)
def test_packed_state_shapes_name_batch_sizes(layout: str) -> None:
    """Packed, B is batch_sizes[0]: a state of another batch size says so. Invalid
    batch_sizes are named first (B cannot be read from them)."""
    rng = np.random.default_rng(6)
    x = _laid_out(rng.standard_normal((5, IN)), layout)
    w = [rng.standard_normal((4 * H, IN)), rng.standard_normal((4 * H, H))]
    h0 = np.ones((3, H))
    message = f"h0 must have shape (B, H) = (2, {H}) (B from batch_sizes[0], H from w_ih), got "
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        rnnkit.lstm_forward(x, h0, None, *w, batch_sizes=np.array([2, 2, 1]))
    with pytest.raises(ValueError, match=r"^batch_sizes must be non-increasing"):
        rnnkit.lstm_forward(x, h0, None, *w, batch_sizes=np.array([1, 2, 2]))
    with pytest.raises(ValueError, match=r"^batch_sizes must sum to x\.shape\[0\] = 5"):
        rnnkit.lstm_forward(x, h0, None, *w, batch_sizes=np.array([3, 1]))
