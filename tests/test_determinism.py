"""Bit-identical results: run after run, for any thread count, and under concurrent calls.

The kernels cut the hidden units into fixed blocks of 64 and sum every reduction in a fixed
order, so the number of threads only decides *who* computes a block (README, "Threads").
The shapes here have several blocks (H = 130: 64 + 64 + 2 units, H = 256: 4 blocks) and
enough work for the kernels to use every thread they are given (batch 1 included). Every
comparison is ``np.array_equal`` over every output and every gradient (forward in training
and inference mode, backward), never a tolerance.

Concurrency: the GIL is released while a kernel runs, so Python threads run kernels at the
same time; their results must equal those of the same calls made one after another.
"""

from __future__ import annotations

import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import rnnkit

# ("gru_reset": the GRU with the reset gate before the matmul, linear_before_reset=False)
CELLS = ("lstm", "gru", "gru_reset", "rnn_tanh", "rnn_relu")
GATES = {"lstm": 4, "gru": 3, "gru_reset": 3, "rnn_tanh": 1, "rnn_relu": 1}
DTYPES = [np.float32, np.float64]
# (T, B, I, H): a long sequence with H not a multiple of the block size, and a large batch;
# batch 1, whose steps cut their recurrent GEMMs in two halves summed at the end (the halves
# computed in another order with 1, 2 and more threads; the GRU only at H = 65-128), and a
# batch of 7 rows, which the micro-kernel takes in groups of 4, 2 and 1.
SHAPES = [
    (20, 32, 130, 130),
    (5, 128, 256, 256),
    (30, 1, 130, 130),
    (30, 1, 100, 128),
    (12, 7, 130, 130),
    (10, 40, 24, 48),  # one unit block cut in two (engine.hpp, unit_blocks)
    (10, 45, 24, 12),  # one unit block, the LSTM's rows split among the threads
]
THREAD_COUNTS = (1, 2, 3, 4)
# The gradients every cell returns (cells name dh0/dc0 dh/dc).
BASE_GRADS = ("dx", "dh0", "dc0", "dh", "dc", "dw_ih", "dw_hh", "db_ih", "db_hh")

Problem = dict[str, "np.ndarray | None"]


# --------------------------------------------------------------------------- helpers
def _seed(*parts: object) -> int:
    return zlib.crc32(repr(parts).encode())


def make_problem(cell: str, level: str, shape, dtype: type, seed: int) -> Problem:
    """Random non-zero inputs, weights, biases and output gradients (``dy``, ``dh``,
    ``dc``) for one forward + backward call."""
    steps, batch, inp, hid = shape
    rng = np.random.default_rng(seed)
    g = GATES[cell]

    def draw(*dims: int, scale: float = 1.0) -> np.ndarray:
        return (scale * rng.standard_normal(dims)).astype(dtype)

    lead = (steps, batch) if level == "seq" else (batch,)
    return {
        "x": draw(*lead, inp),
        "h0": draw(batch, hid, scale=0.5),
        "c0": draw(batch, hid, scale=0.5) if cell == "lstm" else None,
        "w_ih": draw(g * hid, inp, scale=1.0 / np.sqrt(inp)),
        "w_hh": draw(g * hid, hid, scale=1.0 / np.sqrt(hid)),
        "b_ih": draw(g * hid, scale=0.3),
        "b_hh": draw(g * hid, scale=0.3),
        "dy": draw(steps, batch, hid) if level == "seq" else None,
        "dh": draw(batch, hid),
        "dc": draw(batch, hid) if cell == "lstm" else None,
    }


def gru_or_rnn(cell: str, level: str = "seq") -> tuple[Any, Any, dict[str, Any]]:
    """(forward, backward, keyword options) of a GRU or RNN cell name, for whole sequences
    (``level="seq"``) or one step."""
    kind = "gru" if cell.startswith("gru") else "rnn"
    suffix = "" if level == "seq" else "_cell"
    forward = getattr(rnnkit, f"{kind}{suffix}_forward")
    backward = getattr(rnnkit, f"{kind}{suffix}_backward")
    if kind == "rnn":
        return forward, backward, {"nonlinearity": cell.removeprefix("rnn_")}
    return forward, backward, {"linear_before_reset": cell != "gru_reset"}


