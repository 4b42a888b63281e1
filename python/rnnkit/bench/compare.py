#!/usr/bin/env python3
"""rnnkit against its peers on the CPU: ``torch.nn.LSTM/GRU/RNN`` and ONNX Runtime (issue 4).

Every comparison runs in a fresh process of its own (this script started again as a worker),
in which the libraries get the same thread count (``rnnkit.set_num_threads``,
``torch.set_num_threads``, ONNX Runtime's ``intra_op_num_threads``) and the same weights and
inputs; outputs (and gradients) are checked to agree before anything is timed, and the
benchmark stops if they do not. Timings are medians over at least ``--reps`` (5) interleaved
repetitions: after a warm-up the contenders take turns (a, b, c, a, b, c, ...), one timed call
each per turn, calls under 50 ms preceded by an untimed call in each turn.

Parts (positional arguments; none, or ``all``, runs them all):

``cells``
    LSTM, GRU and tanh RNN, one layer, at ``(T, B, I, H)`` = (100,64,512,512),
    (50,128,1024,1024), (100,8,256,256), (200,1,128,128): forward (rnnkit ``training=False``,
    torch under ``inference_mode()``, ONNX Runtime) and forward+backward (rnnkit, torch).
``layers``
    A 2-layer bidirectional LSTM (100,32,256,256), ``rnnkit.nn.LSTM`` against
    ``torch.nn.LSTM``, forward (``m.eval()``) and forward+backward (``m.train()``,
    ``m.backward``).
``lengths``
    An LSTM (100,32,256,256) on a batch of lengths drawn uniformly from [T/4, T]: rnnkit's
    ``lengths=`` against torch's ``PackedSequence`` (``pack_padded_sequence`` ...
    ``pad_packed_sequence``), torch on the padded batch (all T steps), ONNX Runtime's
    ``sequence_lens`` (forward), and both libraries on a full-length batch holding the same
    number of real tokens.
``memory``
    Training memory: the peak resident set size of forward+backward, rnnkit and torch, each in
    a fresh process, against a baseline process that builds the same data and runs nothing.
``threads``
    The speed-up from 1 to N threads (N = ``--threads``, 2 if that is 1) at (100,64,512,512),
    every library, and whether rnnkit's results are bit-identical across the two counts.
``neighbour``
    The slowdown with a busy neighbour, a Python process spinning on one core (``while
    True: pass``; stopped with SIGSTOP between the busy turns), at (100,64,512,512), and
    whether rnnkit's results stay bit-identical.
``gru_reset``
    The GRU with the reset gate applied before the recurrent matmul (ONNX's default,
    ``linear_before_reset=0``, which ``torch.nn.GRU`` does not have), one layer, at the
    shapes of ``cells``: rnnkit's kernels (``training=False``) against ONNX Runtime, forward.

Figures: milliseconds and effective GFLOP/s, forward flops ``2*T*B*(I+H)*G*H`` per layer and
direction (G = 4 LSTM, 3 GRU, 1 RNN; with lengths, T*B is the number of real tokens),
forward+backward counted as 3x forward; "vs best peer" is the fastest peer's median time over
rnnkit's (> 1: rnnkit is faster). The header gives the machine, versions, threads, OpenBLAS
kernels and the float32 GEMM ceiling (``numpy.matmul``, 2048^3).

Usage (benchmark with the variables that force OpenBLAS kernels unset, see BENCHMARKS.md)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/compare.py      # all, ~5 min
    python bench/compare.py cells --cells lstm --shapes "100,8,256,256"      # one part
    python bench/compare.py all --quick --markdown out.md --png out.png      # smoke run

Needs torch, onnx and onnxruntime (``--no-ort`` leaves ONNX Runtime out); the chart needs
matplotlib (without it the chart is skipped with a message).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import rnnkit
from rnnkit import nn
from rnnkit.convert import to_onnx_weights

from ._common import (
    CELL_NAMES,
    GATES,
    GEMM_N,
    GRAD_TOL,
    OUTPUT_TOL,
    SETTLE_BELOW_S,
    Agreement,
    Samples,
    Shape,
    check_agreement,
    default_threads,
    fmt_gflops,
    fmt_ms,
    gemm_ceiling,
    header_lines,
    import_torch,
    interleave,
    make_problem,
    markdown_table,
    parse_cells,
    parse_shape,
    parse_shapes,
    positive_int,
    rnnkit_backward,
    rnnkit_forward,
    rnnkit_inference,
    rnnkit_train_step,
    set_numpy_blas_threads,
    shape_text,
    text_table,
    torch_inference,
    torch_module,
    torch_train_step,
)

PARTS = ("cells", "layers", "lengths", "memory", "threads", "neighbour", "gru_reset")
CELL_SHAPES: tuple[Shape, ...] = (
    (100, 64, 512, 512),
    (50, 128, 1024, 1024),
    (100, 8, 256, 256),
    (200, 1, 128, 128),
)
LAYERS_SHAPE: Shape = (100, 32, 256, 256)
LAYERS = 2  # the layers part: a 2-layer bidirectional LSTM
LENGTHS_SHAPE: Shape = (100, 32, 256, 256)
THREADS_SHAPE: Shape = (100, 64, 512, 512)
NEIGHBOUR_SHAPE: Shape = (100, 64, 512, 512)
MEMORY_SHAPE: Shape = (100, 64, 512, 512)  # the single-layer cells; the stack uses LAYERS_SHAPE
MEMORY_STEPS = 2  # forward+backward steps per memory measurement (the second: steady state)
ONNX_OPSET = 21
ONNX_IR_VERSION = 10
WORKER = "_worker"  # argv[1] of a worker process: WORKER SPEC_JSON RESULT_PATH
FWD, TRAIN = "fwd", "fwd+bwd"
# The neighbour: a core kept busy by Python, exiting by itself if its parent (the worker) dies.
SPINNER = (
    "import os\n"
    "parent = os.getppid()\n"
    "while os.getppid() == parent:\n"
    "    for _ in range(1_000_000):\n"
    "        pass\n"
)

F32 = NDArray[np.float32]


# =========================================================================== settings
@dataclass
class Settings:
    """What every worker needs to know (sent to it as JSON)."""

    threads: int
    reps: int
    min_time: float
    max_reps: int
    warmup: int
    seed: int
    ort: bool


@dataclass
class Entry:
    """One contender's timed calls in one pass of one comparison."""

    times: list[float]
    settle: bool
    flops: float  #: useful flops of one call

    @property
    def median(self) -> float:
        return float(np.median(self.times))

    @property
    def gflops(self) -> float:
        return self.flops / self.median / 1e9

    def cell_text(self) -> str:
        """``"ms / GFLOP/s"``."""
        return f"{fmt_ms(self.median)} / {fmt_gflops(self.gflops)}"


@dataclass
class Result:
    """What one worker reports: for each pass (``"fwd"``, ``"fwd+bwd"``) each contender's
    entry, in turn order, and part-specific facts in ``info``."""

    spec: dict[str, Any]
    passes: dict[str, dict[str, Entry]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "spec": self.spec,
                "passes": {
                    p: {k: asdict(e) for k, e in es.items()} for p, es in self.passes.items()
                },
                "info": self.info,
            }
        )

    @staticmethod
    def from_json(text: str) -> Result:
        d = json.loads(text)
        passes = {p: {k: Entry(**e) for k, e in es.items()} for p, es in d["passes"].items()}
        return Result(d["spec"], passes, d["info"])


