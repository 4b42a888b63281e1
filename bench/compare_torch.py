#!/usr/bin/env python3
"""Side-by-side CPU benchmark of rnnkit's sequence kernels against ``torch.nn.LSTM/GRU/RNN``.

For every cell (LSTM, GRU, tanh RNN) and shape ``(T, B, I, H)``, in one process, with the same
thread count for both libraries (``torch.set_num_threads`` and ``rnnkit.set_num_threads``):

1. build a float32 ``torch.nn`` module, copy its ``weight_ih_l0``/``weight_hh_l0``/
   ``bias_ih_l0``/``bias_hh_l0`` into NumPy arrays for rnnkit, and draw ``x`` and ``dy``;
2. check that both compute the same thing: outputs ``y``, ``h_n`` (and ``c_n``) in inference
   and training mode, gradients ``dx``, ``dw_ih``, ``dw_hh`` of ``sum(y * dy)``, each within a
   float32 tolerance relative to the array's largest magnitude; abort if not;
3. time the forward pass (rnnkit ``training=False`` against torch under
   ``torch.inference_mode()``) and forward+backward (rnnkit ``training=True`` forward then
   ``*_backward(dy)``; torch forward with ``x.requires_grad`` then ``y.backward(dy)``), after a
   warm-up, with the two libraries taking turns (rnnkit, torch, rnnkit, torch, ...; see
   ``SETTLE_BELOW_S`` for short calls), and report medians.

Figures: milliseconds, effective GFLOP/s with forward flops ``2*T*B*(I+H)*G*H`` (G = 4 LSTM,
3 GRU, 1 RNN) and forward+backward counted as 3x forward, and the speed-up
``torch_time / rnnkit_time`` (> 1: rnnkit is faster). The float32 GEMM ceiling of the machine
(``numpy.matmul`` and ``torch.mm`` of 2048x2048 matrices) is printed as the reference point.

Usage::

    python bench/compare_torch.py                       # the default table (a few minutes)
    python bench/compare_torch.py --quick --shapes "20,4,32,32"   # smoke run
    python bench/compare_torch.py --markdown bench-results.md     # also write Markdown
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import math
import os
import platform
import shlex
import statistics
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rnnkit
from numpy.typing import NDArray

if TYPE_CHECKING:
    import torch

F32 = NDArray[np.float32]
Shape = tuple[int, int, int, int]  # (T, B, I, H)

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
CELL_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
DEFAULT_SHAPES: tuple[Shape, ...] = (
    (100, 64, 512, 512),
    (100, 8, 256, 256),
    (200, 1, 128, 128),
    (50, 128, 1024, 1024),
)
# Agreement check: max |rnnkit - torch| / max |torch| per array. Both sides compute in float32
# with different summation orders (and torch's oneDNN LSTM with its own GEMMs), so they agree
# to a few float32 ulps of the array's scale times the accumulated rounding of long sums.
OUTPUT_TOL = 1e-4
GRAD_TOL = 1e-3
GEMM_N = 2048
# Alternating libraries costs the first call after a switch: the other library's OpenMP
# threads are still spinning, its own pool has to wake up, the caches hold the other's data.
# On ~1 ms calls this added up to 25% (torch's oneDNN LSTM on 2 vCPUs) to strict alternation.
# Calls shorter than this therefore get one untimed call at the start of each turn.
SETTLE_BELOW_S = 0.05


# --------------------------------------------------------------------------- arguments
def default_threads() -> int:
    """The number of cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parse_shapes(text: str) -> list[Shape]:
    """Parse ``"T,B,I,H;T,B,I,H"`` into shapes."""
    shapes: list[Shape] = []
    for item in text.replace(" ", "").split(";"):
        if not item:
            continue
        parts = item.split(",")
        if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise argparse.ArgumentTypeError(
                f"a shape is four positive integers T,B,I,H; got {item!r}"
            )
        t, b, i, h = (int(p) for p in parts)
        shapes.append((t, b, i, h))
    if not shapes:
        raise argparse.ArgumentTypeError("no shape given")
    return shapes


