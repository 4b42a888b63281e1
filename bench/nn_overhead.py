"""What rnnkit.nn's Python loop over layers and directions costs.

Times ``LSTM.forward`` (inference and training) and ``LSTM.backward`` against the same kernel
calls made directly (inputs prepared beforehand), interleaved, median of ``--reps`` runs, and
prints the module's overhead in percent. The issue allows a Python loop over layers only if it
costs nothing noticeable; this is the measurement.

    python bench/nn_overhead.py [--reps 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import rnnkit
from rnnkit import nn


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(module_call: Callable[[], object], raw_call: Callable[[], object], reps: int) -> str:
    """Interleaved medians (ms) of both, and the module's overhead."""
    module_call()
    raw_call()
    ours, raw = [], []
    for _ in range(reps):
        ours.append(timed(module_call))
        raw.append(timed(raw_call))
    a, b = float(np.median(ours)), float(np.median(raw))
    return f"{1e3 * a:10.3f} {1e3 * b:10.3f} {100 * (a - b) / b:+8.1f}%"


def measure(shape: tuple[int, int, int, int], layers: int, bidirectional: bool, reps: int) -> None:
    """Print the module's overhead for one configuration (forward eval/train, backward)."""
    T, B, I, H = shape  # noqa: E741
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    m = nn.LSTM(I, H, layers, bidirectional=bidirectional, seed=0)
    D = 2 if bidirectional else 1
    # The kernel calls the module makes, with each layer's input computed beforehand.
    calls, layer_input = [], x
    for k in range(layers):
        ys = []
        for d in range(D):
            s = f"_l{k}" + ("_reverse" if d else "")
            w = [m.params[n + s] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            calls.append((layer_input, w, bool(d)))
            ys.append(rnnkit.lstm_forward(layer_input, None, None, *w, reverse=bool(d)).y)
        layer_input = np.concatenate(ys, axis=2)

    def raw_forward(training: bool) -> list[rnnkit.LSTMOutput]:
        return [
            rnnkit.lstm_forward(xi, None, None, *w, reverse=r, training=training)
            for xi, w, r in calls
        ]

    label = f"{T},{B},{I},{H}"
    for training in (False, True):
        m.train(training)
        row = compare(lambda: m.forward(x), lambda: raw_forward(training), reps)  # noqa: B023
        name = "fwd train" if training else "fwd eval"
        print(f"{label:>16} {layers:>2} {D:>2} {name:>10} | {row}")
    y, _ = m.forward(x)
    dy = np.ones_like(y)
    outs = raw_forward(True)
    douts = [np.ones_like(o.y) for o in outs]

    def raw_backward() -> None:
        for out, d in zip(outs, douts, strict=True):
            rnnkit.lstm_backward(d, None, None, out.cache)

    def module_backward() -> None:
        m.zero_grad()
        m.backward(dy)

    row = compare(module_backward, raw_backward, reps)
    print(f"{label:>16} {layers:>2} {D:>2} {'bwd':>10} | {row}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    rnnkit.set_num_threads(args.threads)
    print(f"LSTM, float32, {rnnkit.get_num_threads()} thread(s), median of {args.reps}")
    print(
        f"{'T,B,I,H':>16} {'L':>2} {'D':>2} {'pass':>10} | {'module ms':>10} {'kernels ms':>10} "
        f"{'overhead':>9}"
    )
    for shape in [(50, 16, 64, 64), (100, 32, 256, 256)]:
        for layers, bidirectional in [(1, False), (2, True), (3, True)]:
            measure(shape, layers, bidirectional, args.reps)


if __name__ == "__main__":
    main()