# =========================================================================== helpers
def stack_flops(cell: str, shape: Shape, layers: int = 1, directions: int = 1) -> float:
    """Forward flops of a stack: ``2*T*B*(I_l+H)*G*H`` per layer and direction, where layer
    ``l > 0`` reads the ``D*H`` wide output of the layer below."""
    t, b, i, h = shape
    total = 0.0
    for layer in range(layers):
        width = i if layer == 0 else directions * h
        total += directions * 2.0 * t * b * (width + h) * GATES[cell] * h
    return total


def nn_class(cell: str) -> Callable[..., nn.RNNBase]:
    """``rnnkit.nn.LSTM``, ``GRU`` or ``RNN``."""
    return {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]


def rnnkit_module(cell: str, torch_mod: Any, *, training: bool) -> nn.RNNBase:
    """An ``rnnkit.nn`` module with the configuration and weights of ``torch_mod``."""
    m = nn_class(cell)(
        torch_mod.input_size,
        torch_mod.hidden_size,
        num_layers=torch_mod.num_layers,
        bidirectional=torch_mod.bidirectional,
    )
    m.load_state_dict(torch_mod.state_dict())
    return m.train(training)


def import_ort() -> Any:
    """Import onnxruntime (and check onnx is there) or exit with the install instruction."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # type: ignore[import-untyped]
    except ImportError as e:
        sys.exit(
            f"compare.py compares with ONNX Runtime and builds its model with onnx ({e}): "
            "pip install onnx==1.23.2 onnxruntime==1.32.0, or pass --no-ort to leave it out"
        )
    return onnxruntime


def ort_session(ort: Any, module: nn.RNNBase, t: int, b: int, threads: int, lengths: bool) -> Any:
    """An ONNX Runtime session of one ``LSTM``/``GRU``/``RNN`` node holding ``module``'s
    weights (``rnnkit.convert.to_onnx_weights``: ONNX gate orders, ``linear_before_reset=1``
    for the GRU), built with ``onnx.helper``; inputs ``X [T, B, I]`` and, with ``lengths``,
    ``sequence_lens [B]`` (int32); outputs ``Y [T, D, B, H]``, ``Y_h`` (and ``Y_c``).
    ``threads`` intra-op threads, one inter-op thread, sequential execution, the pool's
    spinning stopped when a run returns."""
    from onnx import TensorProto, checker, helper, numpy_helper

    w = to_onnx_weights(module)
    i, h, d = module.input_size, module.hidden_size, w.W.shape[0]
    initializers = [numpy_helper.from_array(w.W, "W"), numpy_helper.from_array(w.R, "R")]
    node_inputs = ["X", "W", "R", ""]
    if w.B is not None:
        initializers.append(numpy_helper.from_array(w.B, "B"))
        node_inputs[3] = "B"
    graph_inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [t, b, i])]
    if lengths:
        node_inputs.append("sequence_lens")
        graph_inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, [b]))
    while node_inputs[-1] == "":
        node_inputs.pop()
    outputs = ["Y", "Y_h"] + (["Y_c"] if w.op_type == "LSTM" else [])
    shapes = {"Y": [t, d, b, h], "Y_h": [d, b, h], "Y_c": [d, b, h]}
    node = helper.make_node(w.op_type, node_inputs, outputs, **w.attributes)
    graph = helper.make_graph(
        [node],
        f"rnnkit_bench_{w.op_type}",
        graph_inputs,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shapes[n]) for n in outputs],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        producer_name="rnnkit bench/compare.py",
    )
    model.ir_version = ONNX_IR_VERSION
    checker.check_model(model, full_check=True)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ORT's pool threads spin while idle, keeping the cores from whatever runs next in this
    # process (torch took 300 ms instead of 0.1 ms after an ORT call, at 2 threads on 2 cores).
    # Stop the spinning when Run() returns; ORT still spins during a Run (switching spinning
    # off made ORT up to 1.6x slower on short calls, stopping it afterwards did not).
    so.add_session_config_entry("session.force_spinning_stop", "1")
    return ort.InferenceSession(
        model.SerializeToString(), sess_options=so, providers=["CPUExecutionProvider"]
    )


def set_library_threads(torch: Any, n: int) -> None:
    """The same thread count for rnnkit and torch."""
    rnnkit.set_num_threads(n)
    torch.set_num_threads(n)


def set_threads(torch: Any, n: int) -> None:
    """The same thread count for rnnkit, torch and numpy's BLAS."""
    set_library_threads(torch, n)
    set_numpy_blas_threads(n)


def describe(label: str, what: str, samples: Mapping[str, Samples]) -> str:
    """One progress line: each contender's median [min-max] ms."""
    parts = [
        f"{name} {fmt_ms(s.median)} [{fmt_ms(min(s.times))}-{fmt_ms(max(s.times))}]"
        for name, s in samples.items()
    ]
    turns = len(next(iter(samples.values())).times)
    return f"{label}: {what:7} " + ", ".join(parts) + f" ms; {turns} turns"


def measure(
    s: Settings,
    label: str,
    what: str,
    runs: Mapping[str, Callable[[], object]],
    flops: Mapping[str, float],
    **hooks: Any,
) -> dict[str, Entry]:
    """Interleave ``runs`` as the settings say, print a progress line, return the entries."""
    samples = interleave(
        runs,
        reps=s.reps,
        max_reps=max(s.max_reps, s.reps),
        min_time=s.min_time,
        warmup=s.warmup,
        **hooks,
    )
    print(describe(label, what, samples), flush=True)
    return {k: Entry(v.times, v.settle, flops[k]) for k, v in samples.items()}


# =========================================================================== workers
def work_cells(torch: Any, s: Settings, spec: dict[str, Any]) -> Result:
    """One cell and shape: rnnkit's kernels, torch.nn and ONNX Runtime (forward)."""
    cell, shape = spec["cell"], parse_shape(spec["shape"])
    label = f"{CELL_NAMES[cell]:4} {shape_text(shape)}"
    p = make_problem(torch, cell, shape, s.seed)
    errors = check_agreement(torch, p)
    worst = max(errors, key=lambda k: errors[k])
    res = Result(spec, info={"agree_torch": f"{worst} {errors[worst]:.1e}"})
    fwd: dict[str, Callable[[], object]] = {
        "rnnkit": partial(rnnkit_inference, p),
        "torch": partial(torch_inference, torch, p),
    }
    if s.ort:
        t, b = shape[0], shape[1]
        sess = ort_session(
            import_ort(), rnnkit_module(cell, p.module, training=False), t, b, s.threads, False
        )
        feeds = {"X": p.x}
        outs = sess.run(None, feeds)
        y, h_n, c_n, _ = rnnkit_forward(p, training=False)
        a = Agreement("ORT")
        a.compare("Y", y, outs[0][:, 0], OUTPUT_TOL)
        a.compare("Y_h", h_n, outs[1][0], OUTPUT_TOL)
        if c_n is not None:
            a.compare("Y_c", c_n, outs[2][0], OUTPUT_TOL)
        a.check(label)
        res.info["agree_ort"] = a.worst()
        fwd["ORT"] = partial(sess.run, None, feeds)
    print(f"{label}: outputs and gradients agree (worst: {', '.join(res.info.values())})")
    flops = stack_flops(cell, shape)
    res.passes[FWD] = measure(s, label, FWD, fwd, dict.fromkeys(fwd, flops))
    train = {"rnnkit": partial(rnnkit_train_step, p), "torch": partial(torch_train_step, p)}
    res.passes[TRAIN] = measure(s, label, TRAIN, train, dict.fromkeys(train, 3 * flops))
    return res