def parse_cells(text: str) -> list[str]:
    """Parse ``"lstm,gru,rnn"`` (any case, any subset) into cell names."""
    cells = [c.strip().lower() for c in text.split(",") if c.strip()]
    unknown = [c for c in cells if c not in GATES]
    if unknown or not cells:
        raise argparse.ArgumentTypeError(
            f"cells are a comma-separated subset of {','.join(GATES)}; got {text!r}"
        )
    return list(dict.fromkeys(cells))


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Compare rnnkit's LSTM/GRU/RNN kernels with torch.nn on the CPU (float32).",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=default_threads(),
        help="threads for both libraries (default: the cores available, %(default)s here)",
    )
    parser.add_argument(
        "--reps",
        type=positive_int,
        default=5,
        help="minimum timed repetitions per library and measurement (default %(default)s)",
    )
    parser.add_argument(
        "--min-time",
        type=float,
        default=1.0,
        help="after --reps turns, keep taking turns until the timed calls of both add up to "
        "this many seconds, at most --max-reps turns (default %(default)s)",
    )
    parser.add_argument(
        "--max-reps",
        type=positive_int,
        default=200,
        help="upper bound on repetitions (default %(default)s)",
    )
    parser.add_argument(
        "--warmup",
        type=positive_int,
        default=1,
        help="untimed calls per library before each measurement (default %(default)s)",
    )
    parser.add_argument(
        "--cells",
        type=parse_cells,
        default=list(GATES),
        help="comma-separated cells among lstm,gru,rnn (default: all)",
    )
    parser.add_argument(
        "--shapes",
        type=parse_shapes,
        default=list(DEFAULT_SHAPES),
        help='semicolon-separated T,B,I,H shapes, e.g. "100,64,512,512;200,1,128,128" '
        "(default: " + ";".join(",".join(map(str, s)) for s in DEFAULT_SHAPES) + ")",
    )
    parser.add_argument(
        "--markdown", type=Path, metavar="PATH", help="also write the results as Markdown"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2 repetitions, no minimum time, 1 warm-up, 3 GEMM repetitions",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return parser


# --------------------------------------------------------------------------- environment
def import_torch() -> Any:
    """Import torch or exit with the install instruction."""
    try:
        import torch
    except ImportError:
        sys.exit(
            "compare_torch.py needs PyTorch (CPU build) to compare against: "
            'pip install ".[bench]"  (or: pip install torch==2.13.0)'
        )
    return torch


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return None


def loaded_openblas() -> dict[str, ctypes.CDLL]:
    """The OpenBLAS libraries loaded in this process: ``{"rnnkit": ..., "numpy": ...}``, each
    present when found (through /proc/self/maps, so on Linux only)."""
    import scipy_openblas32  # type: ignore[import-untyped]  # rnnkit's BLAS

    rnnkit_dir = Path(scipy_openblas32.get_lib_dir()).resolve()
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return {}
    paths = {line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1].lower()}
    found: dict[str, ctypes.CDLL] = {}
    for path in sorted(paths):
        resolved = Path(path).resolve()
        owner = "rnnkit" if resolved.is_relative_to(rnnkit_dir) else "numpy"
        if owner not in found:
            try:
                found[owner] = ctypes.CDLL(str(resolved))
            except OSError:
                continue
    return found


def openblas_function(lib: ctypes.CDLL, name: str) -> Any:
    """``name`` (e.g. ``openblas_get_corename``) under any of the symbol prefixes/suffixes of
    OpenBLAS builds (``scipy_`` prefix, ``64_`` suffix), or None."""
    for symbol in (f"scipy_{name}64_", f"{name}64_", f"scipy_{name}", name):
        fn = getattr(lib, symbol, None)
        if fn is not None:
            return fn
    return None


def set_numpy_blas_threads(n: int) -> bool:
    """Give numpy's OpenBLAS ``n`` threads (rnnkit's stays single-threaded: rnnkit runs its
    GEMMs inside its own thread pool). Returns whether it could be set."""
    lib = loaded_openblas().get("numpy")
    setter = None if lib is None else openblas_function(lib, "openblas_set_num_threads")
    if setter is None:
        return False
    setter(ctypes.c_int(n))
    return True


def blas_description() -> str:
    """OpenBLAS kernel families picked at run time (``OPENBLAS_CORETYPE`` can force them)."""
    parts = []
    for owner, lib in sorted(loaded_openblas().items(), reverse=True):
        fn = openblas_function(lib, "openblas_get_corename")
        if fn is not None:
            fn.restype = ctypes.c_char_p
            parts.append(f"{owner} OpenBLAS kernels {fn().decode()}")
    return ", ".join(parts) or "OpenBLAS kernels unknown"


ENV_PREFIXES = ("OPENBLAS_", "OMP_", "GOMP_", "KMP_", "MKL_", "DNNL_", "ONEDNN_")


