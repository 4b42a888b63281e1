"""What the benchmarks share (``rnnkit.bench.compare``, ``bench/compare_torch.py``).

* argument parsing helpers (shapes ``T,B,I,H``, cells, positive integers);
* the machine header: CPU, memory, versions, threads, OpenBLAS kernel families, environment
  variables that change threading or kernel choice, and the float32 GEMM ceiling;
* the single-layer problem (:class:`Problem`): a ``torch.nn`` module and the same weights,
  input and output gradient as NumPy arrays for rnnkit's kernels, with the agreement check;
* interleaved timing of several contenders (:func:`interleave`) and formatting.

Part of the package so that ``rnnkit bench`` runs from an installed rnnkit; the scripts in
``bench/`` import it from here.
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
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

import rnnkit

if TYPE_CHECKING:
    import torch

F32 = NDArray[np.float32]
Shape = tuple[int, int, int, int]  # (T, B, I, H)

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
CELL_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
# Agreement check: max |rnnkit - peer| / max |peer| per array. Both sides compute in float32
# with different summation orders (and torch's oneDNN LSTM with its own GEMMs), so they agree
# to a few float32 ulps of the array's scale times the accumulated rounding of long sums.
OUTPUT_TOL = 1e-4
GRAD_TOL = 1e-3
# The same in float64 (``make_problem(dtype=np.float64)``): a few float64 ulps, likewise.
OUTPUT_TOL_F64 = 1e-12
GRAD_TOL_F64 = 1e-11
GEMM_N = 2048
# Alternating libraries costs the first call after a switch: the other library's OpenMP
# threads are still spinning, its own pool has to wake up, the caches hold the other's data.
# On ~1 ms calls this added up to 25% (torch's oneDNN LSTM on 2 vCPUs) to strict alternation.
# Calls shorter than this therefore get one untimed call at the start of each turn.
SETTLE_BELOW_S = 0.05
# The machine's environment may force OpenBLAS kernels (BENCHMARKS.md): benchmarks unset these.
FORCED_BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# --------------------------------------------------------------------------- arguments
def default_threads() -> int:
    """The number of cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parse_shape(text: str) -> Shape:
    """Parse ``"T,B,I,H"`` (four positive integers) into a shape."""
    parts = text.replace(" ", "").split(",")
    if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"a shape is four positive integers T,B,I,H; got {text!r}")
    t, b, i, h = (int(p) for p in parts)
    return (t, b, i, h)


def parse_shapes(text: str) -> list[Shape]:
    """Parse ``"T,B,I,H;T,B,I,H"`` into shapes."""
    shapes = [parse_shape(item) for item in text.replace(" ", "").split(";") if item]
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
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def shape_text(shape: Sequence[int]) -> str:
    """``(100, 64, 512, 512)`` as ``"100,64,512,512"``."""
    return ",".join(map(str, shape))