def work_gru_reset(torch: Any, s: Settings, spec: dict[str, Any]) -> Result:
    """The GRU with the reset before the matmul: rnnkit's kernels against ONNX Runtime."""
    shape = parse_shape(spec["shape"])
    t, b, i, h = shape
    label = f"GRU (reset first) {shape_text(shape)}"
    rng = np.random.default_rng(s.seed)
    m = nn.GRU(i, h, linear_before_reset=False)
    bound = 1.0 / np.sqrt(h)  # (torch's initialisation range)
    m.load_state_dict(
        {
            k: rng.uniform(-bound, bound, v.shape).astype(np.float32)
            for k, v in m.state_dict().items()
        }
    )
    m.train(False)
    state = m.state_dict()
    weights = [state[k] for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
    x = rng.standard_normal((t, b, i)).astype(np.float32)

    def forward() -> Any:
        return rnnkit.gru_forward(x, None, *weights, linear_before_reset=False, training=False)

    sess = ort_session(import_ort(), m, t, b, s.threads, False)
    feeds = {"X": x}
    outs = sess.run(None, feeds)
    y, h_n, _ = forward()
    a = Agreement("ORT")
    a.compare("Y", y, outs[0][:, 0], OUTPUT_TOL)
    a.compare("Y_h", h_n, outs[1][0], OUTPUT_TOL)
    a.check(label)
    res = Result(spec, info={"agree_ort": a.worst()})
    print(f"{label}: outputs agree (worst: {res.info['agree_ort']})")
    fwd: dict[str, Callable[[], object]] = {
        "rnnkit": forward,
        "ORT": partial(sess.run, None, feeds),
    }
    res.passes[FWD] = measure(s, label, FWD, fwd, dict.fromkeys(fwd, stack_flops("gru", shape)))
    return res


@dataclass
class StackProblem:
    """A ``torch.nn`` module, ``rnnkit.nn`` modules with its weights (one in eval mode, one in
    train mode), and ``x``/``dy`` as arrays and tensors."""

    cell: str
    shape: Shape
    tm: Any  #: the torch module
    m_eval: nn.RNNBase
    m_train: nn.RNNBase
    x: F32
    dy: F32
    x_t: Any
    x_grad: Any
    dy_t: Any


def make_stack(
    torch: Any, cell: str, shape: Shape, layers: int, bidirectional: bool, seed: int
) -> StackProblem:
    t, b, i, h = shape
    torch.manual_seed(seed)
    tm = torch_module(torch, cell, i, h, num_layers=layers, bidirectional=bidirectional)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((t, b, i), dtype=np.float32)
    dy = rng.standard_normal((t, b, (2 if bidirectional else 1) * h), dtype=np.float32)
    return StackProblem(
        cell,
        shape,
        tm,
        rnnkit_module(cell, tm, training=False),
        rnnkit_module(cell, tm, training=True),
        x,
        dy,
        torch.from_numpy(x),
        torch.from_numpy(x.copy()).requires_grad_(True),
        torch.from_numpy(dy),
    )


def final_states(cell: str, state: Any) -> list[tuple[str, Any]]:
    """``[("h_n", h), ("c_n", c)]`` (LSTM) or ``[("h_n", h)]``."""
    if cell == "lstm":
        return [("h_n", state[0]), ("c_n", state[1])]
    return [("h_n", state)]


def check_stack(
    torch: Any,
    q: StackProblem,
    what: str,
    run_torch: Callable[[Any], tuple[Any, Any]],
    lengths: NDArray[np.int64] | None = None,
) -> str:
    """Compare the rnnkit modules with torch (outputs in both modes, ``dx`` and every
    parameter gradient); ``run_torch(x)`` returns torch's ``(y, state)``. Exits on
    disagreement; returns the worst error."""
    a = Agreement("torch")
    with torch.inference_mode():
        t_y, t_state = run_torch(q.x_t)
    y, state = q.m_eval.forward(q.x, lengths=lengths)
    a.compare("y (inference)", np.asarray(y), t_y, OUTPUT_TOL)
    tstates = dict(final_states(q.cell, t_state))
    for name, mine in final_states(q.cell, state):
        a.compare(f"{name} (inference)", mine, tstates[name], OUTPUT_TOL)
    q.tm.zero_grad(set_to_none=True)
    q.x_grad.grad = None
    t_y, t_state = run_torch(q.x_grad)
    t_y.backward(q.dy_t)
    q.m_train.zero_grad()
    y, state = q.m_train.forward(q.x, lengths=lengths)
    dx = q.m_train.backward(q.dy)
    a.compare("y", np.asarray(y), t_y, OUTPUT_TOL)
    tstates = dict(final_states(q.cell, t_state))
    for name, mine in final_states(q.cell, state):
        a.compare(name, mine, tstates[name], OUTPUT_TOL)
    a.compare("dx", dx, q.x_grad.grad, GRAD_TOL)
    for name, param in q.tm.named_parameters():
        a.compare(f"d{name}", q.m_train.grads[name], param.grad, GRAD_TOL)
    a.check(what)
    return a.worst()


def rnnkit_stack_step(q: StackProblem, lengths: Any = None) -> None:
    """Training step of the rnnkit module: zero the gradients, forward, backward."""
    q.m_train.zero_grad()
    q.m_train.forward(q.x, lengths=lengths)
    q.m_train.backward(q.dy)


def torch_stack_step(q: StackProblem) -> None:
    q.tm.zero_grad(set_to_none=True)
    q.x_grad.grad = None
    y, _ = q.tm(q.x_grad)
    y.backward(q.dy_t)


def torch_stack_inference(torch: Any, q: StackProblem) -> None:
    with torch.inference_mode():
        q.tm(q.x_t)


def work_layers(torch: Any, s: Settings, spec: dict[str, Any]) -> Result:
    """A stacked bidirectional module: ``rnnkit.nn`` against ``torch.nn``."""
    cell, shape, layers = spec["cell"], parse_shape(spec["shape"]), spec["layers"]
    label = f"{layers}-layer bidirectional {CELL_NAMES[cell]} {shape_text(shape)}"
    q = make_stack(torch, cell, shape, layers, True, s.seed)
    worst = check_stack(torch, q, label, q.tm)
    print(f"{label}: outputs and gradients agree (worst: {worst})")
    res = Result(spec, info={"agree_torch": worst})
    flops = stack_flops(cell, shape, layers, 2)
    fwd: dict[str, Callable[[], object]] = {
        "rnnkit": partial(q.m_eval.forward, q.x),
        "torch": partial(torch_stack_inference, torch, q),
    }
    res.passes[FWD] = measure(s, label, FWD, fwd, dict.fromkeys(fwd, flops))
    train = {"rnnkit": partial(rnnkit_stack_step, q), "torch": partial(torch_stack_step, q)}
    res.passes[TRAIN] = measure(s, label, TRAIN, train, dict.fromkeys(train, 3 * flops))
    return res


def work_lengths(torch: Any, s: Settings, spec: dict[str, Any]) -> Result:
    """Variable lengths: rnnkit ``lengths=`` vs torch PackedSequence, torch padded, ORT
    ``sequence_lens``, and both libraries on a full batch with as many real tokens."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    cell, shape = spec["cell"], parse_shape(spec["shape"])
    t, b, i, h = shape
    label = f"{CELL_NAMES[cell]} {shape_text(shape)} lengths"
    rng = np.random.default_rng(s.seed + 1)
    lengths = rng.integers(max(1, t // 4), t + 1, size=b)
    tokens = int(lengths.sum())
    b_dense = max(1, round(tokens / t))
    q = make_stack(torch, cell, shape, 1, False, s.seed)
    real = np.arange(t)[:, None] < lengths[None, :]  # [T, B]
    q.dy *= real[:, :, None]  # dy_t shares the memory: no gradient on padding for either
    lengths_t = torch.from_numpy(lengths)

    def torch_packed(x: Any) -> tuple[Any, Any]:
        packed = pack_padded_sequence(x, lengths_t, enforce_sorted=False)
        out, state = q.tm(packed)
        y, _ = pad_packed_sequence(out, total_length=t)
        return y, state

    worst = check_stack(torch, q, label, torch_packed, lengths)
    res = Result(
        spec,
        info={
            "agree_torch": worst,
            "lengths_min": int(lengths.min()),
            "lengths_max": int(lengths.max()),
            "tokens": tokens,
            "dense_batch": b_dense,
        },
    )
    dense = make_stack(torch, cell, (t, b_dense, i, h), 1, False, s.seed)
    dense.m_eval.load_state_dict(q.m_eval.params)
    dense.m_train.load_state_dict(q.m_eval.params)
    dense.tm.load_state_dict(q.tm.state_dict())

    def torch_packed_inference() -> None:
        with torch.inference_mode():
            torch_packed(q.x_t)

    def torch_packed_step() -> None:
        q.tm.zero_grad(set_to_none=True)
        q.x_grad.grad = None
        y, _ = torch_packed(q.x_grad)
        y.backward(q.dy_t)

    fwd: dict[str, Callable[[], object]] = {
        "rnnkit": partial(q.m_eval.forward, q.x, lengths=lengths),
        "torch packed": torch_packed_inference,
        "torch padded": partial(torch_stack_inference, torch, q),
    }
    if s.ort:
        sess = ort_session(import_ort(), q.m_eval, t, b, s.threads, True)
        feeds = {"X": q.x, "sequence_lens": lengths.astype(np.int32)}
        outs = sess.run(None, feeds)
        y, (h_n, c_n) = q.m_eval.forward(q.x, lengths=lengths)
        a = Agreement("ORT")
        a.compare("Y", np.asarray(y), outs[0][:, 0], OUTPUT_TOL)
        a.compare("Y_h", h_n[0], outs[1][0], OUTPUT_TOL)
        a.compare("Y_c", c_n[0], outs[2][0], OUTPUT_TOL)
        a.check(label)
        res.info["agree_ort"] = a.worst()
        fwd["ORT"] = partial(sess.run, None, feeds)
    fwd["rnnkit same tokens"] = partial(dense.m_eval.forward, dense.x)
    fwd["torch same tokens"] = partial(torch_stack_inference, torch, dense)
    agree = ", ".join(v for k, v in res.info.items() if k.startswith("agree"))
    print(
        f"{label}: lengths in [{lengths.min()}, {lengths.max()}], {tokens} real tokens of "
        f"{t * b} ({100 * tokens / (t * b):.0f}%); same-token batch {t}x{b_dense} = "
        f"{t * b_dense}; outputs and gradients agree (worst: {agree})",
        flush=True,
    )
    useful = 2.0 * tokens * (i + h) * GATES[cell] * h
    flops = dict.fromkeys(fwd, useful)
    flops["rnnkit same tokens"] = flops["torch same tokens"] = stack_flops(cell, (t, b_dense, i, h))
    res.passes[FWD] = measure(s, label, FWD, fwd, flops)
    train: dict[str, Callable[[], object]] = {
        "rnnkit": partial(rnnkit_stack_step, q, lengths),
        "torch packed": torch_packed_step,
        "torch padded": partial(torch_stack_step, q),
        "rnnkit same tokens": partial(rnnkit_stack_step, dense),
        "torch same tokens": partial(torch_stack_step, dense),
    }
    res.passes[TRAIN] = measure(s, label, TRAIN, train, {k: 3 * v for k, v in flops.items()})
    return res


def proc_status_kib(name: str) -> int | None:
    """A ``/proc/self/status`` value in KiB (``VmRSS``, ``VmHWM``), or None off Linux."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{name}:\s+(\d+) kB", text, re.MULTILINE)
    return None if match is None else int(match.group(1))


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def work_memory(torch: Any, s: Settings, spec: dict[str, Any]) -> Result:
    """Peak RSS of ``MEMORY_STEPS`` training steps of one library (``spec["lib"]``: "rnnkit",
    "torch", or "none" for the baseline). Every process does the same before: one training
    step of each library on a tiny problem (one-time initialisation: thread pools, torch's
    autograd engine, JIT-compiled kernels), then builds the same data: both modules, torch's
    ``.grad`` tensors (rnnkit's ``grads`` exist from construction), ``x``, ``dy``."""
    cell, shape, lib = spec["cell"], parse_shape(spec["shape"]), spec["lib"]
    tiny = make_stack(torch, cell, (3, 2, 8, 8), spec["layers"], spec["bidirectional"], s.seed)
    rnnkit_stack_step(tiny)
    torch_stack_step(tiny)
    del tiny
    q = make_stack(torch, cell, shape, spec["layers"], spec["bidirectional"], s.seed)
    for param in q.tm.parameters():
        param.grad = torch.zeros_like(param)

    def torch_step() -> None:
        q.tm.zero_grad(set_to_none=False)  # gradients stay allocated, as rnnkit's
        q.x_grad.grad = None
        y, _ = q.tm(q.x_grad)
        y.backward(q.dy_t)

    steps: dict[str, Callable[[], None] | None] = {
        "rnnkit": partial(rnnkit_stack_step, q),
        "torch": torch_step,
        "none": None,
    }
    step = steps[lib]
    hwm_setup = proc_status_kib("VmHWM")
    rss_before = proc_status_kib("VmRSS")
    reset = reset_peak_rss()
    for _ in range(MEMORY_STEPS if step is not None else 0):
        step()  # type: ignore[misc]
    hwm_run = proc_status_kib("VmHWM")
    info: dict[str, Any] = {"rss_before_kib": rss_before, "reset": reset}
    if hwm_setup is not None and hwm_run is not None:
        info["peak_kib"] = max(hwm_setup, hwm_run)
        if reset and rss_before is not None:
            info["growth_kib"] = hwm_run - rss_before
    return Result(spec, info=info)