def environment_description() -> str:
    """Environment variables that change threading or kernel choice."""
    items = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith(ENV_PREFIXES))
    return " ".join(items) if items else "(no OPENBLAS_/OMP_/MKL_/DNNL_ variables set)"


def gemm_gflops(matmul: Callable[[], object], reps: int) -> float:
    """Median GFLOP/s of a 2048^3 float32 GEMM."""
    matmul()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        matmul()
        times.append(time.perf_counter() - t0)
    return 2.0 * GEMM_N**3 / statistics.median(times) / 1e9


def gemm_ceiling(torch: Any, reps: int, seed: int) -> tuple[float, float]:
    """GFLOP/s of ``numpy.matmul`` and ``torch.mm`` on 2048x2048 float32 matrices."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((GEMM_N, GEMM_N), dtype=np.float32)
    b = rng.standard_normal((GEMM_N, GEMM_N), dtype=np.float32)
    c = np.empty_like(a)
    np_gflops = gemm_gflops(lambda: np.matmul(a, b, out=c), reps)
    ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
    torch_gflops = gemm_gflops(lambda: torch.mm(ta, tb, out=tc), reps)
    return np_gflops, torch_gflops


def header_lines(torch: Any, threads: int, numpy_threads_set: bool) -> list[str]:
    """Date, machine, versions, threads and the command line."""
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    mem = memory_gib()
    machine = f"{cpu_model()}, {os.cpu_count()} logical CPUs"
    if hasattr(os, "sched_getaffinity"):
        machine += f" ({len(os.sched_getaffinity(0))} available)"
    if mem is not None:
        machine += f", {mem:.1f} GiB RAM"
    py = f"{platform.python_implementation()} {platform.python_version()}"
    torch_backends = (
        f"mkldnn {'on' if torch.backends.mkldnn.is_available() else 'off'}, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )
    return [
        f"date: {now}",
        f"machine: {machine}, {platform.system()} {platform.release()}",
        f"python {py}, numpy {np.__version__}, torch {torch.__version__} ({torch_backends}), "
        f"rnnkit {rnnkit.__version__}",
        f"threads: {threads} (torch.get_num_threads()={torch.get_num_threads()}, "
        f"rnnkit.get_num_threads()={rnnkit.get_num_threads()}"
        + ("" if numpy_threads_set else "; numpy BLAS threads left at its default")
        + ")",
        f"BLAS: {blas_description()}",
        f"environment: {environment_description()}",
        f"command: {shlex.join(getattr(sys, 'orig_argv', [sys.executable, *sys.argv]))}",
    ]


# --------------------------------------------------------------------------- problems
def forward_flops(cell: str, shape: Shape) -> float:
    t, b, i, h = shape
    return 2.0 * t * b * (i + h) * GATES[cell] * h


@dataclass
class Problem:
    """One cell and shape, with the torch module and the same data as NumPy arrays."""

    cell: str
    shape: Shape
    module: torch.nn.Module
    x: F32  # [T, B, I]
    dy: F32  # [T, B, H]
    weights: tuple[F32, F32, F32, F32]  # w_ih, w_hh, b_ih, b_hh copied from the module
    x_torch: torch.Tensor  # shares memory with x
    x_grad: torch.Tensor  # a leaf copy of x that requires grad
    dy_torch: torch.Tensor


def make_problem(torch: Any, cell: str, shape: Shape, seed: int) -> Problem:
    t, b, i, h = shape
    torch.manual_seed(seed)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    kwargs = {"nonlinearity": "tanh"} if cell == "rnn" else {}
    module = cls(i, h, num_layers=1, bias=True, batch_first=False, dtype=torch.float32, **kwargs)
    names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    weights = tuple(np.ascontiguousarray(getattr(module, n).detach().numpy().copy()) for n in names)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((t, b, i), dtype=np.float32)
    dy = rng.standard_normal((t, b, h), dtype=np.float32)
    return Problem(
        cell=cell,
        shape=shape,
        module=module,
        x=x,
        dy=dy,
        weights=weights,  # type: ignore[arg-type]
        x_torch=torch.from_numpy(x),
        x_grad=torch.from_numpy(x.copy()).requires_grad_(True),
        dy_torch=torch.from_numpy(dy),
    )


# rnnkit -----------------------------------------------------------------------------------
def rnnkit_forward(p: Problem, training: bool) -> tuple[F32, F32, F32 | None, Any]:
    """``(y, h_n, c_n or None, cache)`` of rnnkit's forward on the problem."""
    if p.cell == "lstm":
        y, h_n, c_n, cache = rnnkit.lstm_forward(p.x, None, None, *p.weights, training=training)
        return y, h_n, c_n, cache
    if p.cell == "gru":
        y, h_n, cache = rnnkit.gru_forward(p.x, None, *p.weights, training=training)
    else:
        y, h_n, cache = rnnkit.rnn_forward(
            p.x, None, *p.weights, nonlinearity="tanh", training=training
        )
    return y, h_n, None, cache


