#!/usr/bin/env python3
"""Single steps: rnnkit's ``*_cell_forward``/``*_cell_backward`` against ``torch.nn``'s
``LSTMCell``/``GRUCell``/``RNNCell`` on the CPU, side by side (float32).

A step is what a generation loop, a decoder with attention or a hand-written time loop calls
once per token, so its fixed costs count: for each cell and shape ``(B, I, H)``, in one
process with the same threads for both, the torch cell's weights are given to rnnkit, the
outputs (and, for training, the gradients of ``x``, ``h`` and every weight) are checked to
agree, then one step is timed, inference (rnnkit ``training=False``, torch under
``torch.no_grad()``) and forward + backward of ``dh`` (rnnkit's ``*_cell_backward(dh)``,
torch's ``h1.backward(dh)`` on leaf ``x`` and ``h``), the two taking turns,
medians in microseconds, and the speed-up ``torch / rnnkit`` (> 1: rnnkit faster).

Usage::

    python bench/cell_steps.py                     # the default shapes (about a minute)
    python bench/cell_steps.py --markdown out.md   # also write a Markdown table
    python bench/cell_steps.py --torch-adapter     # rnnkit.torch's cells, torch's calling cost
"""

from __future__ import annotations

import argparse
import math
from functools import partial
from typing import Any

import numpy as np
import rnnkit
from rnnkit.bench._common import (
    interleave,
    run_side_by_side,
    side_by_side_parser,
)

SHAPES: tuple[tuple[int, int, int], ...] = (
    (1, 128, 128),
    (1, 512, 512),
    (1, 1024, 1024),
    (8, 512, 512),
)
TORCH_CELLS = {"lstm": "LSTMCell", "gru": "GRUCell", "rnn": "RNNCell"}


def build_parser() -> argparse.ArgumentParser:
    parser = side_by_side_parser(
        "Compare rnnkit's single-step cell functions with torch.nn's cells.",
        reps=20,
        max_reps=2000,
        min_time=0.3,
    )
    parser.add_argument(
        "--torch-adapter",
        action="store_true",
        help="time rnnkit.torch's LSTMCell/GRUCell/RNNCell (from_torch) instead of the "
        "functions on NumPy arrays",
    )
    return parser


def max_rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|; inf for a NaN or an infinity anywhere (which ``>`` would let
    through), or for different shapes."""
    if a.shape != b.shape:
        return math.inf
    err = float(np.abs(a - b).max(initial=0.0) / max(float(np.abs(b).max(initial=0.0)), 1e-30))
    return err if math.isfinite(err) else math.inf


def run_case(
    torch: Any, case: tuple[str, tuple[int, int, int]], args: argparse.Namespace
) -> list[str]:
    cell, shape = case
    B, I, H = shape  # noqa: E741 (the shape letters)
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    module = getattr(torch.nn, TORCH_CELLS[cell])(I, H)
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    weights = [getattr(module, n).detach().numpy().copy() for n in names]
    x = rng.standard_normal((B, I), dtype=np.float32)
    h = rng.standard_normal((B, H), dtype=np.float32)
    c = rng.standard_normal((B, H), dtype=np.float32)
    dh = rng.standard_normal((B, H), dtype=np.float32)
    forward = getattr(rnnkit, f"{cell}_cell_forward")
    backward = getattr(rnnkit, f"{cell}_cell_backward")
    states = (h, c) if cell == "lstm" else (h,)
    x_t, dh_t = torch.from_numpy(x), torch.from_numpy(dh)
    states_t = tuple(torch.from_numpy(s) for s in states)
    xg = torch.from_numpy(x.copy()).requires_grad_()
    hg = torch.from_numpy(h.copy()).requires_grad_()

    def ours(training: bool) -> tuple[np.ndarray, ...]:
        out = forward(x, *states, *weights, training=training)
        if not training:
            return (out[0],)
        finals = (dh, None) if cell == "lstm" else (dh,)
        g = backward(*finals, out[-1])
        return (out[0], g.dx, g.dh, g.dw_ih, g.dw_hh, g.db_ih, g.db_hh)

    def torch_step(module: Any, training: bool) -> tuple[np.ndarray, ...]:
        if not training:
            with torch.no_grad():
                out = module(x_t, states_t if cell == "lstm" else states_t[0])
            return ((out[0] if cell == "lstm" else out).numpy(),)
        # The same work as rnnkit's side: leaf inputs made once (their .grad cleared, as
        # the weights'), and the output's gradient given straight to backward (no
        # ``(h1 * dh).sum()``: two more ops and their backward nodes, ~10% of a 128-unit step).
        module.zero_grad(set_to_none=True)
        xg.grad = hg.grad = None
        hx = (hg, states_t[1]) if cell == "lstm" else hg
        out = module(xg, hx)
        h1 = out[0] if cell == "lstm" else out
        h1.backward(dh_t)
        grads = [getattr(module, n).grad.numpy() for n in names]
        return (h1.detach().numpy(), xg.grad.numpy(), hg.grad.numpy(), *grads)

    theirs = partial(torch_step, module)
    if args.torch_adapter:  # rnnkit.torch's cell, sharing the torch cell's parameters
        import rnnkit.torch as rt

        ours = partial(torch_step, rt.from_torch(module))  # type: ignore[assignment]
    worst = max(
        max_rel_err(a, b)
        for training in (False, True)
        for a, b in zip(ours(training), theirs(training), strict=True)
    )
    if worst > 1e-3:
        raise SystemExit(f"{cell} {shape}: rnnkit and torch disagree (max rel err {worst:.2g})")
    timing = dict(reps=args.reps, max_reps=args.max_reps, min_time=args.min_time, warmup=3)
    row = [cell.upper(), ",".join(map(str, shape))]
    for training in (False, True):
        t = interleave(
            {"rnnkit": partial(ours, training), "torch": partial(theirs, training)}, **timing
        )
        us = {k: 1e6 * v.median for k, v in t.items()}
        row += [f"{us['rnnkit']:.1f}", f"{us['torch']:.1f}", f"{us['torch'] / us['rnnkit']:.2f}x"]
    return [*row, f"{worst:.1e}"]


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    header = [
        "cell",
        "B,I,H",
        "rnnkit step us",
        "torch step us",
        "step speed-up",
        "rnnkit fwd+bwd us",
        "torch fwd+bwd us",
        "fwd+bwd speed-up",
        "max rel err",
    ]
    cases = [(cell, shape) for cell in TORCH_CELLS for shape in SHAPES]
    run_side_by_side(args, header, cases, run_case)


if __name__ == "__main__":
    main()