def work_threads(torch: Any, s: Settings, spec: dict[str, Any]) -> Result:
    """Every library at 1 and N threads, interleaved in one process (the thread count is set
    at the start of each turn, and each turn makes an untimed call first)."""
    cell, shape, counts = spec["cell"], parse_shape(spec["shape"]), spec["counts"]
    label = f"{CELL_NAMES[cell]:4} {shape_text(shape)}"
    p = make_problem(torch, cell, shape, s.seed)
    check_agreement(torch, p)

    def forward_outputs() -> list[F32]:
        y, h_n, c_n, _ = rnnkit_forward(p, training=False)
        return [y, h_n] + ([] if c_n is None else [c_n])

    def train_outputs() -> list[F32]:
        y, _, _, cache = rnnkit_forward(p, training=True)
        return [y, *rnnkit_backward(p, cache)]

    identical = {}
    for what, outputs in ((FWD, forward_outputs), (TRAIN, train_outputs)):
        got = []
        for n in counts:
            set_library_threads(torch, n)
            got.append(outputs())
        identical[what] = all(np.array_equal(a, b) for a, b in zip(got[0], got[1], strict=True))
    res = Result(spec, info={"identical": identical})
    fwd: dict[str, Callable[[], object]] = {}
    train: dict[str, Callable[[], object]] = {}
    before: dict[str, Callable[[], None]] = {}
    for n in counts:
        fwd[f"rnnkit {n}"] = partial(rnnkit_inference, p)
        fwd[f"torch {n}"] = partial(torch_inference, torch, p)
        train[f"rnnkit {n}"] = partial(rnnkit_train_step, p)
        train[f"torch {n}"] = partial(torch_train_step, p)
        for lib in ("rnnkit", "torch", "ORT"):
            before[f"{lib} {n}"] = partial(set_library_threads, torch, n)
    if s.ort:
        ort = import_ort()
        m = rnnkit_module(cell, p.module, training=False)
        for n in counts:
            sess = ort_session(ort, m, shape[0], shape[1], n, False)
            fwd[f"ORT {n}"] = partial(sess.run, None, {"X": p.x})
    print(f"{label}: rnnkit bit-identical across {counts} threads: {identical}", flush=True)
    flops = stack_flops(cell, shape)
    res.passes[FWD] = measure(
        s, label, FWD, fwd, dict.fromkeys(fwd, flops), before=before, settle_all=True
    )
    res.passes[TRAIN] = measure(
        s, label, TRAIN, train, dict.fromkeys(train, 3 * flops), before=before, settle_all=True
    )
    return res