def rnnkit_backward(p: Problem, cache: Any) -> tuple[F32, F32, F32]:
    """``(dx, dw_ih, dw_hh)`` of ``sum(y * dy)``."""
    if p.cell == "lstm":
        g = rnnkit.lstm_backward(p.dy, None, None, cache)
        return g.dx, g.dw_ih, g.dw_hh
    backward = rnnkit.gru_backward if p.cell == "gru" else rnnkit.rnn_backward
    s = backward(p.dy, None, cache)
    return s.dx, s.dw_ih, s.dw_hh


def rnnkit_inference(p: Problem) -> None:
    rnnkit_forward(p, training=False)


def rnnkit_train_step(p: Problem) -> None:
    rnnkit_backward(p, rnnkit_forward(p, training=True)[3])


# torch ------------------------------------------------------------------------------------
def torch_outputs(p: Problem, x: torch.Tensor) -> tuple[Any, Any, Any]:
    """``(y, h_n, c_n or None)`` of the torch module (``h_n``, ``c_n`` as ``[B, H]``)."""
    y, state = p.module(x)
    if p.cell == "lstm":
        return y, state[0][0], state[1][0]
    return y, state[0], None


def torch_inference(torch: Any, p: Problem) -> None:
    with torch.inference_mode():
        p.module(p.x_torch)


def torch_train_step(p: Problem) -> None:
    p.module.zero_grad(set_to_none=True)
    p.x_grad.grad = None
    y, _ = p.module(p.x_grad)
    y.backward(p.dy_torch)


