#!/usr/bin/env python3
"""rnnkit's CUDA backend against cuDNN (``torch.nn.LSTM/GRU/RNN`` on the GPU), issue 8.

One process, one GPU, float32 (``--dtype float64`` for double). Both libraries get the same
weights and inputs as torch CUDA tensors: rnnkit through its functional API (the kernels,
no module overhead), cuDNN through ``torch.nn`` modules. Before anything is timed, outputs and
gradients must agree (relative 1e-3 in float32), or that row is not timed (and the exit status
is 1). TF32 is off for both
(``torch.backends.cudnn.allow_tf32 = False``; rnnkit's default) unless ``--tf32`` turns it on
for both.

Timing: CUDA events around each call on torch's current stream, after a warm-up; the two
libraries take turns (rnnkit, cuDNN, rnnkit, ...) for at least ``--reps`` (20) turns and
about ``--min-time`` seconds; medians. Forward is rnnkit ``training=False`` against torch
under ``inference_mode()``; forward+backward is rnnkit forward ``training=True`` and
``*_backward(dy)`` against torch's forward and ``y.backward(dy)`` with ``x`` and the weights
requiring gradients. Where rnnkit's forward would run as one persistent kernel (batches up
to ``rnnkit.cuda.persistent_max_batch()``, small enough steps), it also runs with that kernel
off (``set_persistent_max_batch(0)``): the "stepwise" column, so the table shows what it
gains.

Shapes (T, B, I, H): the CPU benchmark's (100,64,512,512), (50,128,1024,1024),
(100,8,256,256), (200,1,128,128), then T = 100 with B in {1, 8, 64, 256} and I = H in
{256, 512, 1024}. Targets (issue 8): fwd+bwd >= 1.0x cuDNN for B >= 64 and H >= 512; forward
>= 1.5x cuDNN for B <= 8.

    python bench/cuda_compare.py --markdown cuda.md          # all cells and shapes
    python bench/cuda_compare.py --cells lstm --shapes "100,8,256,256"
    python bench/cuda_compare.py --quick                      # smoke run, not a measurement
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import rnnkit
from rnnkit import cuda as rcuda

DEFAULT_SHAPES = [
    (100, 64, 512, 512),
    (50, 128, 1024, 1024),
    (100, 8, 256, 256),
    (200, 1, 128, 128),
]
DEFAULT_SHAPES += [(100, b, h, h) for h in (256, 512, 1024) for b in (1, 8, 64, 256)]


@dataclass
class Row:
    cell: str
    shape: tuple[int, int, int, int]
    fwd_ours: float
    fwd_cudnn: float
    train_ours: float
    train_cudnn: float
    fwd_stepwise: float | None

    @property
    def fwd_ratio(self) -> float:
        return self.fwd_cudnn / self.fwd_ours

    @property
    def train_ratio(self) -> float:
        return self.train_cudnn / self.train_ours


def parse_shapes(text: str) -> list[tuple[int, int, int, int]]:
    shapes = []
    for part in text.split(";"):
        values = tuple(int(v) for v in part.split(","))
        if len(values) != 4 or min(values) <= 0:
            raise argparse.ArgumentTypeError(
                f"a shape is T,B,I,H with positive sizes, got {part!r}"
            )
        shapes.append(values)
    return shapes  # type: ignore[return-value]


def time_turns(
    fns: list[Callable[[], Any]], torch: Any, reps: int, min_time: float, warmup: int
) -> list[float]:
    """Median milliseconds of each function, taking turns."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    torch.cuda.synchronize()
    samples: list[list[float]] = [[] for _ in fns]
    start = time.perf_counter()
    turns = 0
    while turns < reps or (time.perf_counter() - start < min_time and turns < 1000):
        for i, fn in enumerate(fns):
            begin = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            begin.record()
            fn()
            end.record()
            end.synchronize()
            samples[i].append(begin.elapsed_time(end))
        turns += 1
    return [statistics.median(s) for s in samples]