@contextmanager
def spinner() -> Iterator[subprocess.Popen[bytes]]:
    """A Python process keeping one core busy, stopped (SIGSTOP) to begin with; killed on
    exit. ``os.kill(pid, SIGCONT)`` lets it run."""
    proc = subprocess.Popen([sys.executable, "-c", SPINNER])
    try:
        os.kill(proc.pid, signal.SIGSTOP)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def work_neighbour(torch: Any, s: Settings, spec: dict[str, Any]) -> Result:
    """rnnkit and torch, each with the neighbour stopped ("quiet") and running ("busy"),
    interleaved; every timed rnnkit (and torch) result compared bit for bit with a quiet
    reference computed first."""
    cell, shape = spec["cell"], parse_shape(spec["shape"])
    label = f"{CELL_NAMES[cell]:4} {shape_text(shape)}"
    p = make_problem(torch, cell, shape, s.seed)
    check_agreement(torch, p)
    last: dict[str, list[Any]] = {}

    def rnnkit_fwd(key: str) -> None:
        y, h_n, c_n, _ = rnnkit_forward(p, training=False)
        last[key] = [y, h_n] + ([] if c_n is None else [c_n])

    def rnnkit_train(key: str) -> None:
        y, _, _, cache = rnnkit_forward(p, training=True)
        last[key] = [y, *rnnkit_backward(p, cache)]

    def torch_fwd(key: str) -> None:
        with torch.inference_mode():
            y, _ = p.module(p.x_torch)
        last[key] = [y.numpy()]

    def torch_train(key: str) -> None:
        torch_train_step(p)
        module: Any = p.module
        last[key] = [
            module.weight_hh_l0.grad.detach().numpy().copy(),
            p.x_grad.grad.detach().numpy().copy(),  # type: ignore[union-attr]
        ]

    res = Result(spec)
    mismatches: dict[str, int] = {}
    with spinner() as neighbour:

        def quiet() -> None:
            os.kill(neighbour.pid, signal.SIGSTOP)

        def busy() -> None:
            os.kill(neighbour.pid, signal.SIGCONT)

        for what, rk, tc in ((FWD, rnnkit_fwd, torch_fwd), (TRAIN, rnnkit_train, torch_train)):
            reference: dict[str, list[Any]] = {}
            for lib, fn in (("rnnkit", rk), ("torch", tc)):
                fn(lib)
                reference[lib] = last.pop(lib)
            runs: dict[str, Callable[[], object]] = {}
            before: dict[str, Callable[[], None]] = {}
            after: dict[str, Callable[[], None]] = {}
            for lib, fn in (("rnnkit", rk), ("torch", tc)):
                for mode, hook in (("quiet", quiet), ("busy", busy)):
                    key = f"{lib} {mode}"
                    mismatches[f"{what} {key}"] = 0
                    runs[key] = partial(fn, key)
                    before[key] = hook

                    def compare(
                        key: str = key, ref: list[Any] = reference[lib], what: str = what
                    ) -> None:
                        same = all(
                            np.array_equal(a, b) for a, b in zip(last[key], ref, strict=True)
                        )
                        mismatches[f"{what} {key}"] += 0 if same else 1

                    after[key] = compare
            flops = (3 if what == TRAIN else 1) * stack_flops(cell, shape)
            res.passes[what] = measure(
                s, label, what, runs, dict.fromkeys(runs, flops), before=before, after=after
            )
            quiet()
    res.info["mismatches"] = mismatches
    print(f"{label}: results differing from the quiet reference: {mismatches}", flush=True)
    return res


WORKERS: dict[str, Callable[[Any, Settings, dict[str, Any]], Result]] = {
    "cells": work_cells,
    "layers": work_layers,
    "lengths": work_lengths,
    "memory": work_memory,
    "threads": work_threads,
    "neighbour": work_neighbour,
    "gru_reset": work_gru_reset,
}


def worker_main(spec_json: str, result_path: str) -> int:
    """Entry point of a worker process: run one comparison, write its :class:`Result`."""
    spec = json.loads(spec_json)
    s = Settings(**spec["settings"])
    torch = import_torch()
    set_threads(torch, s.threads)
    if s.ort:
        import_ort()  # every process of a run imports the same libraries
    res = WORKERS[spec["part"]](torch, s, spec)
    Path(result_path).write_text(res.to_json())
    return 0