# --------------------------------------------------------------------------- agreement check
def max_rel_err(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max |expected| (NaN/inf or different shapes give inf)."""
    if actual.shape != expected.shape:
        return math.inf
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    if not np.all(np.isfinite(diff)):
        return math.inf
    scale = float(np.max(np.abs(expected), initial=0.0))
    return float(np.max(diff, initial=0.0)) / max(scale, float(np.finfo(np.float32).tiny))


def check_agreement(torch: Any, p: Problem) -> dict[str, float]:
    """Compare rnnkit with torch on the problem; exit with a message on any disagreement.

    Returns the relative error of every compared array.
    """
    errors: dict[str, float] = {}
    tols: dict[str, float] = {}

    def compare(name: str, mine: np.ndarray, theirs: Any, tol: float) -> None:
        expected = theirs.detach().numpy()
        if mine.shape != expected.shape:
            sys.exit(f"ABORT: {name} has shape {mine.shape} in rnnkit, {expected.shape} in torch")
        errors[name] = max_rel_err(mine, expected)
        tols[name] = tol

    with torch.inference_mode():
        t_y, t_h, t_c = torch_outputs(p, p.x_torch)
    y, h_n, c_n, _ = rnnkit_forward(p, training=False)
    compare("y (inference)", y, t_y, OUTPUT_TOL)
    compare("h_n (inference)", h_n, t_h, OUTPUT_TOL)
    if c_n is not None:
        compare("c_n (inference)", c_n, t_c, OUTPUT_TOL)

    p.module.zero_grad(set_to_none=True)
    p.x_grad.grad = None
    t_y, t_h, t_c = torch_outputs(p, p.x_grad)
    t_y.backward(p.dy_torch)
    y, h_n, c_n, cache = rnnkit_forward(p, training=True)
    dx, dw_ih, dw_hh = rnnkit_backward(p, cache)
    compare("y", y, t_y, OUTPUT_TOL)
    compare("h_n", h_n, t_h, OUTPUT_TOL)
    if c_n is not None:
        compare("c_n", c_n, t_c, OUTPUT_TOL)
    mod = p.module
    compare("dx", dx, p.x_grad.grad, GRAD_TOL)
    compare("dw_ih", dw_ih, mod.weight_ih_l0.grad, GRAD_TOL)
    compare("dw_hh", dw_hh, mod.weight_hh_l0.grad, GRAD_TOL)

    bad = [k for k, e in errors.items() if not e <= tols[k]]
    if bad:
        lines = [
            f"  {k}: max|rnnkit - torch| / max|torch| = {errors[k]:.3g} > {tols[k]:g}" for k in bad
        ]
        sys.exit(
            f"ABORT: rnnkit and torch disagree for {CELL_NAMES[p.cell]} "
            f"T,B,I,H={','.join(map(str, p.shape))}; stopping the benchmark:\n" + "\n".join(lines)
        )
    return errors


# --------------------------------------------------------------------------- timing
@dataclass
class Timing:
    """Interleaved samples (seconds) of rnnkit and torch for one measurement."""

    rnnkit: list[float] = field(default_factory=list)
    torch: list[float] = field(default_factory=list)
    settle_rnnkit: bool = False  #: an untimed call preceded each timed rnnkit call
    settle_torch: bool = False  #: an untimed call preceded each timed torch call

    @property
    def rnnkit_s(self) -> float:
        return statistics.median(self.rnnkit)

    @property
    def torch_s(self) -> float:
        return statistics.median(self.torch)

    @property
    def speedup(self) -> float:
        """torch time / rnnkit time: > 1 means rnnkit is faster."""
        return self.torch_s / self.rnnkit_s


def _clock(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_interleaved(
    run_rnnkit: Callable[[], None],
    run_torch: Callable[[], None],
    *,
    reps: int,
    max_reps: int,
    min_time: float,
    warmup: int,
) -> Timing:
    """Warm up both, then take turns (rnnkit, torch, rnnkit, torch, ...), timing one call of
    each library per turn.

    A library whose calls are shorter than ``SETTLE_BELOW_S`` makes one untimed call at the
    start of each of its turns. Runs at least ``reps`` turns, then more (at most ``max_reps``)
    until the timed calls of both add up to ``min_time`` seconds.
    """
    t_rnnkit = t_torch = math.inf  # fastest warm-up call of each
    for _ in range(warmup):
        t_rnnkit = min(t_rnnkit, _clock(run_rnnkit))
        t_torch = min(t_torch, _clock(run_torch))
    timing = Timing(settle_rnnkit=t_rnnkit < SETTLE_BELOW_S, settle_torch=t_torch < SETTLE_BELOW_S)
    spent = 0.0
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while len(timing.torch) < reps or (spent < min_time and len(timing.torch) < max_reps):
            if timing.settle_rnnkit:
                run_rnnkit()
            timing.rnnkit.append(_clock(run_rnnkit))
            if timing.settle_torch:
                run_torch()
            timing.torch.append(_clock(run_torch))
            spent += timing.rnnkit[-1] + timing.torch[-1]
    finally:
        if gc_was_enabled:
            gc.enable()
    return timing


@dataclass
class Row:
    cell: str
    shape: Shape
    forward: Timing
    train: Timing

    @property
    def flops(self) -> float:
        return forward_flops(self.cell, self.shape)


# --------------------------------------------------------------------------- reporting
def fmt_ms_gflops(seconds: float, flops: float) -> str:
    ms = seconds * 1e3
    gflops = flops / seconds / 1e9
    ms_text = f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"
    gflops_text = f"{gflops:.0f}" if gflops >= 10 else f"{gflops:.2g}"
    return f"{ms_text} / {gflops_text}"


TABLE_COLUMNS = (
    "cell",
    "T,B,I,H",
    "rnnkit fwd",
    "torch fwd",
    "fwd speed-up",
    "rnnkit fwd+bwd",
    "torch fwd+bwd",
    "fwd+bwd speed-up",
)


def table_rows(rows: Sequence[Row]) -> list[list[str]]:
    out = []
    for r in rows:
        out.append(
            [
                CELL_NAMES[r.cell],
                ",".join(map(str, r.shape)),
                fmt_ms_gflops(r.forward.rnnkit_s, r.flops),
                fmt_ms_gflops(r.forward.torch_s, r.flops),
                f"{r.forward.speedup:.2f}x",
                fmt_ms_gflops(r.train.rnnkit_s, 3 * r.flops),
                fmt_ms_gflops(r.train.torch_s, 3 * r.flops),
                f"{r.train.speedup:.2f}x",
            ]
        )
    return out


def text_table(rows: Sequence[Row]) -> str:
    body = table_rows(rows)
    widths = [max(len(c), *(len(r[k]) for r in body)) for k, c in enumerate(TABLE_COLUMNS)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.ljust(w) if k < 2 else c.rjust(w)  # names left, numbers right
            for k, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(TABLE_COLUMNS), rule, *(line(r) for r in body)])


def markdown(rows: Sequence[Row], header: Sequence[str], ceiling: str, notes: str) -> str:
    body = table_rows(rows)
    md = ["# rnnkit vs torch.nn (CPU, float32)", ""]
    md += [f"- {h}" for h in header]
    md += [f"- {ceiling}", "", notes, ""]
    md.append("| " + " | ".join(TABLE_COLUMNS) + " |")
    md.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(TABLE_COLUMNS) - 2)) + "|")
    md += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(md) + "\n"


NOTES = (
    "Each entry: median milliseconds / effective GFLOP/s (forward flops 2·T·B·(I+H)·G·H, "
    "G = 4 LSTM, 3 GRU, 1 RNN; forward+backward counted as 3x forward). Speed-up = torch "
    "time / rnnkit time (> 1: rnnkit faster). Forward: rnnkit training=False vs torch under "
    "inference_mode(); fwd+bwd: rnnkit forward(training=True) + backward(dy) vs torch forward "
    "+ y.backward(dy) with x.requires_grad. After a warm-up the libraries take turns (rnnkit, "
    f"torch, rnnkit, ...), one timed call each per turn, calls under {SETTLE_BELOW_S * 1e3:.0f} ms "
    "preceded by an untimed one in each turn."
)


def describe(t: Timing) -> str:
    lo_r, hi_r = min(t.rnnkit), max(t.rnnkit)
    lo_t, hi_t = min(t.torch), max(t.torch)
    settled = {
        (True, True): " (each after an untimed call)",
        (True, False): " (rnnkit's each after an untimed call)",
        (False, True): " (torch's each after an untimed call)",
        (False, False): "",
    }[t.settle_rnnkit, t.settle_torch]
    return (
        f"rnnkit {t.rnnkit_s * 1e3:.2f} ms [{lo_r * 1e3:.2f}-{hi_r * 1e3:.2f}], "
        f"torch {t.torch_s * 1e3:.2f} ms [{lo_t * 1e3:.2f}-{hi_t * 1e3:.2f}], "
        f"{len(t.rnnkit)} reps{settled}, speed-up {t.speedup:.2f}x"
    )


# --------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.reps, args.min_time, args.warmup = 2, 0.0, 1
    torch = import_torch()

    torch.set_num_threads(args.threads)
    rnnkit.set_num_threads(args.threads)
    numpy_threads_set = set_numpy_blas_threads(args.threads)

    header = header_lines(torch, args.threads, numpy_threads_set)
    print("\n".join(header), flush=True)

    gemm_reps = 3 if args.quick else 7
    np_gemm, torch_gemm = gemm_ceiling(torch, gemm_reps, args.seed)
    ceiling = (
        f"float32 GEMM ceiling ({GEMM_N}x{GEMM_N}x{GEMM_N}, median of {gemm_reps}): "
        f"numpy.matmul {np_gemm:.0f} GFLOP/s, torch.mm {torch_gemm:.0f} GFLOP/s"
    )
    print(ceiling, flush=True)
    print(flush=True)

    def measure(run_rnnkit: Callable[[], None], run_torch: Callable[[], None]) -> Timing:
        return time_interleaved(
            run_rnnkit,
            run_torch,
            reps=args.reps,
            max_reps=max(args.max_reps, args.reps),
            min_time=args.min_time,
            warmup=args.warmup,
        )

    rows: list[Row] = []
    for shape in args.shapes:
        for cell in args.cells:
            label = f"{CELL_NAMES[cell]:4} {','.join(map(str, shape))}"
            p = make_problem(torch, cell, shape, args.seed)
            errors = check_agreement(torch, p)
            worst = max(errors, key=lambda k: errors[k])
            print(f"{label}: outputs and gradients agree (worst: {worst} {errors[worst]:.1e})")
            fwd = measure(partial(rnnkit_inference, p), partial(torch_inference, torch, p))
            print(f"{label}: fwd      {describe(fwd)}", flush=True)
            train = measure(partial(rnnkit_train_step, p), partial(torch_train_step, p))
            print(f"{label}: fwd+bwd  {describe(train)}", flush=True)
            rows.append(Row(cell, shape, fwd, train))
            del p

    print()
    print(textwrap.fill(NOTES, width=100))
    print()
    print(text_table(rows))
    if args.markdown is not None:
        args.markdown.write_text(markdown(rows, header, ceiling, NOTES))
        print(f"\nwrote {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