def measure(
    cell: str, shape: tuple[int, int, int, int], args: argparse.Namespace, torch: Any
) -> Row | None:
    """Times one cell and shape, or returns None (after saying why) when the results of the
    two libraries disagree."""
    T, B, I, H = shape  # noqa: E741
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(args.seed)
    module_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    module = module_cls(I, H).to(device="cuda", dtype=dtype)
    weights = [
        p.detach()
        for p in (module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0)
    ]
    x = torch.randn(T, B, I, device="cuda", dtype=dtype)
    dy = torch.randn(T, B, H, device="cuda", dtype=dtype)
    forward = getattr(rnnkit, f"{cell}_forward")
    backward = getattr(rnnkit, f"{cell}_backward")
    states: tuple[Any, ...] = (None, None) if cell == "lstm" else (None,)

    def ours_forward() -> Any:
        return forward(x, *states, *weights, training=False)

    def ours_train() -> Any:
        out = forward(x, *states, *weights, training=True)
        if cell == "lstm":
            return backward(dy, None, None, out.cache)
        return backward(dy, None, out.cache)

    def cudnn_forward() -> Any:
        with torch.inference_mode():
            return module(x)

    xg = x.clone().requires_grad_(True)

    def cudnn_train() -> Any:
        module.zero_grad(set_to_none=True)
        xg.grad = None
        y, _ = module(xg)
        y.backward(dy)
        return xg.grad

    # Agreement before timing.
    ours = forward(x, *states, *weights, training=True)
    y_ref, _ = module(xg)
    y_ref.backward(dy)
    grads = (
        backward(dy, None, None, ours.cache) if cell == "lstm" else backward(dy, None, ours.cache)
    )
    tol = 1e-3 if args.dtype == "float32" else 1e-9
    for name, a, b in (
        ("y", ours.y, y_ref.detach()),
        ("dx", grads.dx, xg.grad),
        ("dw_ih", grads.dw_ih, module.weight_ih_l0.grad),
        ("dw_hh", grads.dw_hh, module.weight_hh_l0.grad),
    ):
        err = float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))
        if not err <= tol:
            # Not timed: a wrong kernel's speed means nothing. The other rows still run.
            print(
                f"{cell} {shape}: {name} differs from cuDNN by {err:.3g} (relative); not timed",
                file=sys.stderr,
                flush=True,
            )
            return None

    fwd_ours, fwd_cudnn, train_ours, train_cudnn = time_turns(
        [ours_forward, cudnn_forward, ours_train, cudnn_train],
        torch,
        args.reps,
        args.min_time,
        args.warmup,
    )
    stepwise = None
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    # csrc/cuda/sequence.cu, kPersistentMaxWork: larger steps run stepwise anyway.
    if B <= rcuda.persistent_max_batch() and B * gates * H * H < 2**26:
        saved = rcuda.persistent_max_batch()
        rcuda.set_persistent_max_batch(0)
        try:
            (stepwise,) = time_turns(
                [ours_forward], torch, args.reps, args.min_time / 4, args.warmup
            )
        finally:
            rcuda.set_persistent_max_batch(saved)
    row = Row(cell, shape, fwd_ours, fwd_cudnn, train_ours, train_cudnn, stepwise)
    print(
        f"{cell:4s} {shape}: fwd {fwd_ours:8.3f} ms vs {fwd_cudnn:8.3f} ({row.fwd_ratio:5.2f}x)"
        f"   fwd+bwd {train_ours:8.3f} vs {train_cudnn:8.3f} ({row.train_ratio:5.2f}x)"
        + (f"   stepwise fwd {stepwise:8.3f}" if stepwise is not None else ""),
        flush=True,
    )
    return row


def markdown(rows: list[Row], header: str) -> str:
    lines = [
        header,
        "",
        "| cell | T, B, I, H | fwd rnnkit ms | fwd cuDNN ms | fwd ratio | "
        "fwd stepwise ms | fwd+bwd rnnkit ms | fwd+bwd cuDNN ms | fwd+bwd ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        stepwise = f"{r.fwd_stepwise:.3f}" if r.fwd_stepwise is not None else "-"
        lines.append(
            f"| {r.cell} | {', '.join(map(str, r.shape))} | {r.fwd_ours:.3f} | {r.fwd_cudnn:.3f} | "
            f"{r.fwd_ratio:.2f}x | {stepwise} | {r.train_ours:.3f} | {r.train_cudnn:.3f} | "
            f"{r.train_ratio:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", default="lstm,gru,rnn")
    parser.add_argument("--shapes", type=parse_shapes, default=None, help='"T,B,I,H;..."')
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tf32", action="store_true", help="let both libraries use TF32")
    parser.add_argument("--markdown", default=None, help="also write the table here")
    parser.add_argument("--quick", action="store_true", help="2 turns: a smoke run")
    parser.add_argument(
        "--persistent-max-batch",
        type=int,
        default=None,
        help="rnnkit.cuda.set_persistent_max_batch for this run (default: the library's)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.min_time, args.warmup = 2, 0.0, 1
    if not rcuda.cuda_available():
        print(
            "this benchmark needs rnnkit's CUDA backend (RNNKIT_CUDA=ON pip install .) and a "
            "CUDA device",
            file=sys.stderr,
        )
        return 2
    try:
        import torch
    except ImportError:
        print("this benchmark needs torch with CUDA (the cuDNN peer)", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("this benchmark needs a CUDA build of torch (the cuDNN peer)", file=sys.stderr)
        return 2
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    rcuda.set_allow_tf32(args.tf32)
    if args.persistent_max_batch is not None:
        rcuda.set_persistent_max_batch(args.persistent_max_batch)
    cells = [c for c in args.cells.split(",") if c]
    shapes = args.shapes or DEFAULT_SHAPES
    header = (
        f"GPU: {torch.cuda.get_device_name()}; torch {torch.__version__}, cuDNN "
        f"{torch.backends.cudnn.version()}, rnnkit {rnnkit.__version__}; {args.dtype}, TF32 "
        f"{'on' if args.tf32 else 'off'}; medians of >= {args.reps} interleaved turns.\n"
        "Command: python bench/cuda_compare.py " + " ".join(sys.argv[1:] if argv is None else argv)
    )
    print(header, flush=True)
    measured = [measure(cell, shape, args, torch) for cell in cells for shape in shapes]
    rows = [row for row in measured if row is not None]
    table = markdown(rows, header)
    print(table)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(table)
    disagreed = len(measured) - len(rows)
    if disagreed:
        print(f"{disagreed} comparisons disagreed with cuDNN and were not timed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