# =========================================================================== orchestration
def run_worker(spec: dict[str, Any]) -> Result:
    """Run one comparison in a fresh process (this script as a worker); exit if it fails."""
    with tempfile.TemporaryDirectory(prefix="rnnkit-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "rnnkit.bench.compare", WORKER, json.dumps(spec), str(out)]
        sys.stdout.flush()
        rc = subprocess.run(cmd, check=False).returncode
        if rc != 0 or not out.exists():
            sys.exit(f"ABORT: the {spec['part']} comparison {spec} failed (exit status {rc})")
        return Result.from_json(out.read_text())


def ratio_text(entries: Mapping[str, Entry], mine: str, peers: Sequence[str]) -> str:
    """``"1.23x torch"``: the fastest of ``peers`` over ``mine`` (> 1: mine is faster)."""
    present = [k for k in peers if k in entries]
    if not present:
        return "-"
    best = min(present, key=lambda k: entries[k].median)
    return f"{entries[best].median / entries[mine].median:.2f}x {best}"


@dataclass
class Section:
    """One part's printed and Markdown output."""

    title: str
    notes: str
    columns: Sequence[str]
    body: list[list[str]]
    left: int = 2  #: leading text columns

    def text(self) -> str:
        return "\n".join(
            [
                f"== {self.title}",
                textwrap.fill(self.notes, width=100),
                "",
                text_table(self.columns, self.body, self.left),
            ]
        )

    def markdown(self) -> str:
        return "\n".join(
            [
                f"## {self.title}",
                "",
                self.notes,
                "",
                markdown_table(self.columns, self.body, self.left),
            ]
        )


TIMING_NOTE = (
    "Entries: median ms / effective GFLOP/s (forward flops 2·T·B·(I+H)·G·H per layer and "
    "direction, G = 4 LSTM, 3 GRU, 1 RNN; forward+backward counted as 3x forward). 'vs best "
    "peer' = the fastest peer's median / rnnkit's (> 1: rnnkit faster), then the peer."
)


def cells_section(results: Sequence[Result]) -> Section:
    columns = [
        "cell",
        "T,B,I,H",
        "rnnkit fwd",
        "torch fwd",
        "ORT fwd",
        "fwd vs best peer",
        "rnnkit fwd+bwd",
        "torch fwd+bwd",
        "fwd+bwd vs best peer",
    ]
    body = []
    for r in results:
        f, t = r.passes[FWD], r.passes[TRAIN]
        body.append(
            [
                CELL_NAMES[r.spec["cell"]],
                r.spec["shape"],
                f["rnnkit"].cell_text(),
                f["torch"].cell_text(),
                f["ORT"].cell_text() if "ORT" in f else "-",
                ratio_text(f, "rnnkit", ("torch", "ORT")),
                t["rnnkit"].cell_text(),
                t["torch"].cell_text(),
                ratio_text(t, "rnnkit", ("torch",)),
            ]
        )
    notes = (
        f"{TIMING_NOTE} One layer. Forward: rnnkit's kernels with training=False, torch.nn "
        "under inference_mode(), ONNX Runtime on one LSTM/GRU/RNN node (weights from "
        "rnnkit.convert.to_onnx_weights; intra_op_num_threads = threads, inter_op 1, "
        "sequential). fwd+bwd: rnnkit forward(training=True) + backward(dy) vs torch forward "
        "+ y.backward(dy) with x.requires_grad (ONNX Runtime has no backward)."
    )
    return Section("Cells: rnnkit vs torch.nn vs ONNX Runtime", notes, columns, body)


def gru_reset_section(results: Sequence[Result]) -> Section:
    columns = ["T,B,I,H", "rnnkit fwd", "ORT fwd", "fwd vs ORT"]
    body = [
        [
            r.spec["shape"],
            *(r.passes[FWD][who].cell_text() for who in ("rnnkit", "ORT")),
            ratio_text(r.passes[FWD], "rnnkit", ("ORT",)),
        ]
        for r in results
    ]
    notes = (
        f"{TIMING_NOTE} One GRU layer with the reset gate applied before the recurrent matmul "
        "(ONNX's default, linear_before_reset=0; torch.nn.GRU has no such placement): "
        "rnnkit's kernels with training=False against ONNX Runtime on one GRU node (weights "
        "from rnnkit.convert.to_onnx_weights), forward only."
    )
    return Section(
        "GRU with the reset before the matmul: rnnkit vs ONNX Runtime", notes, columns, body
    )


def layers_section(results: Sequence[Result]) -> Section:
    columns = [
        "model",
        "T,B,I,H",
        "rnnkit fwd",
        "torch fwd",
        "fwd vs torch",
        "rnnkit fwd+bwd",
        "torch fwd+bwd",
        "fwd+bwd vs torch",
    ]
    body = []
    for r in results:
        f, t = r.passes[FWD], r.passes[TRAIN]
        body.append(
            [
                f"{r.spec['layers']}-layer bidirectional {CELL_NAMES[r.spec['cell']]}",
                r.spec["shape"],
                f["rnnkit"].cell_text(),
                f["torch"].cell_text(),
                ratio_text(f, "rnnkit", ("torch",)).split()[0],
                t["rnnkit"].cell_text(),
                t["torch"].cell_text(),
                ratio_text(t, "rnnkit", ("torch",)).split()[0],
            ]
        )
    notes = (
        f"{TIMING_NOTE} rnnkit.nn module (m.eval() forward; m.train(): zero_grad, forward, "
        "backward(dy)) vs torch.nn module with the same state_dict."
    )
    return Section("Stacked bidirectional: rnnkit.nn vs torch.nn", notes, columns, body)


def lengths_section(results: Sequence[Result]) -> Section:
    contenders = (
        "rnnkit",
        "torch packed",
        "torch padded",
        "ORT",
        "rnnkit same tokens",
        "torch same tokens",
    )
    columns = [
        "cell",
        "pass",
        *contenders,
        "vs best peer",
        "rnnkit vs same tokens",
    ]
    body = []
    info = ""
    for r in results:
        i = r.info
        t, b = parse_shape(r.spec["shape"])[:2]
        info = (
            f"{CELL_NAMES[r.spec['cell']]} T,B,I,H = {r.spec['shape']}, lengths uniform in "
            f"[{t // 4}, {t}] (drawn: {i['lengths_min']}..{i['lengths_max']}), {i['tokens']} "
            f"real tokens of {t * b} ({100 * i['tokens'] / (t * b):.0f}%); same-token batch: "
            f"T,B = {t},{i['dense_batch']} ({t * i['dense_batch']} tokens)."
        )
        for what, entries in r.passes.items():
            body.append(
                [
                    CELL_NAMES[r.spec["cell"]],
                    what,
                    *(entries[c].cell_text() if c in entries else "-" for c in contenders),
                    ratio_text(entries, "rnnkit", ("torch packed", "torch padded", "ORT")),
                    f"{entries['rnnkit same tokens'].median / entries['rnnkit'].median:.2f}x",
                ]
            )
    notes = (
        f"{info} {TIMING_NOTE} GFLOP/s count the real tokens only (the padded run computes "
        "all T·B). rnnkit: rnnkit.nn module with lengths=; torch packed: pack_padded_sequence "
        "(enforce_sorted=False), module, pad_packed_sequence; torch padded: the module on the "
        "whole padded batch (its outputs at real steps are the same for one direction); ORT: "
        "sequence_lens; 'same tokens': a full-length batch with as many tokens. 'rnnkit vs "
        "same tokens' = rnnkit's time on the same-token batch / its time with lengths."
    )
    return Section("Variable lengths", notes, columns, body)


def mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.0f}"


