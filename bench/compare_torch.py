#!/usr/bin/env python3
"""Side-by-side CPU benchmark of rnnkit's sequence kernels against ``torch.nn.LSTM/GRU/RNN``.

For every cell (LSTM, GRU, tanh RNN) and shape ``(T, B, I, H)``, in one process, with the same
thread count for both libraries (``torch.set_num_threads`` and ``rnnkit.set_num_threads``):

1. build a float32 (``--dtype float64``: float64) ``torch.nn`` module, copy its
   ``weight_ih_l0``/``weight_hh_l0``/``bias_ih_l0``/``bias_hh_l0`` into NumPy arrays for
   rnnkit, and draw ``x`` and ``dy``;
2. check that both compute the same thing: outputs ``y``, ``h_n`` (and ``c_n``) in inference
   and training mode, gradients ``dx``, ``dw_ih``, ``dw_hh``, ``db_ih``, ``db_hh`` of
   ``sum(y * dy)``, each within a float32 (float64) tolerance relative to the array's
   largest magnitude; abort if not;
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
    python bench/compare_torch.py --dtype float64                 # both libraries in float64
"""

from __future__ import annotations

import argparse
import statistics
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import rnnkit
from rnnkit.bench._common import (
    CELL_NAMES,
    GATES,
    GEMM_N,
    SETTLE_BELOW_S,
    Shape,
    check_agreement,
    default_threads,
    fmt_ms_gflops,
    forward_flops,
    gemm_ceiling,
    header_lines,
    import_torch,
    interleave,
    make_problem,
    markdown_table,
    parse_cells,
    parse_shapes,
    positive_int,
    rnnkit_inference,
    rnnkit_train_step,
    set_numpy_blas_threads,
    torch_inference,
    torch_train_step,
)
from rnnkit.bench._common import text_table as _text_table

DEFAULT_SHAPES: tuple[Shape, ...] = (
    (100, 64, 512, 512),
    (100, 8, 256, 256),
    (200, 1, 128, 128),
    (50, 128, 1024, 1024),
)


# --------------------------------------------------------------------------- arguments
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Compare rnnkit's LSTM/GRU/RNN kernels with torch.nn on the CPU.",
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
    parser.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float32",
        help="dtype of both libraries' weights and data (default float32)",
    )
    return parser


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
    each library per turn (:func:`_common.interleave`).

    A library whose calls are shorter than ``SETTLE_BELOW_S`` makes one untimed call at the
    start of each of its turns. Runs at least ``reps`` turns, then more (at most ``max_reps``)
    until the timed calls of both add up to ``min_time`` seconds.
    """
    s = interleave(
        {"rnnkit": run_rnnkit, "torch": run_torch},
        reps=reps,
        max_reps=max_reps,
        min_time=min_time,
        warmup=warmup,
    )
    return Timing(
        rnnkit=s["rnnkit"].times,
        torch=s["torch"].times,
        settle_rnnkit=s["rnnkit"].settle,
        settle_torch=s["torch"].settle,
    )


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
    return _text_table(TABLE_COLUMNS, table_rows(rows))


def markdown(
    rows: Sequence[Row], header: Sequence[str], ceiling: str, notes: str, dtype: str
) -> str:
    md = [f"# rnnkit vs torch.nn (CPU, {dtype})", ""]
    md += [f"- {h}" for h in header]
    md += [f"- {ceiling}", "", notes, ""]
    md.append(markdown_table(TABLE_COLUMNS, table_rows(rows)))
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

    header = [*header_lines(torch, args.threads, numpy_threads_set), f"dtype: {args.dtype}"]
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
            p = make_problem(torch, cell, shape, args.seed, np.dtype(args.dtype).type)
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
        args.markdown.write_text(markdown(rows, header, ceiling, NOTES, args.dtype))
        print(f"\nwrote {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
