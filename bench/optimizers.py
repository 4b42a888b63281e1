#!/usr/bin/env python3
"""Optimizer steps: ``rnnkit.lm.SGD``/``Adam`` against ``torch.optim.SGD``/``Adam`` on the CPU,
side by side (float32).

For each rule and parameter size, in one process with the same threads for both: one
parameter of that many values and its gradient, the same in both libraries; five steps of
each are checked to leave the same parameters (within float32 rounding), then single steps
are timed, the two taking turns, medians in milliseconds, and the speed-up ``torch /
rnnkit`` (> 1: rnnkit faster).

Usage::

    python bench/optimizers.py                     # the default sizes (about 20 s)
    python bench/optimizers.py --markdown out.md   # also write a Markdown table
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from rnnkit.bench._common import interleave, run_side_by_side, side_by_side_parser
from rnnkit.lm import SGD, Adam

SIZES = (1_000_000, 10_000_000)
RULES: dict[str, tuple[Any, Any]] = {
    "SGD": (lambda ps: SGD(ps, lr=0.1), lambda torch, ts: torch.optim.SGD(ts, lr=0.1)),
    "SGD momentum 0.9": (
        lambda ps: SGD(ps, lr=0.1, momentum=0.9),
        lambda torch, ts: torch.optim.SGD(ts, lr=0.1, momentum=0.9),
    ),
    "Adam": (lambda ps: Adam(ps, lr=1e-3), lambda torch, ts: torch.optim.Adam(ts, lr=1e-3)),
}


def build_parser() -> argparse.ArgumentParser:
    return side_by_side_parser(
        "Compare rnnkit.lm's optimizer steps with torch.optim's.",
        reps=10,
        max_reps=200,
        min_time=0.3,
    )


def run_case(torch: Any, case: tuple[str, int], args: argparse.Namespace) -> list[str]:
    rule, size = case
    make, make_torch = RULES[rule]
    rng = np.random.default_rng(args.seed)
    p = rng.standard_normal(size, dtype=np.float32)
    g = rng.standard_normal(size, dtype=np.float32) * np.float32(1e-2)
    tp = torch.from_numpy(p.copy()).requires_grad_()
    tp.grad = torch.from_numpy(g.copy())
    ours, theirs = make([(p, g)]), make_torch(torch, [tp])
    for _ in range(5):
        ours.step()
        theirs.step()
    worst = float(np.abs(p - tp.detach().numpy()).max() / np.abs(p).max())
    if worst > 1e-5:
        raise SystemExit(f"{rule} {size}: rnnkit and torch disagree (max rel err {worst:.2g})")
    timing = dict(reps=args.reps, max_reps=args.max_reps, min_time=args.min_time, warmup=2)
    t = interleave({"rnnkit": ours.step, "torch": theirs.step}, **timing)
    ms = {k: 1e3 * v.median for k, v in t.items()}
    return [
        rule,
        f"{size:,}",
        f"{ms['rnnkit']:.2f}",
        f"{ms['torch']:.2f}",
        f"{ms['torch'] / ms['rnnkit']:.2f}x",
        f"{worst:.1e}",
    ]


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    header = ["rule", "values", "rnnkit ms", "torch ms", "speed-up", "max rel err"]
    cases = [(rule, size) for rule in RULES for size in SIZES]
    run_side_by_side(args, header, cases, run_case)


if __name__ == "__main__":
    main()