def memory_section(results: Sequence[tuple[Result, Result, Result]]) -> Section:
    columns = [
        "model",
        "T,B,I,H",
        "baseline peak",
        "rnnkit over baseline",
        "torch over baseline",
        "torch / rnnkit",
        "rnnkit growth in steps",
        "torch growth in steps",
    ]
    body = []
    for base, mine, theirs in results:
        spec = base.spec
        kind = f"{CELL_NAMES[spec['cell']]}"
        if spec["layers"] > 1 or spec["bidirectional"]:
            bi = " bidirectional" if spec["bidirectional"] else ""
            kind = f"{spec['layers']}-layer{bi} {kind}"
        b0 = base.info.get("peak_kib")
        over = [
            None if b0 is None or "peak_kib" not in r.info else r.info["peak_kib"] - b0
            for r in (mine, theirs)
        ]
        ratio = "-" if None in over or not over[0] else f"{over[1] / over[0]:.2f}x"
        body.append(
            [
                kind,
                spec["shape"],
                mib(b0),
                mib(over[0]),
                mib(over[1]),
                ratio,
                mib(mine.info.get("growth_kib")),
                mib(theirs.info.get("growth_kib")),
            ]
        )
    notes = (
        "MiB. Each figure from a fresh process that first runs one training step of both "
        "libraries on a tiny problem (so one-time initialisation, e.g. thread pools, torch's "
        "autograd engine and JIT-compiled kernels, counts in neither), builds the same data "
        "(torch module with .grad tensors, rnnkit.nn module with its grads, x, dy) and then "
        f"runs {MEMORY_STEPS} training steps of one library (forward + backward(dy), "
        "x.requires_grad for torch), or nothing (baseline). 'over baseline': the process's "
        "peak RSS (VmHWM) minus the "
        "baseline process's; 'growth in steps': VmHWM (reset before the steps) minus the RSS "
        "before them. getrusage's ru_maxrss is not used: a child started by vfork+exec "
        "inherits its parent's peak."
    )
    return Section("Training memory: peak RSS of forward+backward", notes, columns, body)


def threads_section(results: Sequence[Result]) -> Section:
    counts = results[0].spec["counts"]
    lo, hi = counts
    libs = ("rnnkit", "torch", "ORT")
    columns = ["cell", "pass"]
    for lib in libs:
        columns += [f"{lib} {lo}t", f"{lib} {hi}t", f"{lib} speed-up"]
    columns.append(f"rnnkit {lo}t == {hi}t")
    body = []
    for r in results:
        for what, e in r.passes.items():
            row = [CELL_NAMES[r.spec["cell"]], what]
            for lib in libs:
                a, b = f"{lib} {lo}", f"{lib} {hi}"
                if a in e:
                    row += [fmt_ms(e[a].median), fmt_ms(e[b].median)]
                    row.append(f"{e[a].median / e[b].median:.2f}x")
                else:
                    row += ["-", "-", "-"]
            row.append("yes" if r.info["identical"][what] else "NO")
            body.append(row)
    shape = results[0].spec["shape"]
    notes = (
        f"T,B,I,H = {shape}; median ms. Each library at {lo} and {hi} threads in one process, "
        "interleaved; the thread count is set at the start of each turn, which begins with an "
        f"untimed call. Speed-up = {lo}-thread time / {hi}-thread time. Last column: rnnkit's "
        "outputs (and gradients) at the two counts compared bit for bit."
    )
    return Section(f"Threads: {lo} -> {hi}", notes, columns, body)


def neighbour_section(results: Sequence[Result]) -> Section:
    columns = ["cell", "pass"]
    for lib in ("rnnkit", "torch"):
        columns += [f"{lib} quiet", f"{lib} busy", f"{lib} slowdown", f"{lib} bit-identical"]
    body = []
    for r in results:
        for what, e in r.passes.items():
            row = [CELL_NAMES[r.spec["cell"]], what]
            for lib in ("rnnkit", "torch"):
                q, b = e[f"{lib} quiet"], e[f"{lib} busy"]
                bad = r.info["mismatches"][f"{what} {lib} quiet"]
                bad += r.info["mismatches"][f"{what} {lib} busy"]
                total = len(q.times) + len(b.times)
                same = "yes" if bad == 0 else f"NO ({bad}/{total})"
                row += [fmt_ms(q.median), fmt_ms(b.median), f"{b.median / q.median:.2f}x", same]
            body.append(row)
    shape = results[0].spec["shape"]
    threads = results[0].spec["settings"]["threads"]
    notes = (
        f"T,B,I,H = {shape}, {threads} threads; median ms. 'busy': a Python process spinning "
        "on one core (`while True: pass`) runs during the call; 'quiet': it is stopped "
        "(SIGSTOP). Turns interleave quiet and busy. Slowdown = busy / quiet. Bit-identical: "
        "every timed result (rnnkit: outputs, or y, dx, dw_ih, dw_hh, db_ih, db_hh after "
        "backward; torch: y, or dx, dw_hh) equals a quiet reference computed first."
    )
    return Section("Busy neighbour", notes, columns, body)


# --------------------------------------------------------------------------- chart
def write_chart(path: Path, results: Mapping[str, list[Any]], ceiling: float) -> None:
    """Grouped bars of GFLOP/s (forward, forward+backward) for the cells, layers and lengths
    comparisons, with the numpy GEMM ceiling; skipped with a message without matplotlib."""
    try:
        import matplotlib  # type: ignore[import-not-found,unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        print(f"matplotlib is not installed: no chart written to {path} (pip install matplotlib)")
        return
    groups: dict[str, list[tuple[str, dict[str, Entry]]]] = {FWD: [], TRAIN: []}
    for part in ("cells", "layers", "lengths"):
        for r in results.get(part, []):
            name = CELL_NAMES[r.spec["cell"]]
            if part == "cells":
                label = f"{name}\n{r.spec['shape']}"
            elif part == "layers":
                label = f"{r.spec['layers']}-layer bi {name}\n{r.spec['shape']}"
            else:
                label = f"{name} lengths\n{r.spec['shape']}"
            for what in (FWD, TRAIN):
                groups[what].append((label, r.passes[what]))
    if not groups[FWD]:
        print(f"no cells/layers/lengths results: no chart written to {path}")
        return
    names: list[str] = []
    for what in (FWD, TRAIN):
        for _, entries in groups[what]:
            names += [n for n in entries if n not in names]
    cmap = plt.get_cmap("tab10")
    colors = {n: cmap(k % 10) for k, n in enumerate(names)}
    width = max(9.0, 2.5 + 1.4 * len(groups[FWD]))
    fig, axes = plt.subplots(2, 1, figsize=(width, 9), constrained_layout=True)
    for ax, what in zip(axes, (FWD, TRAIN), strict=True):
        seen: set[str] = set()
        for g, (_, entries) in enumerate(groups[what]):
            n = len(entries)
            for k, (name, e) in enumerate(entries.items()):
                x = g - 0.4 + (k + 0.5) * 0.8 / n
                ax.bar(
                    x,
                    e.gflops,
                    width=0.8 / n,
                    color=colors[name],
                    label=None if name in seen else name,
                )
                seen.add(name)
        ax.axhline(ceiling, color="black", linestyle="--", linewidth=1)
        ax.text(
            len(groups[what]) - 0.5,
            ceiling,
            f"numpy GEMM {ceiling:.0f}",
            ha="right",
            va="bottom",
            fontsize=8,
        )
        ax.set_xticks(range(len(groups[what])), [lbl for lbl, _ in groups[what]], fontsize=8)
        ax.set_ylabel("effective GFLOP/s")
        ax.set_title({FWD: "forward", TRAIN: "forward + backward"}[what])
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("rnnkit vs torch.nn vs ONNX Runtime (float32, CPU)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


# --------------------------------------------------------------------------- main
def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Compare rnnkit with torch.nn and ONNX Runtime on the CPU (float32), one "
        "process per comparison.",
        epilog="Benchmark with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` (BENCHMARKS.md).",
    )
    parser.add_argument(
        "parts",
        nargs="*",
        metavar="PART",
        help=f"parts to run, among {', '.join(PARTS)}, all (default: all)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=default_threads(),
        help="threads for every library (default: the cores available, %(default)s here)",
    )
    parser.add_argument(
        "--reps",
        type=positive_int,
        default=5,
        help="minimum interleaved repetitions per contender (default %(default)s)",
    )
    parser.add_argument(
        "--min-time",
        type=float,
        default=1.0,
        help="after --reps turns, keep taking turns until the timed calls add up to this many "
        "seconds, at most --max-reps turns (default %(default)s)",
    )
    parser.add_argument("--max-reps", type=positive_int, default=200, help="(default 200)")
    parser.add_argument(
        "--warmup", type=positive_int, default=1, help="untimed calls per contender (default 1)"
    )
    parser.add_argument(
        "--cells",
        type=parse_cells,
        default=list(GATES),
        help="cells for the cells, memory, threads and neighbour parts (default: lstm,gru,rnn)",
    )
    parser.add_argument(
        "--shapes",
        type=parse_shapes,
        default=list(CELL_SHAPES),
        help='shapes "T,B,I,H;..." of the cells and gru_reset parts (default: '
        + ";".join(map(shape_text, CELL_SHAPES))
        + ")",
    )
    parser.add_argument(
        "--part-shape",
        type=parse_shape,
        metavar="T,B,I,H",
        help="one shape for every other part instead of the issue's (for smoke runs)",
    )
    parser.add_argument("--no-ort", action="store_true", help="leave ONNX Runtime out")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="write the tables here")
    parser.add_argument("--png", type=Path, metavar="PATH", help="write the chart here")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2 repetitions, no minimum time, 3 GEMM repetitions (not a measurement)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return parser