def run(cell: str, level: str, p: Problem) -> dict[str, np.ndarray]:
    """Forward (training and inference) and backward; every array they return, by name."""
    w = (p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    out: dict[str, np.ndarray] = {}
    if level == "seq":
        if cell == "lstm":
            y, h_n, c_n, cache = rnnkit.lstm_forward(p["x"], p["h0"], p["c0"], *w)
            inf = rnnkit.lstm_forward(p["x"], p["h0"], p["c0"], *w, training=False)
            grads = rnnkit.lstm_backward(p["dy"], p["dh"], p["dc"], cache)
            out.update(c_n=c_n, c_n_inference=inf.c_n)
        else:
            fwd, bwd, act = gru_or_rnn(cell)
            y, h_n, cache = fwd(p["x"], p["h0"], *w, **act)
            inf = fwd(p["x"], p["h0"], *w, **act, training=False)
            grads = bwd(p["dy"], p["dh"], cache)
        out.update(y=y, h_n=h_n, y_inference=inf.y, h_n_inference=inf.h_n)
    else:
        if cell == "lstm":
            h1, c1, cache = rnnkit.lstm_cell_forward(p["x"], p["h0"], p["c0"], *w)
            grads = rnnkit.lstm_cell_backward(p["dh"], p["dc"], cache)
            out.update(c1=c1)
        else:
            fwd, bwd, act = gru_or_rnn(cell, "cell")
            h1, cache = fwd(p["x"], p["h0"], *w, **act)
            grads = bwd(p["dh"], cache)
        out.update(h1=h1)
    for name, value in grads._asdict().items():
        if name in BASE_GRADS:
            assert value is not None, name  # every problem here has both biases
            out[name] = value
        else:  # a gradient of an optional parameter these problems do not have
            assert value is None, name
    return out


def assert_identical(
    a: dict[str, np.ndarray | None],
    b: dict[str, np.ndarray | None],
    what: str,
    *,
    nontrivial: bool = True,
) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if a[name] is None or b[name] is None:  # an optional parameter's gradient
            assert a[name] is None and b[name] is None, name
            continue
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        if nontrivial:  # array_equal of all-zero or NaN arrays would prove nothing
            assert np.isfinite(a[name]).all(), f"{name} is not finite"
            assert np.count_nonzero(a[name]) > a[name].size // 4, f"{name} is mostly zeros"
        if not np.array_equal(a[name], b[name]):
            diff = np.max(np.abs(a[name].astype(np.float64) - b[name]))
            pytest.fail(f"{name} differs {what} (max |difference| {diff:.3g})")


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize("cell", CELLS)
def test_sequence_identical_for_any_thread_count(
    cell: str, shape, dtype: type, restore_threads: int
) -> None:
    p = make_problem(cell, "seq", shape, dtype, _seed(cell, shape))
    results = {}
    for n in THREAD_COUNTS:
        rnnkit.set_num_threads(n)
        assert rnnkit.get_num_threads() == n
        results[n] = run(cell, "seq", p)
    # Run after run (on copies of the inputs: other buffers, same values).
    again = run(cell, "seq", {k: None if v is None else v.copy() for k, v in p.items()})
    assert_identical(results[THREAD_COUNTS[-1]], again, "between two runs")
    for n in THREAD_COUNTS[1:]:
        assert_identical(results[1], results[n], f"between 1 and {n} threads")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cell", CELLS)
def test_nans_of_both_signs_come_out_the_same_for_any_thread_count(
    cell: str, dtype: type, restore_threads: int
) -> None:
    """Batch 1 sums each step's recurrent GEMM in two halves (LSTM, RNN, and the GRU at
    H = 65-128), computed in a different order by each thread; a NaN in each half (one
    positive, one negative) must still come out the same, bit for bit: x86 returns the
    first operand's NaN when both are NaN."""
    # H = 128: two unit blocks, the halves [0, 64) and [64, 128) (the GRU splits only then);
    # I = 128: enough work per step for every cell to use several threads (threads_for).
    p = make_problem(cell, "seq", (6, 1, 128, 128), dtype, _seed("nan", cell, dtype))
    p["h0"][0, 10] = np.nan
    p["h0"][0, 100] = -np.nan
    results = {}
    for n in THREAD_COUNTS:
        rnnkit.set_num_threads(n)
        results[n] = {k: v.tobytes() for k, v in run(cell, "seq", p).items()}
    assert any(np.isnan(v).any() for v in run(cell, "seq", p).values())
    for n in THREAD_COUNTS[1:]:
        for name in results[1]:
            assert results[n][name] == results[1][name], f"{name}: 1 and {n} threads differ"


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cell", CELLS)
def test_cell_identical_for_any_thread_count(cell: str, dtype: type, restore_threads: int) -> None:
    p = make_problem(cell, "cell", (1, 128, 256, 256), dtype, _seed("cell", cell))
    results = {}
    for n in THREAD_COUNTS:
        rnnkit.set_num_threads(n)
        results[n] = run(cell, "cell", p)
        assert_identical(results[n], run(cell, "cell", p), f"between two runs with {n} threads")
    for n in THREAD_COUNTS[1:]:
        assert_identical(results[1], results[n], f"between 1 and {n} threads")


@pytest.mark.parametrize("cell", CELLS)
def test_backward_repeated_on_one_cache(cell: str, restore_threads: int) -> None:
    """Backward reads the cache without changing it: a second call gives the same bits."""
    rnnkit.set_num_threads(2)
    p = make_problem(cell, "seq", SHAPES[0], np.float64, _seed("repeat", cell))
    w = (p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    if cell == "lstm":
        *_, cache = rnnkit.lstm_forward(p["x"], p["h0"], p["c0"], *w)
        first = rnnkit.lstm_backward(p["dy"], p["dh"], p["dc"], cache)
        second = rnnkit.lstm_backward(p["dy"], p["dh"], p["dc"], cache)
    else:
        fwd, bwd, act = gru_or_rnn(cell)
        *_, cache = fwd(p["x"], p["h0"], *w, **act)
        first = bwd(p["dy"], p["dh"], cache)
        second = bwd(p["dy"], p["dh"], cache)
    assert_identical(first._asdict(), second._asdict(), "between two backward calls")


# ------------------------------------------------------------------------ concurrency
def _concurrently(jobs):
    """Runs every job (a no-argument callable) on its own thread, all released at once."""
    start = threading.Barrier(len(jobs))

    def call(job):
        start.wait(timeout=30)
        return job()

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(call, job) for job in jobs]
        return [f.result(timeout=120) for f in futures]


@pytest.mark.parametrize("threads", [1, 2], ids=["omp1", "omp2"])
@pytest.mark.parametrize("cell", CELLS)
def test_concurrent_calls_equal_serial_calls(cell: str, threads: int, restore_threads: int) -> None:
    """8 Python threads run forward + backward on different inputs (the same weights) at
    once; each result equals the one of the same call made alone."""
    rnnkit.set_num_threads(threads)
    shape = (4, 32, 130, 130)
    base = make_problem(cell, "seq", shape, np.float64, _seed("concurrent", cell))
    problems = []
    for k in range(8):
        own = make_problem(cell, "seq", shape, np.float64, _seed("concurrent", cell, k))
        # Weights shared by every job (one model, many batches); data of its own.
        problems.append({**own, **{w: base[w] for w in ("w_ih", "w_hh", "b_ih", "b_hh")}})
    serial = [run(cell, "seq", p) for p in problems]
    parallel = _concurrently([lambda p=p: run(cell, "seq", p) for p in problems])
    for k, (a, b) in enumerate(zip(serial, parallel, strict=True)):
        assert_identical(a, b, f"for job {k} run concurrently")
    # The jobs really had different inputs.
    assert not np.array_equal(serial[0]["y"], serial[1]["y"])


def test_concurrent_mixed_cells_dtypes_and_levels(restore_threads: int) -> None:
    """Different kernels (every cell, both dtypes, sequences and single steps) at once."""
    rnnkit.set_num_threads(2)
    specs = [
        (cell, level, dtype)
        for cell in CELLS
        for level, dtype in (("seq", np.float32), ("cell", np.float64))
    ]
    assert len(specs) == 2 * len(CELLS)
    shapes = {"seq": (4, 16, 70, 130), "cell": (1, 64, 130, 200)}
    problems = [make_problem(c, lv, shapes[lv], dt, _seed("mixed", c, lv)) for c, lv, dt in specs]
    serial = [run(c, lv, p) for (c, lv, _), p in zip(specs, problems, strict=True)]
    jobs = [
        lambda c=c, lv=lv, p=p: run(c, lv, p) for (c, lv, _), p in zip(specs, problems, strict=True)
    ]
    for _ in range(2):
        parallel = _concurrently(jobs)
        for spec, a, b in zip(specs, serial, parallel, strict=True):
            assert_identical(a, b, f"for {spec} run concurrently")


@pytest.mark.parametrize("cell", CELLS)
def test_concurrent_backward_on_one_cache(cell: str, restore_threads: int) -> None:
    """8 threads run backward on the same cache at once, each with its own output
    gradients: the cache is only read."""
    rnnkit.set_num_threads(2)
    shape = (4, 32, 130, 130)
    p = make_problem(cell, "seq", shape, np.float64, _seed("shared-cache", cell))
    w = (p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    rng = np.random.default_rng(_seed("shared-cache-seeds", cell))
    steps, batch, _, hid = shape
    seeds = [
        (rng.standard_normal((steps, batch, hid)), rng.standard_normal((batch, hid)))
        for _ in range(8)
    ]
    if cell == "lstm":
        *_, cache = rnnkit.lstm_forward(p["x"], p["h0"], p["c0"], *w)

        def backward(dy, dh):
            return rnnkit.lstm_backward(dy, dh, -dh, cache)._asdict()
    else:
        fwd, bwd, act = gru_or_rnn(cell)
        *_, cache = fwd(p["x"], p["h0"], *w, **act)

        def backward(dy, dh):
            return bwd(dy, dh, cache)._asdict()

    serial = [backward(dy, dh) for dy, dh in seeds]
    parallel = _concurrently([lambda s=s: backward(*s) for s in seeds])
    for k, (a, b) in enumerate(zip(serial, parallel, strict=True)):
        assert_identical(a, b, f"for backward {k} run concurrently")


# Inference bounds its workspace by projecting the input ceil(512 / B) time steps at a time.
# OpenBLAS's sgemm rounds a row differently depending on the number of rows in the call (seen
# on AMD EPYC with scipy-openblas32), so training must project in the same chunks, or the
# float32 outputs from the end of the first chunk on differ in the last bits (they did).
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cell", CELLS)
def test_inference_outputs_equal_training_outputs(
    cell: str, dtype: type, restore_threads: int
) -> None:
    """README: "training=False ... the outputs are bit-identical to training mode", also
    when T spans several of inference's input-projection chunks (T * B > 512)."""
    rnnkit.set_num_threads(2)
    p = make_problem(cell, "seq", SHAPES[0], dtype, _seed("inference", cell))
    steps, batch = SHAPES[0][:2]
    assert steps * batch > 512
    out = run(cell, "seq", p)
    for name in ("y", "h_n", "c_n"):
        if name in out:
            assert_identical(
                {name: out[name]}, {name: out[name + "_inference"]}, "between training modes"
            )


@pytest.mark.parametrize("cell", CELLS)
def test_twenty_runs_over_thread_counts_are_bit_identical(cell: str, restore_threads: int) -> None:
    """20 runs, cycling through 1, 2 and 4 threads, of a forward and backward: all equal."""
    shape = SHAPES[0]
    p = make_problem(cell, "seq", shape, np.float32, _seed(cell, shape))
    first = None
    for k in range(20):
        rnnkit.set_num_threads((1, 2, 4)[k % 3])
        result = run(cell, "seq", p)
        if first is None:
            first = result
        else:
            assert_identical(first, result, f"between run 1 and run {k + 1}")