# --------------------------------------------------------------------------- environment
def import_torch() -> Any:
    """Import torch or exit with the install instruction."""
    try:
        import torch
    except ImportError:
        sys.exit(
            f"{Path(sys.argv[0]).name} needs PyTorch (CPU build) to compare against: "
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
    """Total RAM in GiB (Linux), or None."""
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


def forced_blas_note() -> str | None:
    """A warning when the environment forces OpenBLAS kernels (see BENCHMARKS.md), else None."""
    forced = [v for v in FORCED_BLAS_VARIABLES if v in os.environ]
    if not forced:
        return None
    unset = " ".join(f"-u {v}" for v in FORCED_BLAS_VARIABLES)
    return (
        f"NOTE: {', '.join(forced)} set: OpenBLAS may run kernels older than this CPU's; "
        f"benchmark with `env {unset} python ...` (BENCHMARKS.md)"
    )


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


def header_lines(
    torch: Any, threads: int, numpy_threads_set: bool, extra_versions: Sequence[str] = ()
) -> list[str]:
    """Date, machine, versions (``extra_versions`` appended, e.g. ``"onnxruntime 1.32.0"``),
    threads, BLAS kernels, environment and the command line; a warning line at the end when
    the environment forces OpenBLAS kernels."""
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    mem = memory_gib()
    machine = f"{cpu_model()}, {os.cpu_count()} logical CPUs"
    if hasattr(os, "sched_getaffinity"):
        machine += f" ({len(os.sched_getaffinity(0))} available)"
    if mem is not None:
        machine += f", {mem:.1f} GiB RAM"
    py = f"{platform.python_implementation()} {platform.python_version()}"
    mkldnn = torch.backends.mkldnn
    torch_backends = (
        f"mkldnn {'on' if mkldnn.is_available() and mkldnn.enabled else 'off'}, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )
    versions = [
        f"numpy {np.__version__}",
        f"torch {torch.__version__} ({torch_backends})",
        f"rnnkit {rnnkit.__version__}",
        *extra_versions,
    ]
    lines = [
        f"date: {now}",
        f"machine: {machine}, {platform.system()} {platform.release()}",
        f"python {py}, " + ", ".join(versions),
        f"threads: {threads} (torch.get_num_threads()={torch.get_num_threads()}, "
        f"rnnkit.get_num_threads()={rnnkit.get_num_threads()}"
        + ("" if numpy_threads_set else "; numpy BLAS threads left at its default")
        + ")",
        f"BLAS: {blas_description()}",
        f"environment: {environment_description()}",
        f"command: {shlex.join(getattr(sys, 'orig_argv', [sys.executable, *sys.argv]))}",
    ]
    note = forced_blas_note()
    return lines if note is None else [*lines, note]


# --------------------------------------------------------------------------- problems
def forward_flops(cell: str, shape: Shape) -> float:
    """Effective flops of one forward: ``2*T*B*(I+H)*G*H``."""
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


def torch_module(
    torch: Any, cell: str, input_size: int, hidden_size: int, dtype: Any = None, **kwargs: Any
) -> Any:
    """A ``torch.nn.LSTM/GRU/RNN`` (tanh) with ``kwargs`` (``num_layers`` ...), in float32
    unless ``dtype`` (a torch dtype) says otherwise."""
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    if cell == "rnn":
        kwargs.setdefault("nonlinearity", "tanh")
    return cls(input_size, hidden_size, dtype=dtype or torch.float32, **kwargs)


def make_problem(
    torch: Any, cell: str, shape: Shape, seed: int, dtype: type = np.float32
) -> Problem:
    """The torch module (seeded), its weights as NumPy arrays, ``x`` and ``dy``, all in
    ``dtype`` (np.float32 or np.float64)."""
    t, b, i, h = shape
    torch.manual_seed(seed)
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    module = torch_module(
        torch, cell, i, h, dtype=torch_dtype, num_layers=1, bias=True, batch_first=False
    )
    names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    weights = tuple(np.ascontiguousarray(getattr(module, n).detach().numpy().copy()) for n in names)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((t, b, i), dtype=dtype)
    dy = rng.standard_normal((t, b, h), dtype=dtype)
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


def rnnkit_backward(p: Problem, cache: Any) -> tuple[F32, F32, F32, F32, F32]:
    """``(dx, dw_ih, dw_hh, db_ih, db_hh)`` of ``sum(y * dy)``."""
    if p.cell == "lstm":
        g: Any = rnnkit.lstm_backward(p.dy, None, None, cache)
    else:
        backward = rnnkit.gru_backward if p.cell == "gru" else rnnkit.rnn_backward
        g = backward(p.dy, None, cache)
    return g.dx, g.dw_ih, g.dw_hh, g.db_ih, g.db_hh


def rnnkit_inference(p: Problem) -> None:
    """rnnkit's forward in inference mode (``training=False``)."""
    rnnkit_forward(p, training=False)


def rnnkit_train_step(p: Problem) -> None:
    """rnnkit's forward (``training=True``) then backward of ``dy``."""
    rnnkit_backward(p, rnnkit_forward(p, training=True)[3])


# torch ------------------------------------------------------------------------------------
def torch_outputs(p: Problem, x: torch.Tensor) -> tuple[Any, Any, Any]:
    """``(y, h_n, c_n or None)`` of the torch module (``h_n``, ``c_n`` as ``[B, H]``)."""
    y, state = p.module(x)
    if p.cell == "lstm":
        return y, state[0][0], state[1][0]
    return y, state[0], None


def torch_inference(torch: Any, p: Problem) -> None:
    """torch's forward under ``torch.inference_mode()``."""
    with torch.inference_mode():
        p.module(p.x_torch)


def torch_train_step(p: Problem) -> None:
    """torch's forward with ``x.requires_grad`` then ``y.backward(dy)``."""
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


class Agreement:
    """Collects ``max_rel_err`` of rnnkit's arrays against a peer's, with tolerances."""

    def __init__(self, peer: str = "torch") -> None:
        self.peer = peer
        self.errors: dict[str, float] = {}
        self.tols: dict[str, float] = {}

    def compare(self, name: str, mine: np.ndarray, theirs: Any, tol: float) -> None:
        """Record the error of ``mine`` against ``theirs`` (an array or a torch tensor);
        exit at once on a shape mismatch."""
        expected = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
        if mine.shape != expected.shape:
            sys.exit(
                f"ABORT: {name} has shape {mine.shape} in rnnkit, {expected.shape} in {self.peer}"
            )
        self.errors[name] = max_rel_err(mine, expected)
        self.tols[name] = tol

    def check(self, what: str) -> dict[str, float]:
        """Exit with a message if any error is over its tolerance; else return the errors."""
        bad = [k for k, e in self.errors.items() if not e <= self.tols[k]]
        if bad:
            lines = [
                f"  {k}: max|rnnkit - {self.peer}| / max|{self.peer}| = {self.errors[k]:.3g} "
                f"> {self.tols[k]:g}"
                for k in bad
            ]
            sys.exit(
                f"ABORT: rnnkit and {self.peer} disagree for {what}; stopping the benchmark:\n"
                + "\n".join(lines)
            )
        return dict(self.errors)

    def worst(self) -> str:
        """``"NAME ERR"`` of the largest error relative to its tolerance."""
        if not self.errors:
            return "nothing compared"
        k = max(self.errors, key=lambda n: self.errors[n] / self.tols[n])
        return f"{k} {self.errors[k]:.1e}"


def check_agreement(torch: Any, p: Problem) -> dict[str, float]:
    """Compare rnnkit with torch on the problem; exit with a message on any disagreement.

    Returns the relative error of every compared array.
    """
    a = Agreement("torch")
    f64 = p.x.dtype == np.float64
    output_tol, grad_tol = (OUTPUT_TOL_F64, GRAD_TOL_F64) if f64 else (OUTPUT_TOL, GRAD_TOL)
    with torch.inference_mode():
        t_y, t_h, t_c = torch_outputs(p, p.x_torch)
    y, h_n, c_n, _ = rnnkit_forward(p, training=False)
    a.compare("y (inference)", y, t_y, output_tol)
    a.compare("h_n (inference)", h_n, t_h, output_tol)
    if c_n is not None:
        a.compare("c_n (inference)", c_n, t_c, output_tol)

    p.module.zero_grad(set_to_none=True)
    p.x_grad.grad = None
    t_y, t_h, t_c = torch_outputs(p, p.x_grad)
    t_y.backward(p.dy_torch)
    y, h_n, c_n, cache = rnnkit_forward(p, training=True)
    dx, dw_ih, dw_hh, db_ih, db_hh = rnnkit_backward(p, cache)
    a.compare("y", y, t_y, output_tol)
    a.compare("h_n", h_n, t_h, output_tol)
    if c_n is not None:
        a.compare("c_n", c_n, t_c, output_tol)
    mod = p.module
    a.compare("dx", dx, p.x_grad.grad, grad_tol)
    a.compare("dw_ih", dw_ih, mod.weight_ih_l0.grad, grad_tol)
    a.compare("dw_hh", dw_hh, mod.weight_hh_l0.grad, grad_tol)
    a.compare("db_ih", db_ih, mod.bias_ih_l0.grad, grad_tol)
    a.compare("db_hh", db_hh, mod.bias_hh_l0.grad, grad_tol)
    return a.check(f"{CELL_NAMES[p.cell]} T,B,I,H={shape_text(p.shape)}")


# --------------------------------------------------------------------------- timing
@dataclass
class Samples:
    """The timed calls (seconds) of one contender in an interleaved measurement."""

    times: list[float] = field(default_factory=list)
    settle: bool = False  #: an untimed call preceded each timed call

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def clock(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleave(
    runs: Mapping[str, Callable[[], object]],
    *,
    reps: int,
    max_reps: int,
    min_time: float,
    warmup: int,
    before: Mapping[str, Callable[[], None]] | None = None,
    after: Mapping[str, Callable[[], None]] | None = None,
    settle_all: bool = False,
) -> dict[str, Samples]:
    """Warm up every contender, then take turns in the order of ``runs`` (a, b, c, a, b, c,
    ...), timing one call of each per turn.

    A contender whose calls are shorter than ``SETTLE_BELOW_S`` makes one untimed call at the
    start of each of its turns. Runs at least ``reps`` turns, then more (at most ``max_reps``)
    until the timed calls add up to ``min_time`` seconds. ``before[name]`` runs (untimed) at
    the start of each of that contender's turns and before its warm-up calls (to set a thread
    count, say); ``after[name]`` right after each of its timed calls (to check the output).
    ``settle_all`` makes every turn start with an untimed call, whatever the call's length.
    Garbage collection is off while timing.
    """
    before = before or {}
    after = after or {}
    fastest = dict.fromkeys(runs, math.inf)
    for _ in range(warmup):
        for name, fn in runs.items():
            if name in before:
                before[name]()
            fastest[name] = min(fastest[name], clock(fn))
    samples = {name: Samples(settle=settle_all or fastest[name] < SETTLE_BELOW_S) for name in runs}
    spent = 0.0
    turns = 0
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while turns < reps or (spent < min_time and turns < max_reps):
            for name, fn in runs.items():
                if name in before:
                    before[name]()
                if samples[name].settle:
                    fn()
                t = clock(fn)
                samples[name].times.append(t)
                spent += t
                if name in after:
                    after[name]()
            turns += 1
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


# --------------------------------------------------------------------------- formatting
def fmt_ms(seconds: float) -> str:
    """Milliseconds with 3 significant digits or one decimal."""
    ms = seconds * 1e3
    return f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def fmt_gflops(gflops: float) -> str:
    return f"{gflops:.0f}" if gflops >= 10 else f"{gflops:.2g}"


def fmt_ms_gflops(seconds: float, flops: float) -> str:
    """``"ms / GFLOP/s"``."""
    return f"{fmt_ms(seconds)} / {fmt_gflops(flops / seconds / 1e9)}"


def text_table(columns: Sequence[str], body: Sequence[Sequence[str]], left: int = 2) -> str:
    """A plain-text table: the first ``left`` columns left-aligned, the others right-aligned."""
    widths = [max(len(c), *(len(r[k]) for r in body)) for k, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.ljust(w) if k < left else c.rjust(w)
            for k, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(columns), rule, *(line(r) for r in body)])


def markdown_table(columns: Sequence[str], body: Sequence[Sequence[str]], left: int = 2) -> str:
    """A Markdown table: the first ``left`` columns left-aligned, the others right-aligned."""
    md = ["| " + " | ".join(columns) + " |"]
    md.append("|" + "|".join(["---"] * left + ["---:"] * (len(columns) - left)) + "|")
    md += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(md)


# --------------------------------------------------------------------------- small scripts
def side_by_side_parser(
    description: str, *, reps: int, max_reps: int, min_time: float
) -> argparse.ArgumentParser:
    """The options every small side-by-side script takes: ``--threads``, ``--reps``,
    ``--max-reps``, ``--min-time`` (see :func:`interleave`), ``--seed`` and ``--markdown``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=positive_int, default=default_threads())
    parser.add_argument("--reps", type=positive_int, default=reps, help="minimum timed turns")
    parser.add_argument("--max-reps", type=positive_int, default=max_reps)
    parser.add_argument(
        "--min-time",
        type=float,
        default=min_time,
        help="seconds of timed calls (all contenders together)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    return parser


def run_side_by_side(
    args: argparse.Namespace,
    header: Sequence[str],
    cases: Iterable[Any],
    run_case: Callable[[Any, Any, argparse.Namespace], list[str]],
) -> None:
    """Sets every library's threads, runs ``run_case(torch, case, args)`` for each case (a
    table row, printed as it comes), then prints the environment and the Markdown table and,
    with ``--markdown``, writes them there."""
    torch = import_torch()
    torch.set_num_threads(args.threads)
    rnnkit.set_num_threads(args.threads)
    set_numpy_blas_threads(args.threads)
    rows = []
    for case in cases:
        rows.append(run_case(torch, case, args))
        print(" | ".join(rows[-1]), flush=True)
    table = markdown_table(header, rows)
    lines = "\n".join(f"- {line}" for line in header_lines(torch, args.threads, True))
    print(f"\n{lines}\n\n{table}")
    if args.markdown:
        args.markdown.write_text(f"{lines}\n\n{table}\n")