def source_commit() -> str | None:
    """``git describe --always --dirty`` of the checkout holding this script, or None. (With
    an editable install the kernels are those of the last build, not necessarily of this
    commit.)"""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def chosen_parts(parser: argparse.ArgumentParser, parts: Sequence[str]) -> list[str]:
    wanted = list(parts) or ["all"]
    unknown = [p for p in wanted if p not in (*PARTS, "all")]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose among {', '.join(PARTS)}, all")
    return list(PARTS) if "all" in wanted else [p for p in PARTS if p in wanted]


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """The benchmark's command line (``argv`` without the program name; ``prog``: the name
    its usage line shows, the script's own by default)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == [WORKER]:
        return worker_main(argv[1], argv[2])
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    parts = chosen_parts(parser, args.parts)
    if args.quick:
        args.reps, args.min_time, args.warmup = 2, 0.0, 1
    torch = import_torch()
    ort = not args.no_ort
    extra = []
    if ort:
        import_ort()
        extra = [f"onnx {importlib.metadata.version('onnx')}"]
        extra.append(f"onnxruntime {importlib.metadata.version('onnxruntime')}")
    extra.append(f"rnnkit ISA {rnnkit.cpu_isa()}")
    commit = source_commit()
    if commit is not None:
        extra.append(f"source {commit}")
    set_threads(torch, args.threads)
    numpy_threads_set = set_numpy_blas_threads(args.threads)
    header = header_lines(torch, args.threads, numpy_threads_set, extra)
    print("\n".join(header), flush=True)
    gemm_reps = 3 if args.quick else 7
    np_gemm, torch_gemm = gemm_ceiling(torch, gemm_reps, args.seed)
    ceiling = (
        f"float32 GEMM ceiling ({GEMM_N}x{GEMM_N}x{GEMM_N}, median of {gemm_reps}): "
        f"numpy.matmul {np_gemm:.0f} GFLOP/s, torch.mm {torch_gemm:.0f} GFLOP/s"
    )
    print(ceiling, flush=True)
    settings = Settings(
        threads=args.threads,
        reps=args.reps,
        min_time=args.min_time,
        max_reps=args.max_reps,
        warmup=args.warmup,
        seed=args.seed,
        ort=ort,
    )
    other = args.part_shape

    def spec(part: str, **kw: Any) -> dict[str, Any]:
        if "shape" in kw:
            kw["shape"] = shape_text(kw["shape"])
        return {"part": part, "settings": asdict(settings), **kw}

    started = time.perf_counter()
    results: dict[str, list[Any]] = {}
    rs: list[Any]
    sections: list[Section] = []
    for part in parts:
        print(f"\n-- {part}", flush=True)
        if part == "cells":
            rs = [
                run_worker(spec("cells", cell=c, shape=shp))
                for shp in args.shapes
                for c in args.cells
            ]
            sections.append(cells_section(rs))
        elif part == "layers":
            shp = other or LAYERS_SHAPE
            rs = [run_worker(spec("layers", cell="lstm", shape=shp, layers=LAYERS))]
            sections.append(layers_section(rs))
        elif part == "lengths":
            rs = [run_worker(spec("lengths", cell="lstm", shape=other or LENGTHS_SHAPE))]
            sections.append(lengths_section(rs))
        elif part == "memory":
            configs = [(c, other or MEMORY_SHAPE, 1, False) for c in args.cells]
            configs.append(("lstm", other or LAYERS_SHAPE, LAYERS, True))
            triples: list[tuple[Result, Result, Result]] = []
            for cell, shp, layers, bi in configs:
                got = []
                for lib in ("none", "rnnkit", "torch"):
                    kw = {"cell": cell, "shape": shp, "layers": layers, "bidirectional": bi}
                    got.append(run_worker(spec("memory", lib=lib, **kw)))
                    peak = got[-1].info.get("peak_kib")
                    print(
                        f"{CELL_NAMES[cell]} {shape_text(shp)} layers={layers} bi={bi} "
                        f"{lib}: peak RSS {mib(peak)} MiB, growth in steps "
                        f"{mib(got[-1].info.get('growth_kib'))} MiB",
                        flush=True,
                    )
                triples.append((got[0], got[1], got[2]))
            rs = triples
            sections.append(memory_section(triples))
        elif part == "threads":
            counts = [1, args.threads if args.threads > 1 else 2]
            shp = other or THREADS_SHAPE
            rs = [run_worker(spec("threads", cell=c, shape=shp, counts=counts)) for c in args.cells]
            sections.append(threads_section(rs))
        elif part == "gru_reset":
            if not ort:
                print("gru_reset: skipped (it compares with ONNX Runtime; --no-ort was given)")
                continue
            rs = [run_worker(spec("gru_reset", shape=shp)) for shp in args.shapes]
            sections.append(gru_reset_section(rs))
        else:  # neighbour
            shp = other or NEIGHBOUR_SHAPE
            rs = [run_worker(spec("neighbour", cell=c, shape=shp)) for c in args.cells]
            sections.append(neighbour_section(rs))
        results[part] = rs
    elapsed = time.perf_counter() - started
    print()
    for sec in sections:
        print(sec.text(), end="\n\n")
    print(f"run time {elapsed / 60:.1f} min, {SETTLE_BELOW_S * 1e3:.0f} ms settle threshold")
    if args.markdown is not None:
        md = ["# rnnkit vs torch.nn vs ONNX Runtime (CPU, float32)", ""]
        md += [f"- {h}" for h in header]
        md += [f"- {ceiling}", f"- run time: {elapsed / 60:.1f} min", ""]
        md += [sec.markdown() + "\n" for sec in sections]
        args.markdown.write_text("\n".join(md))
        print(f"wrote {args.markdown}")
    if args.png is not None:
        write_chart(args.png, results, np_gemm)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
