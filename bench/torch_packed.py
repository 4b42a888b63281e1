#!/usr/bin/env python3
"""``rnnkit.torch`` against ``torch.nn`` on ``PackedSequence`` inputs, side by side (CPU).

For each case (cell, layers, direction, shape ``(T, B, I, H)`` and a rule for the lengths),
in one process with the same thread count for both: build the ``torch.nn`` module, load its
state into the ``rnnkit.torch`` one, pack a random batch with ``pack_padded_sequence``
(``enforce_sorted=False``), check that the packed outputs, final states and the gradients of
``x`` and of every parameter agree, and the outputs of the forward under ``no_grad``, then
time that forward and the forward + backward of ``(y.data * dy).sum()`` (the same ops on
both sides), the two modules taking turns, and report medians and the speed-up ``torch /
rnnkit`` (> 1: rnnkit faster).

Lengths: ``uniform`` draws them from ``[T/4, T]`` (issue 4's variable-length row);
``uneven`` gives one sequence all T steps and the others ``--short`` steps, where a padded
``[T, B, *]`` batch would be mostly padding.

Usage::

    python bench/torch_packed.py                    # the default cases (about a minute)
    python bench/torch_packed.py --markdown out.md  # also write a Markdown table
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np
import rnnkit.torch as rt
from rnnkit.bench._common import (
    interleave,
    positive_int,
    run_side_by_side,
    shape_text,
    side_by_side_parser,
)

# (cell, layers, bidirectional, (T, B, I, H), lengths rule)
CASES: tuple[tuple[str, int, bool, tuple[int, int, int, int], str], ...] = (
    ("lstm", 1, False, (100, 32, 256, 256), "uniform"),
    ("lstm", 2, True, (100, 32, 256, 256), "uniform"),
    ("gru", 1, False, (100, 32, 256, 256), "uniform"),
    ("lstm", 1, False, (1000, 64, 128, 128), "uneven"),
    ("lstm", 1, True, (1000, 64, 128, 128), "uneven"),
    ("lstm", 1, False, (2000, 256, 64, 64), "uneven"),
    ("gru", 1, False, (2000, 256, 64, 64), "uneven"),
    ("rnn", 1, False, (2000, 256, 64, 64), "uneven"),
)
MODULES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def build_parser() -> argparse.ArgumentParser:
    parser = side_by_side_parser(
        "Compare rnnkit.torch with torch.nn on PackedSequence inputs (float32).",
        reps=5,
        max_reps=50,
        min_time=0.5,
    )
    parser.add_argument("--short", type=positive_int, default=5, help="'uneven': short length")
    return parser


def draw_lengths(rule: str, T: int, B: int, short: int, rng: np.random.Generator) -> np.ndarray:
    if rule == "uniform":
        lengths = rng.integers(max(1, T // 4), T + 1, size=B)
    else:
        lengths = np.full(B, min(short, T))
    lengths[rng.integers(B)] = T
    return lengths


def max_rel_err(a: Any, b: Any) -> float:
    """max |a - b| / max |b| of two tensors; inf for different shapes or a NaN or infinity
    anywhere (a NaN error would pass a ``> tol`` test, and ``max()`` may drop it)."""
    if a is None or b is None or a.shape != b.shape:
        return math.inf
    a, b = a.detach(), b.detach()
    scale = float(b.abs().max()) if b.numel() else 0.0
    err = float((a - b).abs().max()) / (scale or 1.0) if a.numel() else 0.0
    return err if math.isfinite(err) and math.isfinite(scale) else math.inf


def run_case(torch: Any, case: tuple[Any, ...], args: argparse.Namespace) -> list[str]:
    cell, layers, bidirectional, (T, B, I, H), rule = case  # noqa: E741 (the shape letter)
    from torch.nn.utils.rnn import pack_padded_sequence

    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    ref = getattr(torch.nn, MODULES[cell])(I, H, layers, bidirectional=bidirectional)
    ours = getattr(rt, MODULES[cell])(I, H, layers, bidirectional=bidirectional)
    ours.load_state_dict(ref.state_dict())
    lengths = torch.from_numpy(draw_lengths(rule, T, B, args.short, rng))
    x = torch.from_numpy(rng.standard_normal((T, B, I), dtype=np.float32))
    packed_x = pack_padded_sequence(x, lengths, enforce_sorted=False)
    D = 2 if bidirectional else 1
    dy = torch.from_numpy(rng.standard_normal((packed_x.data.shape[0], D * H), dtype=np.float32))

    def train_step(module: Any) -> tuple[Any, ...]:
        module.zero_grad(set_to_none=True)
        data = packed_x.data.detach().requires_grad_()
        inp = packed_x._replace(data=data)
        out, state = module(inp)
        (out.data * dy).sum().backward()
        finals = state if isinstance(state, tuple) else (state,)
        return (out.data, *finals, data.grad, *(p.grad for p in module.parameters()))

    def inference(module: Any) -> tuple[Any, ...]:
        with torch.no_grad():
            out, state = module(packed_x)
        return (out.data, *(state if isinstance(state, tuple) else (state,)))

    # Both timed paths are checked: the training step and the no_grad forward (which may
    # take rnnkit's inference kernels).
    worst = max(
        max_rel_err(a, b)
        for step in (train_step, inference)
        for a, b in zip(step(ours), step(ref), strict=True)
    )
    if not worst <= 1e-3:
        raise SystemExit(f"{case}: rnnkit.torch and torch.nn disagree (max rel err {worst:.2g})")

    timing = dict(reps=args.reps, max_reps=args.max_reps, min_time=args.min_time, warmup=1)
    fwd = interleave({"rnnkit": lambda: inference(ours), "torch": lambda: inference(ref)}, **timing)
    both = interleave(
        {"rnnkit": lambda: train_step(ours), "torch": lambda: train_step(ref)}, **timing
    )
    tokens = int(lengths.sum())
    direction = "bidir" if bidirectional else "uni"
    ms = {k: 1e3 * v.median for k, v in fwd.items()}
    ms2 = {k: 1e3 * v.median for k, v in both.items()}
    return [
        f"{MODULES[cell]} {layers}L {direction}",
        shape_text((T, B, I, H)),
        f"{rule} ({tokens} of {T * B} tokens)",
        f"{ms['rnnkit']:.2f}",
        f"{ms['torch']:.2f}",
        f"{ms['torch'] / ms['rnnkit']:.2f}x",
        f"{ms2['rnnkit']:.2f}",
        f"{ms2['torch']:.2f}",
        f"{ms2['torch'] / ms2['rnnkit']:.2f}x",
        f"{worst:.1e}",
    ]


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    header = [
        "module",
        "T,B,I,H",
        "lengths",
        "rnnkit fwd ms",
        "torch fwd ms",
        "fwd speed-up",
        "rnnkit fwd+bwd ms",
        "torch fwd+bwd ms",
        "fwd+bwd speed-up",
        "max rel err",
    ]
    run_side_by_side(args, header, CASES, run_case)


if __name__ == "__main__":
    main()
